"""Time to restore after a failed deployment, local process driver (issue 7: target ≤ 5 s).

On a private copy of examples/sample-app, builds a good release (v2) and a release whose /healthz
answers 503 (v3), then repeats --runs times:

- ours (warm): deploy v2 + validate, deploy v3 (blue/green: v2 stays warm), `validate` fails and
  rolls back automatically. Time to restore (TTR) = from the failed check to the restored release
  passing re-validation, as `validate` records it (its own clock, same as the job summary);
- ours (cold): the same, but the warm v2 process is killed before validation, so the rollback must
  restart v2 from its kept copy;
- baseline (naive stop-start redeploy): from the failed check, stop the broken process, start v2
  on the same port, wait until it listens, then run the same checks once.

Prints median/min/max per variant, the ratio baseline / ours, and whether the target holds.
Usage: python benchmarks/bench_rollback.py [--runs N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from tests.fixtures.deploy.support import free_ports, set_source, set_version, write_config

    from devops_agent.core.config import load_config
    from devops_agent.core.gha import Actions
    from devops_agent.deploy.base import DriverContext
    from devops_agent.deploy.process import ProcessDriver, port_open
    from devops_agent.deploy.settings import deploy_settings, validate_settings
    from devops_agent.deploy.validation import RealClock, RequestsProbe, Validator
    from devops_agent.stages.build import execute_build
    from devops_agent.stages.deploy import DeployInputs, execute_deploy
    from devops_agent.stages.validate import ValidateInputs, execute_validate

    def quiet() -> Actions:
        return Actions.from_env({}, stream=io.StringIO())

    with tempfile.TemporaryDirectory(prefix="bench-rollback-") as tmp:
        app = Path(tmp) / "sample-app"
        shutil.copytree(
            ROOT / "examples" / "sample-app",
            app,
            ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__"),
        )
        write_config(app, ports=free_ports(2), validate={"retries": 3, "backoff_seconds": 0.1})
        artifacts = {}
        for version, is_broken in (("2.0.0", False), ("3.0.0", True)):
            set_source(app, broken=is_broken, marker=version)
            config = set_version(app, version)
            built = execute_build(config, app, quiet(), skip_tests=True)
            keep = Path(tmp) / f"v{version}.pyz"
            shutil.copyfile(app / built.artifacts[0].path, keep)
            artifacts[version] = (keep, built.artifacts[0].sha256)
        config = load_config(app / ".github" / "devops-agent.yml")
        settings = deploy_settings(config)
        vsettings = validate_settings(config)
        driver = ProcessDriver(DriverContext(app, settings.environment, settings))

        def deploy(version: str, run: str) -> None:
            path, sha = artifacts[version]
            inputs = DeployInputs(digest=f"sha256:{sha}", artifact=str(path), version=version)
            execute_deploy(app, config, quiet(), inputs, run_id=run)

        def validate(run: str) -> tuple[str, float | None]:
            outcome = execute_validate(app, config, quiet(), ValidateInputs(), run_id=run)
            ttr = outcome.rollback.ttr_seconds if outcome.rollback else None
            return outcome.result, ttr

        warm: list[float] = []
        cold: list[float] = []
        naive: list[float] = []
        try:
            for i in range(args.runs):
                for variant, bucket in (("warm", warm), ("cold", cold)):
                    driver.stop()
                    deploy("2.0.0", f"{variant}-{i}-a")
                    assert validate(f"{variant}-{i}-a")[0] == "passed"
                    deploy("3.0.0", f"{variant}-{i}-b")
                    if variant == "cold":
                        previous = driver.status().previous
                        assert previous is not None
                        state = json.loads((driver.dir / "process.json").read_text())
                        os.killpg(state["slots"][previous.slot]["pid"], signal.SIGKILL)
                        time.sleep(0.2)
                    result, ttr = validate(f"{variant}-{i}-b")
                    assert result == "rolled-back", result
                    assert ttr is not None
                    bucket.append(ttr)
                # baseline: naive stop-start redeploy of v2 in place of the broken v3
                driver.stop()
                port = settings.process.ports[0]
                broken = subprocess.Popen(
                    [sys.executable, str(artifacts["3.0.0"][0]), "--host", "127.0.0.1", "--port", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                while not port_open("127.0.0.1", port):
                    time.sleep(0.02)
                probe = RequestsProbe()
                validator = Validator(vsettings, probe, RealClock(), app)
                report = validator.run(f"http://127.0.0.1:{port}", soak=False)
                assert not report.passed
                started = time.monotonic()  # the failed check, as for ours
                broken.terminate()
                broken.wait(timeout=30)
                good = subprocess.Popen(
                    [sys.executable, str(artifacts["2.0.0"][0]), "--host", "127.0.0.1", "--port", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                while not port_open("127.0.0.1", port):
                    time.sleep(0.02)
                again = validator.run(f"http://127.0.0.1:{port}", soak=False)
                naive.append(time.monotonic() - started)
                assert again.passed, again.reason
                good.terminate()
                good.wait(timeout=30)
                probe.close()
        finally:
            driver.stop()

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<34} median {statistics.median(values):7.3f} s   min {min(values):7.3f} s   "
            f"max {max(values):7.3f} s"
        )

    print(f"time to restore, process driver, sample-app, {args.runs} runs each")
    print(line("ours: blue/green warm rollback", warm))
    print(line("ours: cold rollback (kept copy)", cold))
    print(line("baseline: naive stop-start redeploy", naive))
    print(f"ratio baseline / warm: {statistics.median(naive) / statistics.median(warm):6.1f}x")
    print(f"ratio baseline / cold: {statistics.median(naive) / statistics.median(cold):6.1f}x")
    worst = max(*warm, *cold)
    verdict = "met" if worst <= TARGET_SECONDS else "MISSED"
    print(f"target ≤ {TARGET_SECONDS:.0f} s (and < 2 min): worst TTR {worst:.3f} s — {verdict}")
    return 0 if worst <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
