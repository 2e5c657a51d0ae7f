"""Fault injection on the fake GitHub server: 5xx bursts (before and after the write took effect),
secondary limits with and without retry-after, 429, primary limit exhaustion, slow responses.
A fake clock records every wait: no test sleeps for real."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from devops_agent.core.command import run_command
from devops_agent.core.errors import PlatformError, RateLimitError
from devops_agent.core.gha import Actions
from devops_agent.core.platform import EnvironmentSpec
from devops_agent.platform.github import GitHubPlatform
from tests.fakes.github.harness import FakeClock, GitHubHarness

ISSUES = "/repos/{owner}/{repo}/issues"
DEPLOYMENTS = "/repos/{owner}/{repo}/deployments"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gh(clock: FakeClock) -> Iterator[GitHubHarness]:
    h = GitHubHarness(clock)
    try:
        yield h
    finally:
        h.close()
    assert h.fake.violations == [], "\n".join(map(str, h.fake.violations))


def _platform(gh: GitHubHarness) -> GitHubPlatform:
    assert isinstance(gh.platform, GitHubPlatform)
    return gh.platform


# -- a POST that may have succeeded is looked up, never blindly re-sent -------------------------------
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_issue_created_then_5xx_is_not_duplicated(gh: GitHubHarness, status: int) -> None:
    gh.fake.inject("status", method="POST", path=r"/issues$", status=status, after=True)
    issue = _platform(gh).create_issue("deploy failed", "ctx", labels=["deployment-failure"])
    assert len(gh.fake.issues) == 1
    assert issue.number == next(iter(gh.fake.issues))
    assert len(gh.fake.requests("POST", ISSUES)) == 1  # found by lookup, not re-sent
    assert gh.platform.stats().lookups >= 1


def test_issue_not_created_by_5xx_is_sent_again_once(gh: GitHubHarness) -> None:
    gh.fake.inject("status", method="POST", path=r"/issues$", status=502, after=False)
    _platform(gh).create_issue("deploy failed", "ctx", labels=["deployment-failure"])
    assert len(gh.fake.issues) == 1
    assert [r.status for r in gh.fake.requests("POST", ISSUES)] == [502, 201]


def test_deployment_created_then_5xx_is_not_duplicated(gh: GitHubHarness) -> None:
    gh.fake.inject("status", method="POST", path=r"/deployments$", status=502, after=True, times=1)
    dep = _platform(gh).create_deployment("a" * 40, "staging", payload={"digest": "sha256:x"})
    assert list(gh.fake.deployments) == [dep.id]
    assert len(gh.fake.requests("POST", DEPLOYMENTS)) == 1


def test_deployment_burst_before_and_after(gh: GitHubHarness) -> None:
    gh.fake.inject("status", method="POST", path=r"/deployments$", status=503, times=2)
    gh.fake.inject("status", method="POST", path=r"/deployments$", status=500, after=True)
    _platform(gh).create_deployment("b" * 40, "production")
    assert len(gh.fake.deployments) == 1


def test_comment_and_status_after_5xx_not_duplicated(gh: GitHubHarness) -> None:
    p = _platform(gh)
    issue = p.create_issue("t", "b")
    gh.fake.inject("status", method="POST", path=r"/comments$", status=502, after=True)
    p.add_comment(issue.number, "again")
    assert len(gh.fake.comments[issue.number]) == 1
    dep = p.create_deployment("c" * 40, "staging")
    gh.fake.inject("status", method="POST", path=r"/statuses$", status=502, after=True)
    p.create_deployment_status(dep.id, "success", description="ok")
    assert len(gh.fake.statuses[dep.id]) == 1


def test_review_after_5xx_is_not_sent_twice(gh: GitHubHarness) -> None:
    p = _platform(gh)
    run_id = gh.add_run("devsecops.yml", waiting_on=["production"])
    env_id = p.list_pending_deployments(run_id)[0].environment_id
    gh.fake.inject("status", method="POST", path=r"/pending_deployments$", status=502, after=True)
    p.review_pending_deployments(run_id, [env_id], "approved", "ok")
    posts = gh.fake.requests("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments")
    assert len(posts) == 1
    assert gh.fake.pending[run_id] == []


def test_attestation_after_5xx_not_duplicated(gh: GitHubHarness) -> None:
    from tests.test_platform_contract import _bundle

    gh.fake.inject("status", method="POST", path=r"/attestations$", status=502, after=True)
    _platform(gh).create_attestation(_bundle("7" * 64))
    assert len(gh.fake.attestations) == 1


# -- no lost write: idempotent writes are retried ---------------------------------------------------
def test_idempotent_writes_survive_5xx(gh: GitHubHarness) -> None:
    p = _platform(gh)
    issue = p.create_issue("t", "b")
    gh.fake.inject("status", method="PATCH", status=502, times=2)
    assert p.close_issue(issue.number).state == "closed"
    assert gh.fake.issues[issue.number]["state"] == "closed"
    gh.fake.inject("status", method="PUT", status=503, after=True)
    assert p.put_environment(EnvironmentSpec("staging", wait_timer=3)).wait_timer == 3
    gh.add_branch("old")
    gh.fake.inject("status", method="DELETE", status=502)
    assert p.delete_branch("old") is True
    assert "old" not in gh.fake.branches


def test_get_5xx_burst_backs_off_exponentially(gh: GitHubHarness, clock: FakeClock) -> None:
    gh.fake.inject("status", method="GET", path=r"/labels$", status=502, times=3)
    assert _platform(gh).list_labels() == ()
    assert clock.slept == [1.0, 2.0, 4.0]
    stats = gh.platform.stats()
    assert stats.retries == 3
    assert stats.requests == 4


def test_persistent_5xx_gives_up_with_platform_error(gh: GitHubHarness) -> None:
    gh.fake.inject("status", method="GET", status=500, times=100)
    with pytest.raises(PlatformError, match="gave up after 6 attempts"):
        _platform(gh).list_labels()


# -- rate limits ----------------------------------------------------------------------------------------
def test_secondary_limit_waits_retry_after_then_resends_post(gh: GitHubHarness, clock: FakeClock) -> None:
    gh.fake.inject("secondary", method="POST", path=r"/issues$", retry_after=37)
    _platform(gh).create_issue("t", "b")
    assert clock.slept == [37.0]
    assert len(gh.fake.issues) == 1
    assert [r.status for r in gh.fake.requests("POST", ISSUES)] == [403, 201]
    assert gh.platform.stats().rate_limited == 1


def test_secondary_limit_without_retry_after_backs_off_at_least_60s(
    gh: GitHubHarness, clock: FakeClock
) -> None:
    gh.fake.inject("secondary", method="GET", retry_after=None, times=2)
    _platform(gh).list_labels()
    assert clock.slept == [60.0, 120.0]


def test_429_honours_retry_after(gh: GitHubHarness, clock: FakeClock) -> None:
    gh.fake.inject("too_many", method="GET", retry_after=5)
    _platform(gh).list_labels()
    assert clock.slept == [5.0]


def test_primary_limit_waits_until_reset(gh: GitHubHarness, clock: FakeClock) -> None:
    gh.fake.inject("primary", method="GET", reset_in=120)
    _platform(gh).list_labels()
    assert clock.slept == [121.0]


def test_primary_limit_far_reset_fails_fast_naming_the_limit(gh: GitHubHarness, clock: FakeClock) -> None:
    gh.fake.inject("primary", method="GET", reset_in=7200)
    with pytest.raises(RateLimitError, match="primary rate limit") as err:
        _platform(gh).list_labels()
    assert "resets at" in str(err.value)
    assert clock.slept == []


def test_persistent_secondary_limit_is_a_clear_exit_1(gh: GitHubHarness, clock: FakeClock) -> None:
    gh.fake.inject("secondary", method="POST", path=r"/issues$", retry_after=None, times=100)
    p = _platform(gh)
    stream = io.StringIO()

    def body() -> int:
        p.create_issue("t", "b")
        return 0

    assert run_command(body, actions=Actions(env={}, stream=stream)) == 1
    message = stream.getvalue()
    assert "secondary rate limit" in message
    assert "fix:" in message
    assert gh.fake.token not in message
    assert gh.fake.issues == {}
    # 60 s, then doubling, each wait capped; never more than max_total_wait in total
    assert clock.slept[0] == 60.0
    assert all(b >= a for a, b in zip(clock.slept, clock.slept[1:], strict=False))
    assert sum(clock.slept) <= p.policy.max_total_wait


# -- slow responses and pagination under faults -------------------------------------------------------
def test_slow_response_times_out_and_get_is_retried(clock: FakeClock) -> None:
    h = GitHubHarness(clock)
    try:
        p = GitHubPlatform(
            h.platform.repo, token=h.fake.token, api_url=h.fake.api_url, policy=_platform(h).policy, timeout=1
        )
        h.fake.inject("slow", method="GET", path=r"/labels$", delay=1.5)
        assert p.list_labels() == ()
        assert [path for method, path in h.fake.received if method == "GET"].count(
            "/repos/octo-org/hello-world/labels"
        ) == 2
        assert p.stats().retries == 1
    finally:
        h.close()


def test_pagination_resumes_after_a_failed_page(gh: GitHubHarness) -> None:
    p = _platform(gh)
    for n in range(7):
        gh.fake.add_artifact(f"a{n}")
    gh.fake.page_size = 2
    gh.fake.inject("status", method="GET", path=r"/artifacts$", status=502)
    assert len(p.list_artifacts()) == 7


def test_write_pacing_uses_the_policy_interval(clock: FakeClock) -> None:
    h = GitHubHarness(clock, write_interval=1.0)
    try:
        p = _platform(h)
        for n in range(3):
            p.create_label(f"l{n}")
        assert clock.slept == [1.0, 1.0]  # the first write is not delayed
    finally:
        h.close()
