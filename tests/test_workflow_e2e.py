"""devsecops.yml, run locally end to end: GitHub's own workflow parser and expression evaluator
(tests/workflow_runner), our composite actions running the real devops-agent commands, the sample
app, a fake GitHub server (deployments, environments, approvals, incidents) and a fake OSV server.

Every job gets its own runner directory, so files only travel between jobs as artifacts, as on
GitHub. Scenarios: a success run through an approval, a gate failure, a failed staging validation
that rolls back to the previous release, and a rejected production approval. Static wiring checks
(broken needs/outputs) fail on mutated copies of the workflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.incidents.model import IncidentMarker
from tests.conftest import REPO_ROOT, SAMPLE_APP, SHARED
from tests.fakes.github.server import FakeGitHub
from tests.fakes.osv import FakeOsv, serve
from tests.fixtures.deploy.support import free_ports
from tests.workflow_runner.runner import (
    Bridge,
    LocalWorkflowRun,
    RunResult,
    StepContext,
    WorkflowError,
    check_wiring,
    load_workflow,
    python_env,
)

DEVSECOPS = REPO_ROOT / ".github" / "workflows" / "devsecops.yml"
OSV_RECORDS = SHARED / "corpus" / "osv" / "records"
CALLER = "pipeline.yml"  # the caller's workflow that uses devsecops.yml


def find_semgrep() -> str | None:
    for candidate in (
        os.environ.get("DEVOPS_AGENT_SEMGREP"),
        str(REPO_ROOT / ".venv-semgrep" / "bin" / "semgrep"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("semgrep")


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    b = Bridge()
    yield b
    b.close()


class Artifacts:
    """upload-artifact / download-artifact over a local directory (names unique per run)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def upload(self, ctx: StepContext) -> Mapping[str, str]:
        target = self.root / str(ctx.with_["name"])
        if target.exists():
            raise RuntimeError(f"an artifact named {ctx.with_['name']} already exists")
        target.mkdir()
        for line in str(ctx.with_["path"]).splitlines():
            if not line.strip():
                continue
            source = Path(line.strip())
            source = source if source.is_absolute() else ctx.workspace / source
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.is_file():
                shutil.copy2(source, target / source.name)
        if not any(target.iterdir()) and ctx.with_.get("if-no-files-found") == "error":
            raise RuntimeError(f"no files found for artifact {ctx.with_['name']}")
        return {"artifact-id": str(len(list(self.root.iterdir())))}

    def download(self, ctx: StepContext) -> Mapping[str, str]:
        source = self.root / str(ctx.with_["name"])
        if not source.is_dir():
            raise RuntimeError(f"artifact {ctx.with_['name']} not found")
        dest = Path(str(ctx.with_.get("path") or ctx.workspace))
        dest = dest if dest.is_absolute() else ctx.workspace / dest
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return {"download-path": str(dest)}


