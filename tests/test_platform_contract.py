"""One contract suite for every Platform backend: GitHubPlatform (+ the fake GitHub server,
OpenAPI-validated) and LocalPlatform (SQLite state store)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.platform import (
    BranchPolicy,
    DeploymentBranchPolicy,
    EnvironmentSpec,
    PackageOwner,
    Platform,
)
from tests.fakes.github.harness import FakeClock, GitHubHarness, Harness, LocalHarness


@pytest.fixture(params=["github", "local"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    clock = FakeClock()
    h: Harness = GitHubHarness(clock) if request.param == "github" else LocalHarness(clock, tmp_path)
    try:
        yield h
    finally:
        h.close()
    if isinstance(h, GitHubHarness):
        assert h.fake.violations == [], "\n".join(map(str, h.fake.violations))


@pytest.fixture
def platform(harness: Harness) -> Platform:
    return harness.platform


# -- repository and branches -----------------------------------------------------------------------
def test_repository_reports_default_branch(harness: Harness, platform: Platform) -> None:
    repo = platform.get_repository()
    assert repo.default_branch == harness.default_branch() == "main"
    assert repo.full_name == "octo-org/hello-world"


def test_branches_listing_protection_and_deletion(harness: Harness, platform: Platform) -> None:
    harness.add_branch("feature/old", age_days=90)
    harness.add_branch("release", protected=True)
    names = [b.name for b in platform.list_branches()]
    assert names == sorted(names)
    assert {"main", "feature/old", "release"} <= set(names)
    old = platform.get_branch("feature/old")
    assert old is not None
    assert old.commit_date is not None
    assert (harness.clock.now - old.commit_date.timestamp()) > 80 * 86400
    assert platform.get_branch("nope") is None
    protection = platform.get_branch_protection("main")
    assert protection is not None
    assert "build" in protection.required_status_checks
    assert platform.get_branch_protection("feature/old") is None
    assert platform.delete_branch("feature/old") is True
    assert platform.delete_branch("feature/old") is False
    assert platform.get_branch("feature/old") is None


def test_default_branch_cannot_be_deleted(platform: Platform) -> None:
    with pytest.raises(PlatformError):
        platform.delete_branch("main")
    assert platform.get_branch("main") is not None


def test_open_pull_requests_by_head(harness: Harness, platform: Platform) -> None:
    harness.add_branch("topic")
    harness.add_branch("other")
    number = harness.add_pull("topic")
    prs = platform.list_pull_requests(head="topic")
    assert [p.number for p in prs] == [number]
    assert prs[0].head_ref == "topic"
    assert prs[0].base_ref == "main"
    assert platform.list_pull_requests(head="other") == ()


# -- issues, labels, comments ----------------------------------------------------------------------
def test_issue_lifecycle_by_label(platform: Platform) -> None:
    first = platform.create_issue("deploy failed", "details", labels=["deployment-failure", "cicd-incident"])
    platform.create_issue("unrelated", "x", labels=["other"])
    found = platform.list_issues(labels=["deployment-failure", "cicd-incident"])
    assert [i.number for i in found] == [first.number]
    assert found[0].state == "open"
    assert "details" in found[0].body
    closed = platform.close_issue(first.number)
    assert closed.state == "closed"
    assert closed.closed_at is not None
    assert platform.list_issues(labels=["deployment-failure"]) == ()
    assert [i.number for i in platform.list_issues(labels=["deployment-failure"], state="closed")] == [
        first.number
    ]
    assert platform.close_issue(first.number).state == "closed"  # idempotent
    reopened = platform.update_issue(first.number, state="open", title="deploy failed again")
    assert reopened.state == "open"
    assert reopened.title == "deploy failed again"


def test_issues_are_listed_newest_first(platform: Platform) -> None:
    numbers = [platform.create_issue(f"i{n}", "b", labels=["x"]).number for n in range(3)]
    assert [i.number for i in platform.list_issues(labels=["x"])] == sorted(numbers, reverse=True)


def test_create_issue_with_key_is_idempotent(platform: Platform) -> None:
    a = platform.create_issue("t", "body", labels=["deployment-failure"], key="pipeline/main/deploy")
    b = platform.create_issue("t", "body", labels=["deployment-failure"], key="pipeline/main/deploy")
    assert a.number == b.number
    assert a.key == "pipeline/main/deploy"
    assert len(platform.list_issues(labels=["deployment-failure"], state="all")) == 1
    found = platform.find_issue_by_key("pipeline/main/deploy", labels=["deployment-failure"])
    assert found is not None
    assert found.number == a.number
    assert platform.find_issue_by_key("missing") is None


def test_labels_and_comments(platform: Platform) -> None:
    issue = platform.create_issue("t", "b", labels=["a"])
    assert set(platform.add_labels(issue.number, ["escalated"])) == {"a", "escalated"}
    assert set(platform.add_labels(issue.number, ["escalated"])) == {"a", "escalated"}
    label = platform.create_label("deployment-failure", color="#d73a4a", description="failed")
    assert label.color == "d73a4a"
    again = platform.create_label("deployment-failure", color="000000")
    assert again.color == "d73a4a"  # unchanged: idempotent
    assert "deployment-failure" in [x.name for x in platform.list_labels()]
    first = platform.add_comment(issue.number, "failed again", key="run-1")
    platform.add_comment(issue.number, "failed again", key="run-1")
    platform.add_comment(issue.number, "and again")
    comments = platform.list_comments(issue.number)
    assert next(c.id for c in comments) == first.id
    assert len(comments) == 2
    assert comments[0].key == "run-1"
    assert "failed again" in comments[0].body
    assert platform.get_issue(issue.number) is not None
    assert platform.get_issue(99999) is None


# -- deployments -------------------------------------------------------------------------------------
def test_deployments_and_statuses(platform: Platform) -> None:
    sha = "c" * 40
    first = platform.create_deployment(sha, "staging", description="v1", payload={"digest": "sha256:1"})
    second = platform.create_deployment(sha, "staging", description="v2")
    platform.create_deployment("d" * 40, "production")
    assert first.sha == sha
    assert first.environment == "staging"
    assert first.payload["digest"] == "sha256:1"
    listed = platform.list_deployments(environment="staging")
    assert [d.id for d in listed] == [second.id, first.id]
    assert [d.id for d in platform.list_deployments(sha="d" * 40)] == [
        platform.list_deployments(environment="production")[0].id
    ]
    assert len(platform.list_deployments(limit=1)) == 1
    platform.create_deployment_status(first.id, "in_progress", description="rolling")
    platform.create_deployment_status(first.id, "success", log_url="https://ci.invalid/1")
    statuses = platform.list_deployment_statuses(first.id)
    assert [s.state for s in statuses] == ["success", "in_progress"]
    # a newer success deactivates the older one (auto_inactive)
    platform.create_deployment_status(second.id, "success")
    assert platform.list_deployment_statuses(first.id)[0].state == "inactive"
    got = platform.get_deployment(first.id)
    assert got is not None
    assert got.id == first.id
    assert platform.get_deployment(424242) is None


def test_create_deployment_with_key_is_idempotent(platform: Platform) -> None:
    a = platform.create_deployment("e" * 40, "staging", key="run-7/staging")
    b = platform.create_deployment("e" * 40, "staging", key="run-7/staging")
    assert a.id == b.id
    assert a.key == "run-7/staging"
    assert len(platform.list_deployments(environment="staging")) == 1


# -- environments and approvals ---------------------------------------------------------------------
def test_environment_put_get_and_reset(harness: Harness, platform: Platform) -> None:
    harness.add_user("alice")
    harness.add_team("octo-org", "ops")
    alice = platform.resolve_reviewer("User", "alice")
    ops = platform.resolve_reviewer("Team", "octo-org/ops")
    spec = EnvironmentSpec(
        "production",
        reviewers=(alice, ops),
        wait_timer=10,
        prevent_self_review=True,
        deployment_branch_policy=DeploymentBranchPolicy(False, True),
        branch_policies=(BranchPolicy("main"), BranchPolicy("v*", "tag")),
    )
    env = platform.put_environment(spec)
    assert env.name == "production"
    assert env.wait_timer == 10
    assert env.prevent_self_review
    assert {(r.type, r.id) for r in env.reviewers} == {("User", alice.id), ("Team", ops.id)}
    assert {(p.type, p.name) for p in env.branch_policies} == {("branch", "main"), ("tag", "v*")}
    assert env.can_admins_bypass is True
    # same spec again: no change; a narrower spec removes what it omits (PUT semantics)
    assert platform.put_environment(spec).spec() == env.spec()
    narrower = EnvironmentSpec(
        "production",
        reviewers=(alice,),
        deployment_branch_policy=DeploymentBranchPolicy(False, True),
        branch_policies=(BranchPolicy("main"),),
    )
    env2 = platform.put_environment(narrower)
    assert [r.id for r in env2.reviewers] == [alice.id]
    assert env2.wait_timer == 0
    assert not env2.prevent_self_review
    assert [(p.type, p.name) for p in env2.branch_policies] == [("branch", "main")]
    open_env = platform.put_environment(EnvironmentSpec("staging"))
    assert open_env.deployment_branch_policy is None
    assert open_env.reviewers == ()
    assert [e.name for e in platform.list_environments()] == ["production", "staging"]
    assert platform.get_environment("nope") is None


def test_unknown_reviewer_is_an_error(platform: Platform) -> None:
    with pytest.raises(PlatformError, match="ghost"):
        platform.resolve_reviewer("User", "ghost")


def test_pending_deployment_approve(harness: Harness, platform: Platform) -> None:
    harness.add_user("alice")
    alice = platform.resolve_reviewer("User", "alice")
    platform.put_environment(EnvironmentSpec("production", reviewers=(alice,)))
    run_id = harness.add_run("devsecops.yml", waiting_on=["production"])
    pending = platform.list_pending_deployments(run_id)
    assert [p.environment for p in pending] == ["production"]
    assert pending[0].reviewers[0].id == alice.id
    with pytest.raises(ConfigError):
        platform.review_pending_deployments(run_id, [pending[0].environment_id], "approved", "  ")
    deployments = platform.review_pending_deployments(run_id, [pending[0].environment_id], "approved", "lgtm")
    assert [d.environment for d in deployments] == ["production"]
    assert platform.list_pending_deployments(run_id) == ()
    with pytest.raises(PlatformError):
        platform.review_pending_deployments(run_id, [pending[0].environment_id], "approved", "again")


def test_pending_deployment_reject(harness: Harness, platform: Platform) -> None:
    run_id = harness.add_run("devsecops.yml", waiting_on=["production"])
    env_id = platform.list_pending_deployments(run_id)[0].environment_id
    assert platform.review_pending_deployments(run_id, [env_id], "rejected", "not now") == ()
    run = platform.get_workflow_run(run_id)
    assert run is not None
    assert run.conclusion == "failure"


# -- runs, jobs, artifacts, caches ----------------------------------------------------------------
def test_workflow_runs_newest_first_by_branch(harness: Harness, platform: Platform) -> None:
    ids = [
        harness.add_run("devsecops.yml", conclusion=c, age_seconds=age)
        for c, age in (("success", 300), ("failure", 200), ("failure", 100))
    ]
    harness.add_run("devsecops.yml", branch="dev", conclusion="success")
    harness.add_run("other.yml")
    runs = platform.list_workflow_runs("devsecops.yml", branch="main")
    assert [r.id for r in runs] == list(reversed(ids))
    assert [r.conclusion for r in runs] == ["failure", "failure", "success"]
    assert len(platform.list_workflow_runs("devsecops.yml", limit=2)) == 2
    jobs = platform.list_jobs(ids[0])
    assert jobs
    assert jobs[0].run_id == ids[0]
    assert platform.get_workflow_run(999999) is None


def test_artifacts_and_caches(harness: Harness, platform: Platform) -> None:
    a1 = harness.add_artifact("dist")
    harness.add_artifact("sbom")
    assert [a.name for a in platform.list_artifacts()] == ["sbom", "dist"]
    assert [a.id for a in platform.list_artifacts(name="dist")] == [a1]
    assert platform.delete_artifact(a1) is True
    assert platform.delete_artifact(a1) is False
    c_old = harness.add_cache("pip-linux-1", age_seconds=3600)
    c_new = harness.add_cache("pip-linux-2")
    harness.add_cache("npm-1")
    assert [c.id for c in platform.list_caches(key="pip-")] == [c_new, c_old]
    assert platform.delete_cache(c_old) is True
    assert platform.delete_cache(c_old) is False


@pytest.mark.parametrize("owner", [PackageOwner("org", "octo-org"), PackageOwner("user", "octocat")])
def test_package_versions_for_user_and_org(harness: Harness, platform: Platform, owner: PackageOwner) -> None:
    old = harness.add_package_version(owner, "app", "sha256:" + "1" * 64, ["v1"])
    new = harness.add_package_version(owner, "app", "sha256:" + "2" * 64, ["v2", "latest"])
    versions = platform.list_package_versions(owner, "container", "app")
    assert [v.id for v in versions] == [new, old]
    assert versions[0].tags == ("v2", "latest")
    assert versions[0].name.startswith("sha256:")
    assert platform.delete_package_version(owner, "container", "app", old) is True
    assert platform.delete_package_version(owner, "container", "app", old) is False
    assert platform.list_package_versions(owner, "container", "missing") == ()


# -- code scanning and attestations ---------------------------------------------------------------------
def test_sarif_upload(platform: Platform) -> None:
    sarif = json.dumps({"version": "2.1.0", "runs": []}).encode()
    upload = platform.upload_sarif("f" * 40, "refs/heads/main", sarif, tool_name="bandit")
    assert upload.id


def _bundle(digest_hex: str) -> dict[str, object]:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a", "digest": {"sha256": digest_hex}}],
    }
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "k"}},
        "dsseEnvelope": {
            "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "c2ln", "keyid": ""}],
        },
    }


def test_attestations(platform: Platform) -> None:
    created = platform.create_attestation(_bundle("9" * 64))
    assert created.subject_digest == "sha256:" + "9" * 64
    listed = platform.list_attestations("sha256:" + "9" * 64)
    assert len(listed) == 1
    assert listed[0].bundle["dsseEnvelope"] == _bundle("9" * 64)["dsseEnvelope"]
    assert platform.list_attestations("sha256:" + "8" * 64) == ()
