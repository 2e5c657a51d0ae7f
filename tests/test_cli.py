"""The CLI edge: version, help, unknown commands, exit codes, and `run` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_agent import __version__
from devops_agent.cli import COMMANDS, main
from devops_agent.core.state import StateStore
from tests.conftest import REPO_ROOT


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"devops-agent {__version__}\n"


def test_version_imports_nothing_heavy() -> None:
    """`--version` must stay fast: none of the heavy libraries may be imported on that path."""
    code = (
        "import sys; from devops_agent.cli import main; main(['--version']); "
        "heavy = {'github', 'requests', 'jsonschema', 'yaml', 'semver', 'actions_toolkit', 'sqlite3'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_help_lists_only_available_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "  build " in out
    assert "Exit codes: 0 success, 1 failed stage or gate, 2 bad input" in out
    import importlib.util

    for name, (module, _) in COMMANDS.items():
        listed = f"\n  {name} " in out
        assert listed == (importlib.util.find_spec(module) is not None), name


def test_no_arguments_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: devops-agent" in capsys.readouterr().out


def test_unknown_command_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["biuld"]) == 2
    assert "Did you mean `build`?" in capsys.readouterr().err


def test_bad_option_is_exit_2_with_usage_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-flag" in err
    assert "devops-agent build --help" in err


def test_errors_in_github_actions_are_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["build", "--app", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("::error title=devops-agent%3A invalid input::")


@pytest.fixture
def pipeline_app(sample_app: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The sample app with free ports for staging and production; every release stopped after."""
    import yaml

    from tests.fixtures.deploy.support import free_ports
    from tests.test_workflow_e2e import find_semgrep

    semgrep = find_semgrep()
    if semgrep is None:
        pytest.skip("semgrep is not installed: run `ROOT=$PWD bash .ci/setup.d/20-semgrep.sh`")
    monkeypatch.setenv("DEVOPS_AGENT_SEMGREP", semgrep)
    path = sample_app / ".github" / "devops-agent.yml"
    config = yaml.safe_load(path.read_text())
    ports = free_ports(4)
    config["deploy"]["process"]["ports"] = ports[:2]
    config["promote"]["deploy"] = {"process": {"ports": ports[2:]}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    yield sample_app
    assert main(["deploy", "--app", str(sample_app), "--stop"]) == 0


@pytest.mark.slow
def test_run_on_sample_app_stops_before_production(
    pipeline_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--app", str(pipeline_app)]) == 0
    out = capsys.readouterr().out
    assert "sha256:" in out
    assert "devops-agent run — sample-app: ✅ passed" in out
    assert "flowchart LR" in out
    assert "devops-agent approve --local" in out
    with StateStore.for_app(pipeline_app) as store:
        runs = store.runs()
        assert runs[0].status == "success"
        assert [a.name for a in store.artifacts(runs[0].id)] == ["sample-app.pyz"]
        staging = store.deployments("staging")
        assert staging
        assert staging[0].status == "success"
        assert [d.status for d in store.deployments("production")] == ["pending"]  # waiting for approval
    gitignore = (pipeline_app / ".devops-agent" / ".gitignore").read_text()
    assert "*" in gitignore.splitlines()
    # the reviewer continues the same run
    assert main(["approve", "--local", "--app", str(pipeline_app), "--comment", "ship it"]) == 0
    with StateStore.for_app(pipeline_app) as store:
        assert [d.status for d in store.deployments("production")][:1] == ["success"]


@pytest.mark.slow
def test_run_json_and_failure_marks_run_and_opens_a_local_incident(
    pipeline_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--app", str(pipeline_app), "--json", "--approve"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in payload["stages"]][:2] == ["build", "scan"]
    assert {s["status"] for s in payload["stages"]} == {"passed"}
    (pipeline_app / "tests" / "test_broken.py").write_text(
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n        self.fail('boom')\n"
    )
    assert main(["run", "--app", str(pipeline_app)]) == 1
    captured = capsys.readouterr()
    assert "❌ failed" in captured.out
    assert "test command failed" in captured.err
    assert "| build | created |" in captured.out  # the local incident
    with StateStore.for_app(pipeline_app) as store:
        assert store.runs()[0].status == "failure"
        assert store.runs()[0].details == {"stage": "build"}
    (pipeline_app / "tests" / "test_broken.py").unlink()
    assert main(["run", "--app", str(pipeline_app), "--approve"]) == 0
    assert "resolved" in capsys.readouterr().out  # the next success closes it with MTTR


def test_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devops_agent", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("devops-agent ")
