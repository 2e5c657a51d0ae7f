"""Cold start of `devops-agent --version` against baselines, side by side in one run.

Prints the median wall time of each command over N runs and its ratio to a bare interpreter:
- baseline: `python -c pass`
- eager:    importing every heavy dependency up front (what lazy imports avoid)
- ours:     `python -m devops_agent --version`
Usage: python benchmarks/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

EAGER = "import yaml, requests, jsonschema, semver, packaging.version, github, actions_toolkit.core"


def measure(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    rows = [
        ("python -c pass (baseline)", [py, "-c", "pass"]),
        ("eager imports of all deps", [py, "-c", EAGER]),
        ("devops-agent --version", [py, "-m", "devops_agent", "--version"]),
        ("devops-agent --help", [py, "-m", "devops_agent", "--help"]),
    ]
    results = [(name, measure(argv, args.runs)) for name, argv in rows]
    base = results[0][1]
    print(f"{'command':32} {'median ms':>10} {'× baseline':>11}")
    for name, seconds in results:
        print(f"{name:32} {seconds * 1000:10.1f} {seconds / base:11.2f}")
    ours = results[2][1]
    print(f"\n--version budget 150 ms: {'within' if ours < 0.150 else 'OVER'} ({ours * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