class Pipeline:
    """One caller repository (a copy of the sample app) and the runners that execute its runs."""

    def __init__(self, tmp: Path, bridge: Bridge, fake: FakeGitHub, osv_url: str, semgrep: str) -> None:
        self.tmp = tmp
        self.bridge = bridge
        self.fake = fake
        self.semgrep = semgrep
        self.repo = tmp / "repo"
        shutil.copytree(
            SAMPLE_APP, self.repo, ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__")
        )
        self.keys = tmp / "keys"
        self._make_key()
        ports = free_ports(4)
        self.config_path = self.repo / ".github" / "devops-agent.yml"
        config = yaml.safe_load(self.config_path.read_text())
        config["scan"]["pip_audit"]["osv_url"] = osv_url
        config["sbom"] = {"supplier": "Example Org"}
        config["sign"] = {
            "method": "key",
            "key": str(self.keys / "signing.key"),
            "public_keys": [str(self.keys / "signing.pub")],
        }
        config["deploy"]["process"]["ports"] = ports[:2]
        config["promote"] = {"environment": "production", "deploy": {"process": {"ports": ports[2:]}}}
        self.write_config(config)
        self.artifacts = Artifacts(tmp / "artifacts")
        self.runners = tmp / "runners"
        self.reviews: list[tuple[str, str]] = []

    def _make_key(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        self.keys.mkdir(mode=0o700)
        key = ed25519.Ed25519PrivateKey.generate()
        private = self.keys / "signing.key"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        private.chmod(0o600)
        (self.keys / "signing.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.config_path.read_text())
        return data

    def write_config(self, config: Mapping[str, Any]) -> None:
        self.config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))

    def cli_env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DEVOPS_AGENT_"))},
            "GITHUB_REPOSITORY": f"{self.fake.owner}/{self.fake.repo}",
            "GITHUB_API_URL": self.fake.api_url,
            "GITHUB_TOKEN": self.fake.token,
        }

    def review(self, run_id: int, environment: str, decision: str) -> bool:
        """A reviewer answers the pending deployment with `devops-agent approve|reject`."""
        env_id = self.fake.environments[environment]["id"]
        self.fake.pending[run_id] = [env_id]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "devops_agent",
                decision,
                "--run",
                str(run_id),
                "--env",
                environment,
                "--comment",
                f"{decision} from the e2e test",
            ],
            env=self.cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert self.fake.pending[run_id] == [], "the review answered the pending deployment"
        self.reviews.append((environment, decision))
        return decision == "approve"

    def run(self, *, decision: str = "approve") -> tuple[RunResult, int]:
        run_id = self.fake.add_run(CALLER, status="in_progress", conclusion=None)
        # GitHub lists this run's jobs as they go; the local runner does not report them to the fake
        # (an in-progress job's null conclusion is also outside the OpenAPI description's enum).
        self.fake.jobs[run_id] = []
        github = {
            "repository": f"{self.fake.owner}/{self.fake.repo}",
            "run_id": str(run_id),
            "token": self.fake.token,
            "api_url": self.fake.api_url,
            "workflow_ref": f"{self.fake.owner}/{self.fake.repo}/.github/workflows/{CALLER}@refs/heads/main",
        }

        def approve(environment: str, job_id: str) -> bool:
            if environment == "production":
                return self.review(run_id, environment, decision)
            return True

        handlers = {
            "actions/setup-python": lambda ctx: {},
            "actions/upload-artifact": self.artifacts.upload,
            "actions/download-artifact": self.artifacts.download,
        }
        env = {**python_env(), "DEVOPS_AGENT_SEMGREP": self.semgrep, "SOURCE_DATE_EPOCH": "1700000000"}
        wf = load_workflow(self.bridge, DEVSECOPS)
        run = LocalWorkflowRun(
            self.bridge,
            wf,
            workspace=self.repo,
            temp=self.tmp / "unused-temp",
            github=github,
            env=env,
            handlers=handlers,
            approve=approve,
            runners=self.runners,
        )
        result = run.run()
        self.fake.runs[run_id]["status"] = "completed"
        failed = any(j.result == "failure" for j in result.jobs.values())
        self.fake.runs[run_id]["conclusion"] = "failure" if failed else "success"
        return result, run_id

    def stop_releases(self) -> None:
        for work in sorted(self.runners.glob("*/work")):
            if (work / ".devops-agent" / "deploy").exists():
                subprocess.run(
                    [sys.executable, "-m", "devops_agent", "deploy", "--app", str(work), "--stop"],
                    capture_output=True,
                    timeout=120,
                    check=False,
                    env={k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
                )


@pytest.fixture
def pipeline(tmp_path: Path, bridge: Bridge) -> Iterator[Pipeline]:
    semgrep = find_semgrep()
    if semgrep is None:
        pytest.skip("semgrep is not installed: run `ROOT=$PWD bash .ci/setup.d/20-semgrep.sh`")
    fake = FakeGitHub(clock=time.time).start()
    reviewer = fake.user("release-manager")["id"]
    fake._put_environment("staging", {})
    fake._put_environment("production", {"reviewers": [{"type": "User", "id": reviewer}]})
    try:
        with serve(FakeOsv.from_dir(OSV_RECORDS)) as osv:
            p = Pipeline(tmp_path, bridge, fake, osv.query_url, semgrep)
            try:
                yield p
            finally:
                p.stop_releases()
        assert fake.violations == [], "every request/response matched GitHub's OpenAPI description"
    finally:
        fake.stop()


def jobs(result: RunResult) -> dict[str, str]:
    return {job_id: job.result for job_id, job in result.jobs.items()}


def deployments(fake: FakeGitHub, environment: str) -> list[dict[str, Any]]:
    return [d for d in fake.deployments.values() if d["environment"] == environment and d.get("payload")]


def incidents(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [i for i in fake.issues.values() if "cicd-incident" in i["labels"]]


@pytest.mark.slow
def test_success_run_through_an_approval(pipeline: Pipeline) -> None:
    result, run_id = pipeline.run(decision="approve")
    assert jobs(result) == {
        "build": "success",
        "scan": "success",
        "code-scanning": "skipped",
        "sbom": "success",
        "sign": "success",
        "deploy-staging": "success",
        "production": "success",
        "incidents": "success",
        "result": "success",
    }, result.log()
    digest = json.loads(result.outputs["subjects"])[0]["digest"]["sha256"]
    assert result.outputs["digest"] == f"sha256:{digest}"
    assert result.outputs["staging-result"] == "passed"
    assert result.outputs["gate-passed"] == "true"
    assert result.outputs["promoted"] == "true"
    assert result.outputs["staging-url"].startswith("http://127.0.0.1:")
    assert result.outputs["production-url"].startswith("http://127.0.0.1:")
    assert pipeline.reviews == [("production", "approve")]
    # staging and production recorded as GitHub deployments of the same digest
    for environment in ("staging", "production"):
        assert deployments(pipeline.fake, environment), environment
    assert "Change record — sample-app → production" in result.jobs["production"].summary
    assert incidents(pipeline.fake) == []
    # artifacts carried everything between jobs: nothing was rebuilt in production
    names = sorted(p.name for p in pipeline.artifacts.root.iterdir())
    assert f"devops-agent-build-{run_id}-1" in names
    assert f"devops-agent-attestations-{run_id}-1" in names


@pytest.mark.slow
def test_gate_failure_blocks_deployment_and_opens_an_incident(pipeline: Pipeline) -> None:
    (pipeline.repo / "src" / "sample_app" / "admin.py").write_text(
        "import subprocess\n\n\ndef run(command: str) -> int:\n"
        "    return subprocess.call(command, shell=True)\n"
    )
    result, _ = pipeline.run()
    assert jobs(result)["scan"] == "failure", result.log()
    assert jobs(result)["deploy-staging"] == "skipped"
    assert jobs(result)["production"] == "skipped"
    assert jobs(result)["result"] == "failure"
    assert jobs(result)["incidents"] == "success", result.log()
    assert result.outputs["gate-passed"] == "false"
    assert deployments(pipeline.fake, "staging") == []
    [issue] = incidents(pipeline.fake)
    marker = IncidentMarker.parse(issue["body"])
    assert marker is not None
    assert marker.stage == "scan"


@pytest.mark.slow
def test_failed_validation_rolls_back_to_the_previous_release(pipeline: Pipeline) -> None:
    first, _ = pipeline.run()
    assert jobs(first)["deploy-staging"] == "success", first.log()
    good = first.outputs["digest"]
    config = pipeline.config()
    config["deploy"]["process"]["env"] = {"SAMPLE_APP_FAIL_HEALTH": "1"}
    pipeline.write_config(config)
    second, _ = pipeline.run()
    assert jobs(second)["deploy-staging"] == "failure", second.log()
    assert second.outputs["staging-result"] == "rolled-back"
    assert jobs(second)["production"] == "skipped"
    assert jobs(second)["result"] == "failure"
    summary = second.jobs["deploy-staging"].summary
    assert "Time to restore:" in summary
    assert float(second.jobs["deploy-staging"].outputs["time-to-restore"]) < 120
    # the previous release answers again on staging
    import urllib.request

    with urllib.request.urlopen(first.outputs["staging-url"] + "/healthz", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"
    [issue] = incidents(pipeline.fake)
    marker = IncidentMarker.parse(issue["body"])
    assert marker is not None
    assert marker.stage == "deploy-staging"
    assert good.startswith("sha256:")


@pytest.mark.slow
def test_rejected_approval_stops_production(pipeline: Pipeline) -> None:
    result, _ = pipeline.run(decision="reject")
    assert jobs(result)["deploy-staging"] == "success", result.log()
    assert jobs(result)["production"] == "failure"
    assert result.jobs["production"].reason == "deployment to 'production' was rejected"
    assert jobs(result)["result"] == "failure"
    assert deployments(pipeline.fake, "production") == []
    assert pipeline.reviews == [("production", "reject")]


# -- static wiring -------------------------------------------------------------------------------


def test_committed_workflow_is_wired(bridge: Bridge) -> None:
    wf = load_workflow(bridge, DEVSECOPS)
    check_wiring(wf)
    assert set(wf.jobs) >= {
        "build",
        "scan",
        "sbom",
        "sign",
        "deploy-staging",
        "production",
        "incidents",
        "result",
    }


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
        (
            "digest: ${{ needs.deploy-staging.outputs.digest }}",
            "digest: ${{ needs.deploy-staging.outputs.sha }}",
            "job 'deploy-staging' has no output 'sha'",
        ),
        (
            "    needs: [build, deploy-staging]\n    if: ${{ inputs.promote",
            "    needs: [build]\n    if: ${{ inputs.promote",
            "uses needs.deploy-staging but does not need it",
        ),
    ],
)
def test_broken_wiring_is_caught(bridge: Bridge, old: str, new: str, message: str) -> None:
    text = DEVSECOPS.read_text()
    assert old in text
    wf = load_workflow(bridge, DEVSECOPS, text.replace(old, new, 1))
    with pytest.raises(WorkflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_wiring(wf)


def test_broken_needs_is_caught(bridge: Bridge) -> None:
    text = DEVSECOPS.read_text().replace("needs: [build, sbom]", "needs: [build, sbomb]", 1)
    # GitHub's parser rejects it itself; our own topological check is the second line.
    with pytest.raises(WorkflowError, match="unknown job 'sbomb'"):
        check_wiring(load_workflow(bridge, DEVSECOPS, text))


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
    assert jobs(result) == {"a": "failure", "b": "skipped", "on-failure": "success", "roll-up": "success"}
    assert '"failure"' in result.jobs["roll-up"].steps[0].log
