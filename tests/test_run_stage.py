"""scripts/run-stage: hash-locked install once per job, then one subcommand from this checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 in CI
    import tomli as tomllib

RUN_STAGE = REPO_ROOT / "scripts" / "run-stage"


def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    pins = {}
    for requirement in data["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        assert version, f"runtime dependency {requirement!r} must be pinned with =="
        pins[name.lower().replace("_", "-")] = version
    return pins


def lock_pins(path: Path) -> dict[str, str]:
    return {m[0].lower(): m[1] for m in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", path.read_text(), re.M)}


def test_action_lock_matches_pyproject_and_is_hashed() -> None:
    lock = REPO_ROOT / "requirements" / "action.lock"
    pins = lock_pins(lock)
    for name, version in pyproject_pins().items():
        assert pins.get(name) == version, f"{name}: pyproject {version}, lock {pins.get(name)}"
    blocks = re.split(r"\n(?=[a-z0-9])", lock.read_text())
    for name in pins:
        block = next(b for b in blocks if b.lower().startswith(name + "=="))
        assert "--hash=sha256:" in block, f"{name} has no hash in the lock"


def test_every_lock_has_its_input() -> None:
    for lock in (REPO_ROOT / "requirements").glob("*.lock"):
        assert lock.with_suffix(".in").is_file(), lock


def run_stage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    full_env.update({"RUNNER_TEMP": str(tmp_path / "runner-temp"), **env})
    (tmp_path / "runner-temp").mkdir(exist_ok=True)
    return subprocess.run(
        [str(RUN_STAGE), *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )


def test_unknown_extra_is_refused_before_installing(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, "--version", DEVOPS_AGENT_EXTRAS="no-such-extra")
    assert proc.returncode == 2
    assert "no lock file for extra 'no-such-extra'" in proc.stdout
    assert not list((tmp_path / "runner-temp").iterdir()), "nothing installed"


def test_extra_names_cannot_escape_the_requirements_dir(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, "--version", DEVOPS_AGENT_EXTRAS="../../etc/passwd")
    assert proc.returncode == 2
    assert "unknown extra" in proc.stdout


@pytest.mark.slow
def test_installs_once_then_runs_subcommands(tmp_path: Path, sample_app: Path) -> None:
    first = run_stage(tmp_path, "--version")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("devops-agent ")
    assert "installing dependencies (hash-locked)" in first.stderr
    venvs = list((tmp_path / "runner-temp").iterdir())
    assert len(venvs) == 1
    second = run_stage(
        tmp_path,
        "build",
        DEVOPS_AGENT_INPUT_APP_DIR=str(sample_app),
        DEVOPS_AGENT_ARGS="--skip-tests\n--json\n",
    )
    assert second.returncode == 0, second.stderr
    assert "installing dependencies" not in second.stderr, "the venv is reused within a job"
    assert '"name": "sample-app.pyz"' in second.stdout
    # The helper runs from this checkout (PYTHONPATH), not from an installed copy.
    where = run_stage(tmp_path, "config", "validate", str(sample_app / ".github" / "devops-agent.yml"))
    assert where.returncode == 0, where.stderr


def test_preinstalled_venv_is_used_without_installing(tmp_path: Path, sample_app: Path) -> None:
    proc = run_stage(tmp_path, "--version", DEVOPS_AGENT_VENV=sys.prefix)
    assert proc.returncode == 0, proc.stderr
    assert "installing" not in proc.stderr
    assert not list((tmp_path / "runner-temp").iterdir())
    bad = run_stage(tmp_path, "--version", DEVOPS_AGENT_VENV=str(tmp_path / "nope"))
    assert bad.returncode == 2
    assert "has no bin/python" in bad.stdout
