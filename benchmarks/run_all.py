"""Run every benchmark named in the issues, one after the other, and print their tables.

Each benchmark prints ours vs its baseline side by side with the ratio and its budget; this script
runs them with modest repetition counts and ends with one summary table (wall time, exit code).
Usage: python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, issue, what it measures, args, quick args)
BENCHMARKS: list[tuple[str, str, str, list[str], list[str]]] = [
    ("bench_startup.py", "#3", "cold start of --version (< 150 ms)", ["--runs", "15"], ["--runs", "5"]),
    (
        "bench_scan.py",
        "#5",
        "policy gate over 100,000 SARIF results (< 1 s)",
        ["--runs", "3"],
        ["--runs", "1", "--results", "20000"],
    ),
    (
        "bench_sbom.py",
        "#6",
        "SBOM of ~500 packages, both formats validated (< 2 s)",
        ["--runs", "3"],
        ["--runs", "1"],
    ),
    (
        "bench_rollback.py",
        "#7",
        "time to restore after a failed release (< 5 s)",
        ["--runs", "3"],
        ["--runs", "1"],
    ),
    (
        "bench_cleanup.py",
        "#10",
        "registry cleanup requests vs actions/delete-package-versions",
        [],
        ["--sizes", "500"],
    ),
    ("bench_run.py", "#11", "whole local pipeline with --approve (< 60 s)", ["--runs", "2"], ["--runs", "1"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller inputs")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, float, int]] = []
    for script, issue, what, full, quick in BENCHMARKS:
        print(f"\n{'=' * 100}\n{script} ({issue}): {what}\n{'=' * 100}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(
            [sys.executable, str(HERE / script), *(quick if args.quick else full)], check=False
        ).returncode
        rows.append((script, issue, what, time.perf_counter() - started, code))
    print(f"\n{'benchmark':20} {'issue':6} {'wall s':>7} {'exit':>5}  measures")
    for script, issue, what, seconds, code in rows:
        print(f"{script:20} {issue:6} {seconds:7.1f} {code:5d}  {what}")
    return 1 if any(code for *_, code in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
