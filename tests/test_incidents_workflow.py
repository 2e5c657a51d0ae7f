"""The incidents job documented in docs/incidents.md, appended to devsecops.yml and run with the
local workflow runner (GitHub's parser and expression evaluator): a failing build reaches the
report-failure action through `needs`, the context file is uploaded, a passing run uploads nothing;
once against the local state store and once against the fake GitHub server."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from devops_agent.incidents.model import IncidentMarker
from devops_agent.platform.local import LocalPlatform
from tests.conftest import REPO_ROOT, SAMPLE_APP
from tests.fakes.github.server import FakeGitHub
from tests.workflow_runner.runner import (
    Bridge,
    LocalWorkflowRun,
    StepContext,
    check_wiring,
    load_workflow,
    python_env,
)

DEVSECOPS = REPO_ROOT / ".github" / "workflows" / "devsecops.yml"
DOC = REPO_ROOT / "docs" / "incidents.md"


def documented_job() -> str:
    """The YAML block of the "In the workflow" section of docs/incidents.md."""
    section = DOC.read_text(encoding="utf-8").split("## In the workflow", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def committed_job() -> dict[str, object]:
    import yaml

    job: dict[str, object] = yaml.safe_load(DEVSECOPS.read_text(encoding="utf-8"))["jobs"]["incidents"]
    return job


def test_docs_show_the_committed_incidents_job() -> None:
    import yaml

    [(name, documented)] = yaml.safe_load(documented_job()).items()
    assert name == "incidents"
    assert documented == committed_job(), "docs/incidents.md and devsecops.yml's incidents job differ"


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    b = Bridge()
    yield b
    b.close()


class Artifacts:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def upload(self, ctx: StepContext) -> Mapping[str, str]:
        source = Path(str(ctx.with_["path"]))
        source = source if source.is_absolute() else ctx.workspace / source
        target = self.root / str(ctx.with_["name"])
        target.mkdir()
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, target / source.name)
        return {"artifact-id": "1"}


def make_run(
    bridge: Bridge,
    tmp_path: Path,
    *,
    fail_build: bool,
    github: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[LocalWorkflowRun, Path, Artifacts]:
    workspace = tmp_path / "workspace"
    shutil.copytree(
        SAMPLE_APP, workspace, ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__")
    )
    if fail_build:
        (workspace / "tests" / "test_broken.py").write_text(
            "import unittest\n\n\nclass T(unittest.TestCase):\n"
            "    def test_x(self):\n        self.fail('boom')\n"
        )
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    # GitHub sets these for every job; the local runner does not
    env = {
        "GITHUB_WORKFLOW_REF": "octo/app/.github/workflows/ci.yml@refs/heads/main",
        "GITHUB_REF_NAME": "main",
        **(env or {}),
    }
    artifacts = Artifacts(tmp_path / "artifacts")
    wf = load_workflow(bridge, DEVSECOPS)
    check_wiring(wf)
    handlers = {
        "actions/checkout": lambda ctx: {},
        "actions/setup-python": lambda ctx: {},
        "actions/upload-artifact": artifacts.upload,
    }
    run = LocalWorkflowRun(
        bridge,
        wf,
        workspace=workspace,
        temp=temp,
        github=github,
        env={**python_env(), **env},
        handlers=handlers,
        only={"build", "incidents"},  # the stages between them count as skipped
    )
    return run, workspace, artifacts


def test_incidents_job_is_least_privilege_and_uploads_hidden_files() -> None:
    job = committed_job()
    assert job["permissions"] == {"contents": "read", "issues": "write", "actions": "read"}
    assert job["if"] == "${{ always() && !cancelled() }}"
    steps = job["steps"]
    assert isinstance(steps, list)
    upload = steps[-1]
    assert upload["with"]["include-hidden-files"] is True  # the context file is a dot-file
    assert upload["if"].startswith("${{ always() && ")  # kept even when the report step failed
    assert "concurrency" not in job


def test_failed_build_opens_a_local_incident_and_uploads_the_context(bridge: Bridge, tmp_path: Path) -> None:
    run, workspace, artifacts = make_run(bridge, tmp_path, fail_build=True)
    result = run.run()
    assert result.result("build") == "failure"
    assert result.result("incidents") == "success", result.log()
    steps = {s.name: s.outcome for s in result.jobs["incidents"].steps}
    assert steps["Upload the failure context"] == "success"
    [uploaded] = (artifacts.root / "devops-agent-failure-context-1-1").iterdir()
    assert uploaded.name.startswith(".devops_cicd_cache_")
    assert "Failure point: build" in uploaded.read_text(encoding="utf-8")
    with LocalPlatform.for_app(workspace) as platform:
        [issue] = platform.list_issues(labels=["deployment-failure", "cicd-incident"])
    marker = IncidentMarker.parse(issue.body)
    assert marker is not None
    assert marker.stage == "build"
    assert "| build | created |" in result.jobs["incidents"].summary


def test_passing_run_reports_nothing_and_uploads_nothing(bridge: Bridge, tmp_path: Path) -> None:
    run, _workspace, artifacts = make_run(bridge, tmp_path, fail_build=False)
    result = run.run()
    assert result.result("build") == "success"
    assert result.result("incidents") == "success", result.log()
    steps = {s.name: s.outcome for s in result.jobs["incidents"].steps}
    assert steps["Upload the failure context"] == "skipped"
    assert [p.name for p in artifacts.root.iterdir()] == ["devops-agent-build-1-1"]  # no failure context
    assert "recovery checked" in result.jobs["incidents"].summary


@pytest.mark.slow
def test_failed_build_against_the_fake_github(bridge: Bridge, tmp_path: Path) -> None:
    fake = FakeGitHub(clock=time.time).start()
    try:
        run_id = fake.add_run("ci.yml", status="in_progress", conclusion=None)
        fake.jobs[run_id] = [
            {"id": fake.new_id(), "name": "pipeline / build", "status": "completed", "conclusion": "failure"}
        ]
        github = {"repository": f"{fake.owner}/{fake.repo}", "run_id": str(run_id), "token": fake.token}
        env = {
            "GITHUB_API_URL": fake.api_url,
            "GITHUB_WORKFLOW_REF": f"{fake.owner}/{fake.repo}/.github/workflows/ci.yml@refs/heads/main",
            "GITHUB_REF_NAME": "main",
        }
        run, _workspace, artifacts = make_run(bridge, tmp_path, fail_build=True, github=github, env=env)
        result = run.run()
        assert result.result("incidents") == "success", result.log()
        [issue] = fake.issues.values()
        assert issue["labels"] == ["deployment-failure", "cicd-incident"]
        assert issue["title"] == "Pipeline failure: build failed on main (sample-app)"
        assert "[pipeline / build](" in issue["body"]
        assert fake.token not in json.dumps(fake.issues)
        # the log shows the token only in the ::add-mask:: command that hides it
        leaks = [line for line in result.log().splitlines() if fake.token in line]
        assert leaks == [f"::add-mask::{fake.token}"]
        assert (artifacts.root / f"devops-agent-failure-context-{run_id}-1").is_dir()
        assert fake.violations == []
    finally:
        fake.stop()
