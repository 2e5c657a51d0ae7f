"""actions/report-failure stays in step with the command: every input reaches an option, every
output is written; failed jobs get redacted log excerpts (bounded) from the jobs API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.gha import Actions, input_env_name
from devops_agent.core.platform import TOKEN_ENV_VARS, RepoRef
from devops_agent.core.state import StateStore
from devops_agent.incidents.collect import MAX_LOG_JOBS, github_jobs
from devops_agent.incidents.logs import LogResult
from devops_agent.incidents.model import RunInfo
from devops_agent.platform.local import LocalPlatform
from devops_agent.stages import incidents as stage
from tests.conftest import REPO_ROOT

ACTION = REPO_ROOT / "actions" / "report-failure" / "action.yml"
#: action input → (argparse attribute, a value to pass, the value argparse should hold)
INPUTS: dict[str, tuple[str, str, Any]] = {
    "needs": ("needs", '{"build": {"result": "failure"}}', '{"build": {"result": "failure"}}'),
    "app-dir": ("app", "apps/web", "apps/web"),
    "config": ("config", "ci/pipeline.yml", "ci/pipeline.yml"),
    "error": ("error", "exit 1", "exit 1"),
    "gate-reports": ("gate_report", "a.sarif\nb.sarif\n", ["a.sarif", "b.sarif"]),
    "deployment-report": ("deployment_report", "validate.json", "validate.json"),
    "context-dir": ("context_dir", "ops/failures", "ops/failures"),
    "dry-run": ("dry_run", "true", True),
}


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return data


def test_every_input_is_passed_through_env_and_read_by_the_parser(action: dict[str, Any]) -> None:
    [step] = action["runs"]["steps"]
    assert step["shell"] == "bash"
    assert "${{" not in step["run"]
    assert step["run"] == '"$GITHUB_ACTION_PATH/../../scripts/run-stage" report-failure'
    env = step["env"]
    assert set(action["inputs"]) == {*INPUTS, "token"}
    for name, spec in action["inputs"].items():
        assert spec["description"], name
        if name == "token":
            assert env["DEVOPS_AGENT_GITHUB_TOKEN"] == "${{ inputs.token }}"
            assert "DEVOPS_AGENT_GITHUB_TOKEN" in TOKEN_ENV_VARS
            continue
        assert env[input_env_name(name)] == f"${{{{ inputs.{name} }}}}", name
        attribute, value, expected = INPUTS[name]
        default = getattr(stage.build_parser("report-failure", {}).parse_args([]), attribute)
        parsed = stage.build_parser("report-failure", {input_env_name(name): value}).parse_args([])
        assert getattr(parsed, attribute) == expected != default, name


def test_every_output_is_written(action: dict[str, Any], sample_app: Path, tmp_path: Path) -> None:
    with StateStore.for_app(sample_app) as store:
        run_id = store.start_run(branch="main")
        store.finish_run(run_id, "failure", {"stage": "build"})
    output = tmp_path / "output"
    code = stage.main(["report-failure", "--app", str(sample_app)], env={"GITHUB_OUTPUT": str(output)})
    assert code == 0
    written = set(re.findall(r"^([a-z-]+)<<", output.read_text(encoding="utf-8"), re.M))
    assert written == set(action["outputs"])
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"
        assert spec["description"]


def test_failed_jobs_get_redacted_bounded_log_excerpts(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    platform = LocalPlatform(store, repo=RepoRef("o", "r"))
    failed = [(f"pipeline / stage{i}", "failure") for i in range(MAX_LOG_JOBS + 1)]
    run_id = platform.record_workflow_run("ci.yml", jobs=[("pipeline / build", "success"), *failed])
    fetched: list[int] = []

    def fetch(job_id: int) -> LogResult:
        fetched.append(job_id)
        if len(fetched) == 2:
            return LogResult(None, "not readable (HTTP 403): grant `actions: read`")
        return LogResult(f"setup\nerror: push denied for ghp_{'k' * 36}\n")

    run = RunInfo("app/ci.yml", "ci.yml", str(run_id), "main", "")
    jobs, notes = github_jobs(platform, run, log_lines=10, fetch_log=fetch, actions=Actions.from_env({}))
    store.close()
    assert len(fetched) == MAX_LOG_JOBS  # never more log downloads than that
    by_name = {j.name: j for j in jobs}
    assert by_name["pipeline / build"].log_excerpt == ""  # passed: no log fetched
    first = by_name["pipeline / stage0"]
    assert "error: push denied for ***" in first.log_excerpt
    assert "ghp_" not in first.log_excerpt
    assert by_name["pipeline / stage1"].log_note.startswith("not readable")
    assert notes == (f"log excerpts of the first {MAX_LOG_JOBS} failed jobs only",)


def test_without_a_token_logs_are_not_fetched(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    platform = LocalPlatform(store, repo=RepoRef("o", "r"))
    run_id = platform.record_workflow_run("ci.yml", jobs=[("build", "failure")])
    jobs, _ = github_jobs(
        platform,
        RunInfo("a/ci.yml", "ci.yml", str(run_id), "main", ""),
        log_lines=10,
        fetch_log=None,
        actions=Actions.from_env({}),
    )
    store.close()
    assert jobs[0].log_note == "log not fetched (no token)"
