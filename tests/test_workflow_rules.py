"""Static rules for our workflows/actions: the repository passes, and each rule rejects a bad file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from devops_agent.checks.workflow_rules import check_file, main, repo_yaml_files, triggers
from tests.conftest import REPO_ROOT

CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"

GOOD_WORKFLOW = f"""
name: good
on:
  workflow_call:
    inputs:
      config:
        description: Config file.
        type: string
permissions: {{}}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - uses: $/actions/build
      - name: say
        shell: bash
        env:
          CONFIG: ${{{{ inputs.config }}}}
        run: echo "$CONFIG"
"""

# (rule, a mutation of GOOD_WORKFLOW that must trip exactly that rule)
BAD_WORKFLOWS = {
    "top-permissions": ("permissions: {}\njobs:", "permissions: write-all\njobs:"),
    "job-permissions": ("    permissions:\n      contents: read\n", ""),
    "pinned": (CHECKOUT, "actions/checkout@v7"),
    "shell": ("        shell: bash\n", ""),
    "no-expression-in-run": ('run: echo "$CONFIG"', "run: echo ${{ inputs.config }}"),
    "described": ("        description: Config file.\n", ""),
    "checkout-credentials": ("          persist-credentials: false", "          fetch-depth: 0"),
    "own-actions": ("$/actions/build", "./actions/build"),
}


def write(tmp_path: Path, text: str, name: str = "wf.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_repository_files_pass_every_rule() -> None:
    files = repo_yaml_files(REPO_ROOT)
    assert REPO_ROOT / ".github" / "workflows" / "devsecops.yml" in files
    assert REPO_ROOT / "actions" / "build" / "action.yml" in files
    violations = [str(v) for f in files for v in check_file(f, REPO_ROOT)]
    assert violations == []


def test_good_fixture_passes(tmp_path: Path) -> None:
    assert check_file(write(tmp_path, GOOD_WORKFLOW), REPO_ROOT) == []


@pytest.mark.parametrize("rule", sorted(BAD_WORKFLOWS))
def test_each_rule_rejects_a_bad_workflow(tmp_path: Path, rule: str) -> None:
    old, new = BAD_WORKFLOWS[rule]
    assert old in GOOD_WORKFLOW
    path = write(tmp_path, GOOD_WORKFLOW.replace(old, new, 1))
    rules = {v.rule for v in check_file(path, REPO_ROOT)}
    assert rules == {rule}


def test_pinned_needs_version_comment(tmp_path: Path) -> None:
    text = GOOD_WORKFLOW.replace(CHECKOUT, CHECKOUT.split(" #", maxsplit=1)[0])
    violations = check_file(write(tmp_path, text), REPO_ROOT)
    assert [v.rule for v in violations] == ["pinned"]
    assert "# vX.Y.Z" in violations[0].message


def test_own_actions_refuse_separately_pinned_refs_and_missing_dirs(tmp_path: Path) -> None:
    text = GOOD_WORKFLOW.replace("$/actions/build", "org/devops-agent/actions/build@v1")
    assert {v.rule for v in check_file(write(tmp_path, text), REPO_ROOT)} == {"own-actions", "pinned"}
    text = GOOD_WORKFLOW.replace("$/actions/build", "$/actions/no-such-stage")
    violations = check_file(write(tmp_path, text, "b.yml"), REPO_ROOT)
    assert [v.rule for v in violations] == ["own-actions"]
    assert "has no action.yml" in violations[0].message


BAD_ACTION = """
name: x
description: x
inputs:
  app-dir:
    required: false
outputs:
  version:
    description: The version.
    value: ${{ steps.run.outputs.version }}
runs:
  using: composite
  steps:
    - id: run
      run: echo ${{ inputs.app-dir }}
"""


def test_action_rules(tmp_path: Path) -> None:
    action_dir = tmp_path / "actions" / "x"
    action_dir.mkdir(parents=True)
    path = write(action_dir, BAD_ACTION, "action.yml")
    rules = sorted(v.rule for v in check_file(path))
    assert rules == ["described", "no-expression-in-run", "shell"]


def test_unparseable_file_is_a_violation(tmp_path: Path) -> None:
    violations = check_file(write(tmp_path, "jobs: [unclosed\n"))
    assert [v.rule for v in violations] == ["parse"]


def test_on_key_parsed_as_boolean_is_handled() -> None:
    doc = yaml.safe_load("on:\n  workflow_dispatch: {}\n")
    assert True in doc  # pyyaml's YAML 1.1 quirk
    assert "workflow_dispatch" in triggers(doc)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD_WORKFLOW, "good.yml")
    bad = write(tmp_path, GOOD_WORKFLOW.replace(CHECKOUT, "actions/checkout@main"), "bad.yml")
    assert main([str(good)]) == 0
    assert main([str(bad)]) == 1
    assert "[pinned]" in capsys.readouterr().out


def test_reusable_workflow_calls_are_checked_against_their_inputs(tmp_path: Path) -> None:
    caller = """
name: caller
on: push
permissions: {}
jobs:
  pipeline:
    uses: $/.github/workflows/devsecops.yml
    permissions:
      contents: read
    with:
      app-dir: examples/sample-app
      {extra}
"""
    good = write(tmp_path, caller.replace("{extra}", "promote: false"), "good.yml")
    assert check_file(good, REPO_ROOT) == []
    bad = write(tmp_path, caller.replace("{extra}", "promte: false"), "bad.yml")
    assert [v.message for v in check_file(bad, REPO_ROOT)] == [
        "jobs.pipeline: devsecops.yml has no input 'promte'"
    ]
    missing = write(tmp_path, caller.replace("devsecops.yml", "nope.yml").replace("{extra}", ""), "m.yml")
    assert [v.rule for v in check_file(missing, REPO_ROOT)] == ["own-actions"]
