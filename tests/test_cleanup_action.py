"""The cleanup action and the workflow proposed in docs/cleanup.md: every action input reaches the
command, and the workflow passes our workflow rules and GitHub's workflow schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from devops_agent.checks.workflow_rules import check_file
from devops_agent.core.gha import input_env_name
from devops_agent.stages.cleanup import parse_inputs
from tests.conftest import REPO_ROOT

ACTION = REPO_ROOT / "actions" / "cleanup" / "action.yml"


def test_every_action_input_is_described_and_passed_through_env() -> None:
    action = yaml.safe_load(ACTION.read_text())
    step = action["runs"]["steps"][0]
    assert step["run"] == '"$GITHUB_ACTION_PATH/../../scripts/run-stage" cleanup'
    assert step["shell"] == "bash"
    env = step["env"]
    for name, spec in action["inputs"].items():
        assert spec["description"], name
        if name in ("token", "registry-token"):
            continue
        assert env[input_env_name(name)] == f"${{{{ inputs.{name} }}}}"
    assert env["DEVOPS_AGENT_GITHUB_TOKEN"] == "${{ inputs.token }}"
    assert env["DEVOPS_AGENT_REGISTRY_TOKEN"] == "${{ inputs.registry-token }}"
    for name, spec in action["outputs"].items():
        assert spec["description"]
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_action_inputs_drive_the_command(tmp_path: Path) -> None:
    env = {
        input_env_name("policy"): "p.yml",
        input_env_name("targets"): "branches, packages",
        input_env_name("dry-run"): "false",
        input_env_name("local-images"): "true",
        input_env_name("app-dir"): str(tmp_path),
        input_env_name("report"): str(tmp_path / "r.json"),
        input_env_name("git-dir"): str(tmp_path),
    }
    inputs = parse_inputs([], env)
    assert inputs.targets == ("branches", "packages")
    assert inputs.execute is True
    assert inputs.local_images is True
    assert inputs.report_path == tmp_path / "r.json"
    assert inputs.policy_path == tmp_path / "p.yml"
    defaults = parse_inputs([], {input_env_name("app-dir"): str(tmp_path)})
    assert defaults.execute is False  # dry run unless asked
    assert defaults.targets is None


def _proposed_workflow() -> str:
    return (REPO_ROOT / ".github" / "workflows" / "cleanup.yml").read_text()


def test_docs_show_the_committed_workflow() -> None:
    text = (REPO_ROOT / "docs" / "cleanup.md").read_text()
    match = re.search(r"```yaml\n(# devops-agent janitor.*?)```", text, re.S)
    assert match, "docs/cleanup.md lost the workflow block"
    assert match.group(1) == _proposed_workflow(), "docs/cleanup.md and .github/workflows/cleanup.yml differ"


def test_the_documented_workflow_passes_our_rules_and_githubs_schema(tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "cleanup.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(_proposed_workflow())
    shutil.copytree(REPO_ROOT / "actions", tmp_path / "actions")
    assert [str(v) for v in check_file(workflow, tmp_path)] == []
    doc = yaml.safe_load(workflow.read_text())
    on = doc[True]  # pyyaml reads the key `on` as True
    assert set(on) == {"workflow_dispatch", "schedule", "workflow_call"}
    assert on["workflow_dispatch"]["inputs"]["dry-run"]["default"] is True
    assert doc["permissions"] == {}
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
