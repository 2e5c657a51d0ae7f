"""The whole local pipeline: `devops-agent run --app <sample-app copy> --approve` (issue 11: < 60 s).

Runs, on a private copy of examples/sample-app with free ports, --runs times each:
- baseline: the app's own build + test commands alone (the least any pipeline must spend);
- ours:     every stage — build, scan + gate, SBOMs, signed provenance, verified blue/green deploy
            to staging, validation, promotion to production with validation — in one command.
Prints the medians, the ratio ours / baseline (the price of everything beyond build + test), and
whether the 60 s budget holds. Every release started is stopped afterwards.
Usage: python benchmarks/bench_run.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-app"
BUDGET = 60.0


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def prepare(base: Path) -> Path:
    app = base / "sample-app"
    shutil.copytree(SAMPLE, app, ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__"))
    path = app / ".github" / "devops-agent.yml"
    config = yaml.safe_load(path.read_text())
    ports = free_ports(4)
    config["deploy"]["process"]["ports"] = ports[:2]
    config.setdefault("promote", {})["deploy"] = {"process": {"ports": ports[2:]}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return app


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    agent = [sys.executable, "-m", "devops_agent"]
    baseline: list[float] = []
    ours: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.runs):
            app = prepare(Path(tmp) / f"run-{index}")
            config = yaml.safe_load((app / ".github" / "devops-agent.yml").read_text())
            script = " && ".join(config["build"]["commands"] + config["build"]["test_commands"])
            baseline.append(timed(["bash", "-eo", "pipefail", "-c", script], app))
            try:
                ours.append(timed([*agent, "run", "--app", str(app), "--approve"], ROOT))
            finally:
                subprocess.run(
                    [*agent, "deploy", "--app", str(app), "--stop"],
                    capture_output=True,
                    check=False,
                    env={k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
                )
    b, o = statistics.median(baseline), statistics.median(ours)
    print(f"{'variant':44} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{'baseline: build + test commands only':44} {b:9.2f} {min(baseline):7.2f} {max(baseline):7.2f}")
    print(f"{'ours: devops-agent run --approve (all stages)':44} {o:9.2f} {min(ours):7.2f} {max(ours):7.2f}")
    print(f"\nratio ours / baseline: {o / b:.1f}x")
    print(f"budget {BUDGET:.0f} s: {'within' if o < BUDGET else 'OVER'} ({o:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
