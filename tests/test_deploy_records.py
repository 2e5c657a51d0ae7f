"""Deployment records: the local store and GitHub Deployments through the Platform interface
(GitHubPlatform against the stateful fake GitHub server, and LocalPlatform) — idempotent re-runs,
status transitions, last good release."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_agent.core.platform import Platform
from devops_agent.deploy.base import Release
from devops_agent.deploy.records import FanOut, LocalRecorder, PlatformRecorder, make_recorder
from tests.fakes.github.harness import FakeClock, GitHubHarness, LocalHarness

V1 = Release("1" * 64, "1.0.0", artifact="/a/v1.pyz")
V2 = Release("2" * 64, "2.0.0")
SHA = "c" * 40


@pytest.fixture(params=["github", "local"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    clock = FakeClock()
    harness = GitHubHarness(clock) if request.param == "github" else LocalHarness(clock, tmp_path / "p")
    try:
        yield harness.platform
    finally:
        harness.close()


def test_local_recorder_transitions_and_last_good(tmp_path: Path) -> None:
    rec = LocalRecorder(tmp_path)
    e1 = rec.start("staging", V1, run_id="r1", driver="process", description="deploying")
    rec.transition(e1, "in_progress", description="deployed", url="http://127.0.0.1:1")
    rec.transition(e1, "success", description="validated", validated=True)
    assert rec.last_good("staging") == V1.with_run("r1")
    e2 = rec.start("staging", V2, run_id="r2", driver="process", description="deploying")
    assert rec.latest("staging") == e2
    rec.transition(e2, "failure", description="check failed")
    assert rec.last_good("staging", exclude=V2.digest) == V1.with_run("r1")
    assert rec.last_good("staging", exclude=V1.digest) is None  # v2 never passed
    assert rec.last_good("production") is None
    [latest, first] = rec.entries("staging")
    assert [t.status for t in first.transitions] == ["in_progress", "in_progress", "success"]
    assert first.url == "http://127.0.0.1:1"
    assert latest.status == "failure"


def test_local_recorder_is_idempotent_per_environment_digest_run(tmp_path: Path) -> None:
    rec = LocalRecorder(tmp_path)
    for _ in range(3):
        entry = rec.start("staging", V1, run_id="r1", driver="process", description="deploying")
        rec.transition(entry, "in_progress", description="deployed")
    assert len(rec.entries()) == 1
    rec.transition(entry, "success", description="validated", validated=True)
    again = rec.start("staging", V1, run_id="r1", driver="process", description="deploying")
    assert again.status == "success"  # a re-run never downgrades a validated deployment
    rec.start("staging", V1, run_id="r2", driver="process", description="deploying")
    assert len(rec.entries()) == 2  # a new run is a new deployment


def test_platform_recorder_creates_one_deployment_with_status_transitions(platform: Platform) -> None:
    rec = PlatformRecorder(platform, ref=SHA, log_url="https://ci.example.test/run/1")
    entry = rec.start("staging", V1, run_id="r1", driver="process", description="deploying 1.0.0")
    rec.transition(
        entry, "success", description="validated", url="https://staging.example.test", validated=True
    )
    # the job is re-run: same key, no second deployment, no downgrade
    again = rec.start("staging", V1, run_id="r1", driver="process", description="deploying 1.0.0")
    assert again.status == "success"
    deployments = platform.list_deployments(environment="staging")
    assert len(deployments) == 1
    assert deployments[0].payload["digest"] == V1.ref
    assert deployments[0].sha == SHA
    states = [s.state for s in platform.list_deployment_statuses(deployments[0].id)]
    assert states == ["success", "in_progress"]  # newest first
    assert rec.last_good("staging") is not None


def test_platform_recorder_last_good_skips_failed_and_finds_superseded(platform: Platform) -> None:
    rec = PlatformRecorder(platform, ref=SHA)
    e1 = rec.start("staging", V1, run_id="r1", driver="command", description="d")
    rec.transition(e1, "success", description="validated", validated=True)
    e2 = rec.start("staging", V2, run_id="r2", driver="command", description="d")
    rec.transition(e2, "failure", description="health failed")
    good = rec.last_good("staging", exclude=V2.digest)
    assert good is not None
    assert good.digest == V1.digest
    assert good.version == "1.0.0"
    latest = rec.latest("staging")
    assert latest is not None
    assert (latest.release.digest, latest.status) == (V2.digest, "failure")
    # a later success of another release marks v1 inactive (auto_inactive): still "passed once"
    e3 = rec.start("staging", Release("3" * 64, "3.0.0"), run_id="r3", driver="command", description="d")
    rec.transition(e3, "success", description="validated", validated=True)
    assert rec.last_good("staging", exclude="3" * 64) == good


def test_transition_finds_the_platform_deployment_by_key(platform: Platform, tmp_path: Path) -> None:
    """validate runs in a later job than deploy: it only knows the local entry, not the GitHub id."""
    both = FanOut([PlatformRecorder(platform, ref=SHA), LocalRecorder(tmp_path)])
    both.start("staging", V1, run_id="r1", driver="process", description="deploying")
    local_only = LocalRecorder(tmp_path).latest("staging")
    assert local_only is not None
    assert "platform" not in local_only.ids
    PlatformRecorder(platform, ref=SHA).transition(local_only, "success", description="validated")
    [deployment] = platform.list_deployments(environment="staging")
    assert platform.list_deployment_statuses(deployment.id)[0].state == "success"


def test_make_recorder_selects_github_in_actions(tmp_path: Path) -> None:
    assert isinstance(make_recorder(tmp_path, {}), LocalRecorder)
    harness = GitHubHarness(FakeClock())
    try:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": f"{harness.fake.owner}/{harness.fake.repo}",
            "GITHUB_TOKEN": harness.fake.token,
            "GITHUB_API_URL": harness.fake.api_url,
            "GITHUB_SHA": SHA,
            "GITHUB_RUN_ID": "42",
        }
        rec = make_recorder(tmp_path, env)
        assert isinstance(rec, FanOut)
        entry = rec.start("staging", V1, run_id="42", driver="process", description="deploying")
        rec.transition(entry, "success", description="validated", validated=True)
        [deployment] = harness.platform.list_deployments(environment="staging")
        statuses = harness.platform.list_deployment_statuses(deployment.id)
        assert [s.state for s in statuses] == ["success", "in_progress"]
        assert statuses[0].log_url.endswith("/actions/runs/42")
        assert LocalRecorder(tmp_path).last_good("staging") is not None  # and the local store too
    finally:
        harness.close()
