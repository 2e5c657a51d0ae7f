"""GitHub-backend specifics: pagination at every page size, GHES base URLs, backend selection,
tokens kept out of output, request counting."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.platform import PlatformSettings, RepoRef, get_platform
from devops_agent.platform.github import GitHubPlatform
from devops_agent.platform.local import LocalPlatform
from tests.fakes.github.harness import FakeClock, GitHubHarness, policy_for

ARTIFACTS = "/repos/{owner}/{repo}/actions/artifacts"
ISSUES = "/repos/{owner}/{repo}/issues"


@pytest.fixture
def gh() -> Iterator[GitHubHarness]:
    h = GitHubHarness(FakeClock())
    try:
        yield h
    finally:
        h.close()
    assert h.fake.violations == [], "\n".join(map(str, h.fake.violations))


@pytest.mark.parametrize(("page_size", "count"), [(1, 5), (100, 250), (7, 30), (100, 200), (None, 0)])
def test_pagination_follows_every_page(gh: GitHubHarness, page_size: int | None, count: int) -> None:
    for n in range(count):
        gh.fake.add_artifact(f"a{n}")
    gh.fake.page_size = page_size
    artifacts = gh.platform.list_artifacts()
    assert len(artifacts) == count
    assert len({a.id for a in artifacts}) == count
    size = page_size or 100
    pages = max(1, -(-count // size))
    assert len(gh.fake.requests("GET", ARTIFACTS)) == pages  # no extra empty page
    assert all(r.query.get("per_page") == "100" for r in gh.fake.requests("GET", ARTIFACTS)[:1])


def test_limit_stops_listing_early(gh: GitHubHarness) -> None:
    for _ in range(250):
        gh.fake.add_run("devsecops.yml")
    runs = gh.platform.list_workflow_runs("devsecops.yml", limit=120)
    assert len(runs) == 120
    assert len(gh.fake.requests("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs")) == 2


def test_issue_listing_skips_pull_requests_and_paginates(gh: GitHubHarness) -> None:
    gh.fake.page_size = 3
    for n in range(10):
        gh.platform.create_issue(f"i{n}", "b", labels=["x"])
    assert len(gh.platform.list_issues(labels=["x"])) == 10


def test_ghes_api_prefix() -> None:
    clock = FakeClock()
    h = GitHubHarness(clock, prefix="/api/v3")
    try:
        assert h.fake.api_url.endswith("/api/v3")
        h.fake.add_artifact("dist")
        assert [a.name for a in h.platform.list_artifacts()] == ["dist"]
        h.fake.page_size = 1
        h.fake.add_artifact("sbom")
        assert len(h.platform.list_artifacts()) == 2  # next links keep the prefix
        assert all(path.startswith("/api/v3/") for _, path in h.fake.received)
        assert h.fake.violations == []
    finally:
        h.close()


def test_settings_choose_backend_and_urls(tmp_path: Path) -> None:
    local = PlatformSettings.from_env({}, tmp_path)
    assert local.kind == "local"
    gh = PlatformSettings.from_env(
        {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": "t0k3n"}, tmp_path
    )
    assert (gh.kind, gh.api_url, gh.server_url) == ("github", "https://api.github.com", "https://github.com")
    ghes = PlatformSettings.from_env(
        {"GITHUB_REPOSITORY": "o/r", "GH_TOKEN": "x", "GITHUB_SERVER_URL": "https://ghe.example.com"},
        tmp_path,
    )
    assert ghes.api_url == "https://ghe.example.com/api/v3"
    explicit = PlatformSettings.from_env(
        {
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_TOKEN": "x",
            "GITHUB_SERVER_URL": "https://ghe.example.com",
            "GITHUB_API_URL": "https://api.ghe.example.com/",
        },
        tmp_path,
    )
    assert explicit.api_url == "https://api.ghe.example.com"
    # in Actions but without a token → local, unless forced
    fallback = PlatformSettings.from_env({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r"}, tmp_path)
    assert fallback.kind == "local"
    assert "without a token" in fallback.note
    assert local.note == ""
    with pytest.raises(ConfigError, match="token"):
        PlatformSettings.from_env({"DEVOPS_AGENT_PLATFORM": "github", "GITHUB_REPOSITORY": "o/r"}, tmp_path)
    with pytest.raises(ConfigError, match="DEVOPS_AGENT_PLATFORM"):
        PlatformSettings.from_env({"DEVOPS_AGENT_PLATFORM": "gitlab"}, tmp_path)
    with pytest.raises(ConfigError, match="owner/name"):
        PlatformSettings.from_env({"GITHUB_REPOSITORY": "nope", "GITHUB_TOKEN": "x"}, tmp_path)
    assert "t0k3n" not in repr(gh)


def test_get_platform_returns_each_backend(tmp_path: Path) -> None:
    with get_platform(tmp_path, {}) as local:
        assert isinstance(local, LocalPlatform)
        assert local.get_repository().default_branch == "main"
    clock = FakeClock()
    h = GitHubHarness(clock)
    try:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo-org/hello-world",
            "GITHUB_TOKEN": h.fake.token,
            "GITHUB_API_URL": h.fake.api_url,
        }
        with get_platform(tmp_path, env) as remote:
            assert isinstance(remote, GitHubPlatform)
            assert remote.get_repository().default_branch == "main"
    finally:
        h.close()


def test_token_never_in_errors_repr_or_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    h = GitHubHarness(clock)
    try:
        bad = GitHubPlatform(
            RepoRef("octo-org", "hello-world"),
            token="ghp_wrongwrongwrong",
            api_url=h.fake.api_url,
            policy=policy_for(clock),
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(PlatformError) as err:
            bad.list_labels()
        assert "401" in str(err.value)
        assert "ghp_wrongwrongwrong" not in str(err.value)
        assert "ghp_wrongwrongwrong" not in repr(bad)
        assert "ghp_wrongwrongwrong" not in caplog.text
    finally:
        h.close()


def test_missing_object_errors_name_the_fix(gh: GitHubHarness) -> None:
    with pytest.raises(PlatformError, match="fix:"):
        gh.platform.update_issue(12345, title="x")


def test_request_counters(gh: GitHubHarness) -> None:
    before = gh.platform.stats()
    gh.platform.create_issue("t", "b")
    gh.platform.list_issues()
    after = gh.platform.stats()
    assert (after.writes - before.writes, after.reads - before.reads) == (1, 1)
    assert after.requests == len(gh.fake.log)


def test_importing_the_backend_does_not_import_pygithub() -> None:
    code = (
        "import sys; import devops_agent.platform.github, devops_agent.core.platform; "
        "print('github' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_deployment_is_sent_without_required_contexts_or_auto_merge(gh: GitHubHarness) -> None:
    # main is protected with a required check: GitHub would answer 409 without required_contexts=[]
    dep = gh.platform.create_deployment("main", "staging")
    assert dep.sha == gh.fake.branches["main"]["sha"]
    (post,) = gh.fake.requests("POST", "/repos/{owner}/{repo}/deployments")
    assert post.body["required_contexts"] == []
    assert post.body["auto_merge"] is False


def test_key_lookup_stops_at_the_page_holding_the_key(gh: GitHubHarness) -> None:
    gh.fake.page_size = 10
    for n in range(35):
        gh.platform.create_issue(f"i{n}", "b", labels=["x"])
    newest = gh.platform.create_issue("last", "b", labels=["x"], key="wanted")
    before = len(gh.fake.requests("GET", ISSUES))
    found = gh.platform.find_issue_by_key("wanted", labels=["x"])
    assert found is not None
    assert found.number == newest.number
    assert len(gh.fake.requests("GET", ISSUES)) - before == 1
