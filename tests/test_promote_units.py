"""Pure parts of promote: staging_passed, the change record, token classification, settings."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from devops_agent.core.config import build_config
from devops_agent.core.errors import ConfigError
from devops_agent.promote.change import (
    Commit,
    ReleaseRef,
    assess_risk,
    build_change_record,
    commits_between,
    render_markdown,
)
from devops_agent.promote.settings import production_config, promote_settings
from devops_agent.promote.staging import StagingRecord, describe_candidates, latest_passed, staging_passed
from devops_agent.promote.tokens import classify, require_admin_token, require_reviewer_token

A = "a" * 64
B = "b" * 64


def rec(
    digest: str = A, status: str = "success", *, at: float = 1.0, source: str = "local", **kw: Any
) -> StagingRecord:
    defaults: dict[str, Any] = {"validated": True, "evidence": {"validation_seconds": 1.2}}
    defaults.update(kw)
    return StagingRecord(source, str(at), "staging", digest, status, at=at, **defaults)


# -- staging_passed ----------------------------------------------------------------------------


def test_validated_success_with_evidence_passes() -> None:
    verdict = staging_passed([rec()], f"sha256:{A}", "staging")
    assert verdict.passed
    assert verdict.record is not None


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (rec(status="failure"), "is failure"),
        (rec(validated=False), "not marked validated"),
        (rec(evidence={}), "no validation evidence"),
        (rec(status="in_progress"), "has not finished validation"),
    ],
)
def test_anything_less_is_refused(record: StagingRecord, why: str) -> None:
    verdict = staging_passed([record], A, "staging")
    assert not verdict.passed
    assert why in verdict.reason


def test_other_digests_and_environments_do_not_count() -> None:
    assert not staging_passed([rec(B)], A, "staging").passed
    other_env = StagingRecord("local", "1", "qa", A, "success", validated=True, evidence={"x": 1})
    assert not staging_passed([other_env], A, "staging").passed
    assert "no deployment" in staging_passed([], A, "staging").reason


def test_newest_concluded_record_decides() -> None:
    passed_then_failed = [rec(at=1), rec(status="failure", at=2)]
    assert not staging_passed(passed_then_failed, A, "staging").passed
    failed_then_passed = [rec(status="failure", at=1), rec(at=2)]
    assert staging_passed(failed_then_passed, A, "staging").passed
    redeploy_in_flight = [rec(at=1), rec(status="in_progress", at=2)]
    assert staging_passed(redeploy_in_flight, A, "staging").passed


def test_github_records_pass_on_success_and_stay_valid_when_superseded() -> None:
    ok = rec(source="github", status="inactive", statuses=("in_progress", "success", "inactive"))
    assert staging_passed([ok], A, "staging").passed
    bad = rec(source="github", status="failure", statuses=("in_progress", "success", "failure"))
    assert "then reported failure" in staging_passed([bad], A, "staging").reason
    never = rec(source="github", status="error", statuses=("in_progress", "error"))
    assert not staging_passed([never], A, "staging").passed


def test_latest_passed_and_description() -> None:
    records = [rec(A, at=1, version="1.0"), rec(B, "failure", at=2, version="1.1")]
    found = latest_passed(records, "staging")
    assert found is not None
    assert found.digest == A
    text = describe_candidates(records, "staging")
    assert text.startswith(f"sha256:{B[:12]}… 1.1 failure")


def test_bad_digest_is_bad_input() -> None:
    with pytest.raises(ConfigError):
        staging_passed([], "sha256:xyz", "staging")


# -- change record -----------------------------------------------------------------------------


def test_risk_scoring_is_explicit() -> None:
    prev = ReleaseRef("sha256:" + B, "1.0")
    few = [Commit("1" * 40, "fix")] * 3
    assert assess_risk(previous=prev, commits=few, freeze_overridden=False).level == "low"
    assert assess_risk(previous=prev, commits=few * 5, freeze_overridden=False).level == "low"  # 15: +1
    assert assess_risk(previous=prev, commits=few * 20, freeze_overridden=False).level == "medium"  # 60: +3
    assert assess_risk(previous=None, commits=None, freeze_overridden=False).level == "medium"
    assert assess_risk(previous=prev, commits=few, freeze_overridden=True).level == "high"


def test_commits_between_two_releases_with_git(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args],
            check=True,
            capture_output=True,
            text=True,
            env={
                "GIT_AUTHOR_NAME": "Dev",
                "GIT_AUTHOR_EMAIL": "d@e.invalid",
                "GIT_COMMITTER_NAME": "Dev",
                "GIT_COMMITTER_EMAIL": "d@e.invalid",
                "HOME": str(tmp_path),
                "PATH": "/usr/bin:/bin",
            },
        ).stdout.strip()

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "release 1")
    old = git("rev-parse", "HEAD")
    git("commit", "-q", "--allow-empty", "-m", "add feature")
    git("commit", "-q", "--allow-empty", "-m", "fix bug")
    new = git("rev-parse", "HEAD")
    commits, note = commits_between(tmp_path, old, new)
    assert commits is not None
    assert [c.subject for c in commits] == ["fix bug", "add feature"]
    assert commits[0].author == "Dev"
    assert note.startswith("2 commit(s) since")
    assert commits_between(tmp_path, None, new)[0] is None
    assert commits_between(tmp_path, new, new) == (
        (),
        "same commit as the previous production release (a re-deploy)",
    )
    missing, why = commits_between(tmp_path, "0" * 40, new)
    assert missing is None
    assert "fetch-depth: 0" in why


def test_change_record_markdown_has_every_part() -> None:
    record = build_change_record(
        app="app",
        environment="production",
        release=ReleaseRef("sha256:" + A, "2.0", "c" * 40),
        previous=ReleaseRef("sha256:" + B, "1.0", "d" * 40),
        commits=(Commit("e" * 40, "feat: x", "Dev"),),
        commits_note="1 commit(s) since dddddddddddd",
        approver="alice",
        approval_comment="ok",
        driver="process",
        auto_rollback=True,
        freeze={"status": "overridden", "override": {"by": "bob", "reason": "hotfix for outage"}},
        staging={"reason": "local deployment 3 validated"},
        verification="devops-agent verify",
        links=[("workflow run", "https://github.invalid/o/r/actions/runs/1")],
    )
    text = render_markdown(record)
    for needle in (
        "2.0",
        "eeeeeeeeee",
        "feat: x",
        "alice",
        "“ok”",
        "hotfix for outage",
        "Rollback plan",
        "rolls back to 1.0",
        "workflow run",
        "**high**",
    ):
        assert needle in text, needle
    assert record.to_json()["risk"]["level"] == "high"


# -- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"GITHUB_TOKEN": "ghs_abc", "GITHUB_ACTIONS": "true"}, "workflow"),
        ({"GITHUB_TOKEN": "opaque", "GITHUB_ACTIONS": "true"}, "workflow"),
        ({"DEVOPS_AGENT_GITHUB_TOKEN": "ghs_abc"}, "installation"),
        ({"GITHUB_TOKEN": "ghp_abc", "GITHUB_ACTIONS": "true"}, "user"),
        (
            {"DEVOPS_AGENT_GITHUB_TOKEN": "github_pat_x", "GITHUB_TOKEN": "ghs_y", "GITHUB_ACTIONS": "true"},
            "user",
        ),
        ({"GITHUB_TOKEN": "opaque"}, "unknown"),
        ({}, "none"),
    ],
)
def test_token_classification(env: dict[str, str], kind: str) -> None:
    assert classify(env).kind == kind


def test_token_requirements() -> None:
    with pytest.raises(ConfigError, match="Administration: write"):
        require_admin_token({"GITHUB_TOKEN": "ghs_x", "GITHUB_ACTIONS": "true"}, app_token=True)
    assert require_admin_token({"GH_TOKEN": "ghs_x"}, app_token=True).kind == "installation"
    with pytest.raises(ConfigError, match="only a required reviewer"):
        require_reviewer_token({"GH_TOKEN": "ghs_x"})
    assert require_reviewer_token({"GH_TOKEN": "ghp_x"}).kind == "user"


# -- settings ----------------------------------------------------------------------------------

BASE = {"version": 1, "app": {"name": "a"}, "build": {"artifacts": ["dist/*"]}}


def cfg(**sections: Any) -> Any:
    return build_config({**BASE, **sections}, Path("x.yml"))


def test_production_config_merges_overrides_and_shifts_process_ports() -> None:
    config = cfg(deploy={"process": {"ports": [18081, 18082]}, "url": "http://s.invalid"})
    prod = production_config(config)
    assert prod.section("deploy")["environment"] == "production"
    assert list(prod.section("deploy")["process"]["ports"]) == [18091, 18092]
    assert config.section("deploy")["process"]["ports"] == (18081, 18082)  # original untouched
    explicit = production_config(
        cfg(promote={"deploy": {"process": {"ports": [9001, 9002]}, "url": "http://p.invalid"}})
    )
    assert list(explicit.section("deploy")["process"]["ports"]) == [9001, 9002]
    assert explicit.section("deploy")["url"] == "http://p.invalid"


def test_production_must_differ_from_staging() -> None:
    with pytest.raises(ConfigError) as info:
        promote_settings(cfg(promote={"environment": "staging"}))
    assert info.value.field == "promote.environment"


def test_local_review_is_needed_unless_auto_and_no_local_reviewers(tmp_path: Path) -> None:
    from devops_agent.core.platform import EnvironmentSpec
    from devops_agent.platform.local import LocalPlatform
    from devops_agent.stages.promote import local_needs_review

    assert local_needs_review(tmp_path, promote_settings(cfg())) is True
    auto = promote_settings(cfg(promote={"auto": True}))
    assert local_needs_review(tmp_path, auto) is False  # no local environment: nobody to ask
    platform = LocalPlatform.for_app(tmp_path)
    try:
        alice = platform.record_reviewer("User", "alice")
        platform.put_environment(EnvironmentSpec("production", reviewers=(alice,)))
    finally:
        platform.close()
    assert local_needs_review(tmp_path, auto) is True
