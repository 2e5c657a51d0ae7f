"""The policy gate over 100,000 SARIF results (issue 5: under 1 s on this machine).

Generates one SARIF log with N results spread over 500 rules, 4 severity sources (rule
security-severity, result issue_severity, trivy-style tags, level) and 2,000 files, plus a baseline
holding half of the findings and a few suppressions; then times, in-process and median of --runs:

- base:   stdlib ``json.loads`` of the file with the garbage collector on (what a naive gate pays
          just to read it);
- decide: the pure policy decision over 10^5 normalised findings;
- gate:   read + ingest (severity, fingerprints) + decide (baseline, suppressions, thresholds);
- CLI:    ``devops-agent gate`` in-process with every output (merged SARIF, summary, annotations).

Usage: python benchmarks/bench_scan.py [--results N] [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devops_agent.security.policy import GatePolicy, Suppression, decide, load_baseline, write_baseline
from devops_agent.security.sarif import IngestOptions, ingest, load_log, paused_gc


def make_log(n: int) -> dict[str, Any]:
    rules = []
    for r in range(500):
        props: dict[str, Any] = {"tags": ["security"]}
        if r % 4 == 0:
            props["security-severity"] = f"{(r % 100) / 10:.1f}"
        elif r % 4 == 1:
            props["tags"] = ["vulnerability", ["CRITICAL", "HIGH", "MEDIUM", "LOW"][r % 4]]
        rules.append({"id": f"RULE-{r:04d}", "shortDescription": {"text": f"rule {r}"}, "properties": props})
    results = []
    for i in range(n):
        r = i % 500
        result: dict[str, Any] = {
            "ruleId": f"RULE-{r:04d}",
            "ruleIndex": r,
            "message": {"text": f"finding {i} of rule {r}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"src/pkg{i % 40}/module{i % 2000}.py"},
                        "region": {"startLine": 1 + i % 900, "snippet": {"text": f"call_{i % 7}(value_{i})"}},
                    }
                }
            ],
        }
        if r % 4 == 2:
            result["properties"] = {"issue_severity": ["HIGH", "MEDIUM", "LOW"][i % 3]}
        elif r % 4 == 3:
            result["level"] = ["error", "warning", "note"][i % 3]
        results.append(result)
    return {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "BenchScanner", "rules": rules}}, "results": results}],
    }


STEPS = (
    "json.loads, stdlib, GC on (base)",
    "decide only (policy, 10^5 findings)",
    "gate: read+ingest+decide",
    "devops-agent gate CLI, all outputs",
)


def child(step: int, path: Path, baseline_path: Path) -> tuple[float, float]:
    """One measurement in a fresh interpreter (no heap left over from generating the file)."""
    import contextlib
    import io

    from devops_agent.stages import gate

    policy = GatePolicy(
        baseline=load_baseline(baseline_path),
        suppressions=tuple(
            Suppression(f"RULE-{r:04d}", "@team", "accepted", dt.date(2099, 1, 1), index=r) for r in range(5)
        ),
        today=dt.date(2026, 11, 24),
    )
    findings = ingest(load_log(path), source=str(path)).findings if step == 1 else []
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    if step == 0:
        json.loads(path.read_text(encoding="utf-8"))
    elif step == 1:
        decide(findings, policy)
    elif step == 2:
        with paused_gc():  # as the CLI does: the whole command runs with the collector paused

            def gate_step() -> None:
                ingested = ingest(load_log(path), source=str(path), options=IngestOptions())
                decide(ingested.findings, policy)

            gate_step()  # its data is freed (by reference counting) before the collector resumes
    else:
        argv = ["--app", str(path.parent), "--sarif", str(path), "--baseline", str(baseline_path)]
        argv += ["--sarif-out", str(path.with_name("merged.sarif"))]
        with contextlib.redirect_stdout(io.StringIO()):
            gate.main(argv)
    return time.perf_counter() - started, time.process_time() - cpu


def calibrate() -> float:
    """CPU seconds of an empty 10^7 loop: ~0.12-0.15 s on an idle current x86 core."""
    cpu = time.process_time()
    for _ in range(10**7):
        pass
    return time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("STEP", "SARIF", "BASELINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        wall, cpu = child(int(args.child[0]), Path(args.child[1]), Path(args.child[2]))
        print(json.dumps({"wall": wall, "cpu": cpu}))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sarif"
        path.write_text(json.dumps(make_log(args.results)), encoding="utf-8")
        first = ingest(load_log(path), source=str(path))
        baseline_path = Path(tmp) / "baseline.json"
        write_baseline(baseline_path, first.findings[::2])
        findings = len(first.findings)
        del first
        size = path.stat().st_size
        rows = []
        for step, name in enumerate(STEPS):
            walls, cpus = [], []
            for _ in range(args.runs):
                cmd = [sys.executable, __file__, "--child", str(step), str(path), str(baseline_path)]
                sample = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                walls.append(sample["wall"])
                cpus.append(sample["cpu"])
            rows.append((name, statistics.median(walls), statistics.median(cpus)))
    print(f"{args.results:,} results, {findings:,} findings ({findings // 2:,} baselined)", end=", ")
    print(f"file {size / 1e6:.1f} MB")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"empty 10^7 loop: {calibrate():.2f} s CPU (idle current x86 core: ~0.13 s)")  # fmt: skip
    print(f"{'step (fresh process, median)':32} {'wall ms':>9} {'cpu ms':>9} {'x baseline (cpu)':>17}")
    base = rows[0][2]
    for name, wall, cpu in rows:
        print(f"{name:32} {wall * 1000:9.0f} {cpu * 1000:9.0f} {cpu / base:17.2f}")
    _, wall, cpu = rows[2]
    verdict = "within" if cpu < 1.0 else "OVER"
    print(f"\ngate budget 1 s for 100,000 results: {verdict}", end=" ")
    print(f"(cpu {cpu * 1000:.0f} ms, wall {wall * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
