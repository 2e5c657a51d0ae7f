"""The reusable workflow, run locally: GitHub's parser + evaluator, our actions, the sample app."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SAMPLE_APP
from tests.workflow_runner.runner import (
    Bridge,
    LocalWorkflowRun,
    StepContext,
    WorkflowError,
    check_wiring,
    load_workflow,
    python_env,
)

DEVSECOPS = REPO_ROOT / ".github" / "workflows" / "devsecops.yml"


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    b = Bridge()
    yield b
    b.close()


class Artifacts:
    """upload-artifact / download-artifact on a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def upload(self, ctx: StepContext) -> Mapping[str, str]:
        target = self.root / str(ctx.with_["name"])
        if target.exists():
            raise RuntimeError(f"artifact {ctx.with_['name']} already exists (names must be unique)")
        source = Path(str(ctx.with_["path"]))
        source = source if source.is_absolute() else ctx.workspace / source
        files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
        if not files and ctx.with_.get("if-no-files-found") == "error":
            raise RuntimeError("no files found")
        shutil.copytree(source, target) if source.is_dir() else shutil.copy2(source, target)
        return {"artifact-id": str(len(list(self.root.iterdir())))}

    def download(self, ctx: StepContext) -> Mapping[str, str]:
        source = self.root / str(ctx.with_["name"])
        dest = Path(str(ctx.with_.get("path") or ctx.workspace))
        dest = dest if dest.is_absolute() else ctx.workspace / dest
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return {"download-path": str(dest)}


def noop(ctx: StepContext) -> Mapping[str, str]:
    return {}


def make_run(
    bridge: Bridge, tmp_path: Path, *, content: str | None = None, inputs: Mapping[str, object] | None = None
) -> tuple[LocalWorkflowRun, Path]:
    workspace = tmp_path / "workspace"
    shutil.copytree(
        SAMPLE_APP, workspace, ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__")
    )
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    artifacts = Artifacts(tmp_path / "artifacts")
    artifacts.root.mkdir()
    wf = load_workflow(bridge, DEVSECOPS, content)
    handlers = {
        "actions/checkout": noop,
        "actions/setup-python": noop,
        "actions/upload-artifact": artifacts.upload,
        "actions/download-artifact": artifacts.download,
    }
    run = LocalWorkflowRun(
        bridge, wf, workspace=workspace, temp=temp, inputs=inputs or {}, env=python_env(), handlers=handlers
    )
    return run, workspace


def test_success_run_wires_build_outputs_to_workflow_outputs(bridge: Bridge, tmp_path: Path) -> None:
    run, workspace = make_run(bridge, tmp_path)
    result = run.run()
    assert result.result("build") == "success", result.log()
    digest = hashlib.sha256((workspace / "dist" / "sample-app.pyz").read_bytes()).hexdigest()
    assert json.loads(result.outputs["subjects"]) == [
        {"name": "sample-app.pyz", "digest": {"sha256": digest}}
    ]
    assert base64.b64decode(result.outputs["digests"]).decode() == f"{digest}  sample-app.pyz\n"
    assert result.outputs["version"] == "0.0.0-dev"
    assert "Build of sample-app" in result.jobs["build"].summary
    uploaded = tmp_path / "artifacts" / "devops-agent-build-1-1"
    assert sorted(p.name for p in uploaded.iterdir()) == ["build-manifest.json", "sample-app.pyz"]


def test_failed_build_fails_the_job(bridge: Bridge, tmp_path: Path) -> None:
    run, workspace = make_run(bridge, tmp_path)
    (workspace / "tests" / "test_broken.py").write_text(
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n        self.fail('boom')\n"
    )
    result = run.run()
    assert result.result("build") == "failure"
    steps = {s.name: s.outcome for s in result.jobs["build"].steps}
    assert steps["Build and test"] == "failure"
    assert steps["Upload the build artifacts"] == "skipped"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "value: ${{ jobs.build.outputs.version }}",
            "value: ${{ jobs.build.outputs.versoin }}",
            "job 'build' has no output 'versoin'",
        ),
        (
            "version: ${{ steps.build.outputs.version }}",
            "version: ${{ steps.build.outputs.semver }}",
            "step 'build' has no output 'semver'",
        ),
        (
            "version: ${{ steps.build.outputs.version }}",
            "version: ${{ steps.bild.outputs.version }}",
            "no step with id 'bild'",
        ),
        (
            "value: ${{ jobs.build.outputs.version }}",
            "value: ${{ jobs.compile.outputs.version }}",
            "no job 'compile'",
        ),
    ],
)
def test_broken_wiring_is_caught(bridge: Bridge, old: str, new: str, message: str) -> None:
    text = DEVSECOPS.read_text()
    assert old in text
    wf = load_workflow(bridge, DEVSECOPS, text.replace(old, new, 1))
    with pytest.raises(WorkflowError, match=message):
        check_wiring(wf)


def test_broken_needs_is_caught(bridge: Bridge) -> None:
    text = DEVSECOPS.read_text() + (
        "  extra:\n    runs-on: ubuntu-latest\n    needs: [biuld]\n    permissions: {}\n"
        "    steps:\n      - shell: bash\n        run: echo hi\n"
    )
    # GitHub's parser itself rejects it (our own topological check is the second line).
    with pytest.raises(WorkflowError, match="unknown job 'biuld'"):
        check_wiring(load_workflow(bridge, DEVSECOPS, text))


def test_needs_context_of_a_job_not_needed_is_caught(bridge: Bridge) -> None:
    text = DEVSECOPS.read_text() + (
        "  extra:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    if: needs.build.result == 'success'\n"
        "    steps:\n      - shell: bash\n        run: echo hi\n"
    )
    wf = load_workflow(bridge, DEVSECOPS, text)
    with pytest.raises(WorkflowError, match=r"uses needs\.build but does not need it"):
        check_wiring(wf)


def test_parser_errors_are_reported(bridge: Bridge) -> None:
    with pytest.raises(WorkflowError, match=r"devsecops\.yml.*runs_on"):
        load_workflow(bridge, DEVSECOPS, DEVSECOPS.read_text().replace("runs-on:", "runs_on:", 1))


def test_condition_semantics_match_github(bridge: Bridge, tmp_path: Path) -> None:
    """Implicit success() and failure()/always() propagation through needs, on a tiny workflow."""
    text = """
on: workflow_call
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - shell: bash
        run: exit 1
  b:
    needs: a
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - shell: bash
        run: echo never
  on-failure:
    needs: [a, b]
    if: failure()
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - shell: bash
        run: echo handled
  roll-up:
    needs: [a, b, on-failure]
    if: always()
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - shell: bash
        env:
          RESULTS: ${{ toJSON(needs.*.result) }}
        run: echo "$RESULTS"
"""
    path = tmp_path / "wf.yml"
    path.write_text(text)
    wf = load_workflow(bridge, path)
    (tmp_path / "temp").mkdir()
    result = LocalWorkflowRun(bridge, wf, workspace=tmp_path, temp=tmp_path / "temp").run()
    assert {j: r.result for j, r in result.jobs.items()} == {
        "a": "failure",
        "b": "skipped",
        "on-failure": "success",
        "roll-up": "success",
    }
    assert '"failure"' in result.jobs["roll-up"].steps[0].log
