"""actions/sast/action.yml stays thin and safe; semgrep self-install is idempotent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.gha import input_env_name
from devops_agent.security.scanners import SEMGREP_VERSION, ensure_semgrep, semgrep_venv_dir

REPO = Path(__file__).resolve().parents[1]
ACTION = REPO / "actions" / "sast" / "action.yml"
UPLOAD_SARIF = "github/codeql-action/upload-sarif@8aad20d150bbac5944a9f9d289da16a4b0d87c1e"  # PINS.md v4.36.2


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return data


def test_every_input_and_output_is_described(action: dict[str, Any]) -> None:
    for name, spec in {**action["inputs"], **action["outputs"]}.items():
        assert spec.get("description"), name
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name), f"{name} is not kebab-case"


def test_run_step_passes_every_input_through_env_and_never_interpolates(action: dict[str, Any]) -> None:
    run = action["runs"]["steps"][0]
    assert run["shell"] == "bash"
    assert "${{" not in run["run"]
    assert run["run"] == '"$GITHUB_ACTION_PATH/../../scripts/run-stage" scan'
    assert run["env"]["DEVOPS_AGENT_EXTRAS"] == "scan"
    forwarded = {k for k in action["inputs"] if k not in {"upload-sarif", "sarif-category"}}
    for name in forwarded:
        assert run["env"][input_env_name(name)] == f"${{{{ inputs.{name} }}}}", name
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_upload_is_pinned_and_only_when_permitted(action: dict[str, Any]) -> None:
    upload = action["runs"]["steps"][1]
    assert upload["uses"] == UPLOAD_SARIF
    assert "# v4.36.2" in ACTION.read_text()
    assert "inputs.upload-sarif == 'true'" in upload["if"]
    assert "!cancelled()" in upload["if"]  # the SARIF is uploaded also when the gate blocks
    assert upload["with"]["sarif_file"] == "${{ steps.run.outputs.sarif }}"
    assert action["inputs"]["upload-sarif"]["default"] == "false"


def test_every_gha_input_the_action_sets_is_read_by_the_scan_command() -> None:
    source = (REPO / "scripts/devops_agent/stages/scan.py").read_text()
    source += (REPO / "scripts/devops_agent/stages/gate.py").read_text()
    source += (REPO / "scripts/devops_agent/core/command.py").read_text()
    action = yaml.safe_load(ACTION.read_text())
    for name in action["runs"]["steps"][0]["env"]:
        if name == "DEVOPS_AGENT_EXTRAS":
            continue
        input_name = name.removeprefix("DEVOPS_AGENT_INPUT_").lower().replace("_", "-")
        assert f'"{input_name}"' in source, f"input {input_name} is passed but never read"


def test_ensure_semgrep_installs_once_then_reuses(tmp_path: Path) -> None:
    env = {"RUNNER_TOOL_CACHE": str(tmp_path)}
    calls: list[list[str]] = []

    def fake_run(cmd: list[str]) -> int:
        calls.append(cmd)
        venv = semgrep_venv_dir(env)
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        (venv / "bin" / "semgrep").write_text("#!/bin/sh\n")
        return 0

    exe = ensure_semgrep(env, run=fake_run)
    assert exe == str(tmp_path / "devops-agent" / f"semgrep-{SEMGREP_VERSION}" / "bin" / "semgrep")
    assert calls[-1][-3:] == ["--require-hashes", "-r", str(REPO / "requirements" / "semgrep.lock")]
    count = len(calls)
    assert ensure_semgrep(env, run=fake_run) == exe
    assert len(calls) == count  # reused: nothing installed again


def test_ensure_semgrep_failure_is_a_clear_stage_failure(tmp_path: Path) -> None:
    from devops_agent.core.errors import StageFailed

    with pytest.raises(StageFailed, match=f"installing semgrep=={SEMGREP_VERSION}"):
        ensure_semgrep({"RUNNER_TOOL_CACHE": str(tmp_path)}, run=lambda cmd: 1)


def test_tool_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devops_agent.security import scanners

    local = tmp_path / ".venv-semgrep" / "bin" / "semgrep"
    local.parent.mkdir(parents=True)
    local.write_text("#!/bin/sh\n")
    local.chmod(0o755)
    on_path = tmp_path / "path" / "semgrep"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setattr(scanners, "checkout_root", lambda: tmp_path)
    empty = str(tmp_path / "nothing")
    assert scanners.find_tool("semgrep", "X_SEMGREP", {"PATH": empty}) == (str(local), None)
    assert scanners.find_tool("semgrep", "X_SEMGREP", {"PATH": str(on_path.parent)}) == (str(on_path), None)
    explicit = {"PATH": str(on_path.parent), "X_SEMGREP": str(local)}
    assert scanners.find_tool("semgrep", "X_SEMGREP", explicit) == (str(local), None)
    path, problem = scanners.find_tool("semgrep", "X_SEMGREP", {"X_SEMGREP": str(tmp_path / "missing")})
    assert path is None
    assert problem is not None
    assert "is not an executable file" in problem
