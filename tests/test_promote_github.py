"""`devops-agent promote` in CI mode, against the fake GitHub server: staging records from GitHub
Deployments, the reviewers requirement, freeze windows and overrides, the approval flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_agent.core.platform import EnvironmentSpec, Reviewer
from devops_agent.core.state import StateStore
from devops_agent.stages import promote, review
from tests.fixtures.promote.support import (
    DIGEST_A,
    DIGEST_B,
    FakeVerifier,
    GitHubEnv,
    call,
    call_json,
    command_app,
    github,
    record_staging,
)

ALWAYS_FROZEN = {"freeze": [{"name": "year-end freeze", "start": "2000-01-01", "end": "2100-01-01"}]}


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubEnv]:
    monkeypatch.setenv("GITHUB_SHA", "c0ffee" + "0" * 34)
    monkeypatch.setenv("GITHUB_RUN_ID", "777")
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    with github(monkeypatch) as env:
        yield env


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> FakeVerifier:
    fake = FakeVerifier(DIGEST_A, DIGEST_B)
    monkeypatch.setattr("devops_agent.stages.verify.verify_for_deploy", fake)
    return fake


def protect(gh: GitHubEnv, *, reviewers: bool = True) -> None:
    spec = EnvironmentSpec(
        "production", reviewers=(Reviewer("User", gh.fake.users["octocat"], "octocat"),) if reviewers else ()
    )
    with gh.platform() as platform:
        platform.put_environment(spec)


def errors_of(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from devops_agent.core.gha import Actions

    seen: list[str] = []
    monkeypatch.setattr(Actions, "error", lambda self, message, **_: seen.append(message))
    return seen


def production_deployments(gh: GitHubEnv) -> list[dict[str, Any]]:
    return [d for d in gh.fake.deployments.values() if d["environment"] == "production"]


def history(app: Path) -> str:
    path = app / "docs" / "operations" / "deployment_history.md"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def local_production(app: Path) -> list[Any]:
    """Production rows of the state store that carry a promotion record."""
    with StateStore.for_app(app) as store:
        return [r for r in store.deployments("production") if "change_record" in r.details]


def test_a_digest_without_a_staging_record_is_refused(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_B)  # another digest passed staging
    errors = errors_of(monkeypatch)
    code, _ = call(promote.main, "--app", str(app), "--digest", DIGEST_A)
    assert code == 1
    assert "has no passed staging validation" in errors[0]
    assert f"sha256:{'b' * 12}" in errors[0]  # says what staging does have
    assert verifier.calls == []  # refused before anything else
    assert production_deployments(gh) == []
    assert not (app / "live-production.txt").exists()
    assert "refused" in history(app)


def test_a_digest_whose_staging_validation_failed_is_refused(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A, status="failure")
    errors = errors_of(monkeypatch)
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A)[0] == 1
    assert "never reached success" in errors[0]
    assert production_deployments(gh) == []


def test_verification_failure_blocks_promotion(
    tmp_path: Path, gh: GitHubEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("devops_agent.stages.verify.verify_for_deploy", FakeVerifier())  # nothing attested
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A)
    errors = errors_of(monkeypatch)
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A)[0] == 1
    assert "verification of" in errors[0]
    assert production_deployments(gh) == []


def test_validated_digest_is_promoted_with_a_change_record(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A, version="2.0.0")
    summary = tmp_path / "summary.md"
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    code, data = call_json(promote.main, "--app", str(app), "--digest", DIGEST_A)
    assert code == 0
    assert data["status"] == "promoted"
    assert data["version"] == "2.0.0"
    assert (app / "live-production.txt").read_text().strip() == DIGEST_A
    # GitHub: a production deployment of this digest, validated
    (deployment,) = production_deployments(gh)
    assert deployment["payload"]["digest"] == DIGEST_A
    states = [s["state"] for s in gh.fake.statuses[deployment["id"]]]
    assert states[-1] == "success"
    # the change record: summary, state store, history
    change = data["change_record"]
    assert change["approver"] == "required reviewers of `production` (octocat)"
    assert change["risk"]["level"] == "medium"  # first production release
    assert "first production release" in change["commits_note"]
    text = summary.read_text(encoding="utf-8")
    assert "Change record — cmd-app → production" in text
    assert "Rollback plan" in text
    (row,) = local_production(app)
    assert row.run_id == "777"
    assert row.details["change_record"]["release"]["digest"] == DIGEST_A
    assert "promoted" in history(app)
    out = outputs.read_text(encoding="utf-8")
    assert "promoted<<" in out
    assert "\ntrue\n" in out
    assert verifier.calls == [DIGEST_A, DIGEST_A]  # promote's own gate, then the deploy's
    # the second promotion knows the first one: previous release and rollback target
    record_staging(gh.platform(), DIGEST_B, version="2.1.0")
    code, again = call_json(promote.main, "--app", str(app), "--digest", DIGEST_B)
    assert code == 0
    assert again["change_record"]["previous"]["digest"] == DIGEST_A
    assert any("rolls back to 2.0.0" in step for step in again["change_record"]["rollback_plan"])


def test_default_digest_is_the_newest_that_passed_staging(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier
) -> None:
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A, version="1.0.0")
    record_staging(gh.platform(), DIGEST_B, version="1.1.0", status="failure")
    code, data = call_json(promote.main, "--app", str(app), "--dry-run")
    assert code == 0
    assert data["status"] == "would-promote"
    assert data["digest"] == DIGEST_A
    assert production_deployments(gh) == []  # dry run


def test_an_environment_without_reviewers_needs_promote_auto(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect(gh, reviewers=False)
    record_staging(gh.platform(), DIGEST_A)
    errors = errors_of(monkeypatch)
    app = command_app(tmp_path)
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A)[0] == 1
    assert "no required reviewers" in errors[0]
    assert production_deployments(gh) == []
    auto = command_app(tmp_path / "auto", promote={"auto": True})
    code, data = call_json(promote.main, "--app", str(auto), "--digest", DIGEST_A)
    assert code == 0
    assert data["change_record"]["approver"].startswith("auto-promoted")


def test_a_freeze_window_blocks_and_an_override_is_recorded(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = command_app(tmp_path, promote=ALWAYS_FROZEN)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A)
    errors = errors_of(monkeypatch)
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A)[0] == 1
    assert "blocked by the freeze window(s) year-end freeze" in errors[0]
    assert production_deployments(gh) == []
    assert "blocked" in history(app)
    # an override without a reason is bad input; nothing happens
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A, "--override-freeze")[0] == 2
    assert production_deployments(gh) == []
    # with a reason it goes through and is recorded everywhere
    reason = "CVE-2026-0001 fix must ship now"
    code, data = call_json(
        promote.main, "--app", str(app), "--digest", DIGEST_A, "--override-freeze", "--reason", reason
    )
    assert code == 0
    assert data["freeze"]["status"] == "overridden"
    assert data["freeze"]["override"]["reason"] == reason
    assert data["freeze"]["override"]["by"] == "release-bot"
    assert data["change_record"]["risk"]["level"] == "high"
    (row,) = local_production(app)
    assert row.details["freeze"]["override"]["reason"] == reason
    assert f"FREEZE OVERRIDE by release-bot: {reason}" in history(app)
    assert len(production_deployments(gh)) == 1


def test_approval_flow_pending_then_approved_then_production_deploy(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier
) -> None:
    """The production job waits on the environment; a reviewer approves; promote then deploys."""
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A)
    gh.fake.add_run("devsecops.yml", waiting_on=["production"], conclusion=None)
    run = max(gh.fake.runs)
    code, pending = call_json(review.main, "pending", "--app", str(app))
    assert [p["run"] for p in pending["pending"]] == [run]
    code, _ = call(
        review.main, "approve", "--app", str(app), "--run", str(run), "--comment", "change record ok"
    )
    assert code == 0
    assert gh.fake.runs[run]["status"] == "in_progress"
    # the job now runs promote (GITHUB_RUN_ID is that run)
    code, data = call_json(promote.main, "--app", str(app), "--digest", DIGEST_A)
    assert code == 0
    assert data["status"] == "promoted"
    assert (app / "live-production.txt").read_text().strip() == DIGEST_A
    assert call_json(review.main, "pending", "--app", str(app))[1]["pending"] == []


def test_rejection_means_production_never_changes(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier
) -> None:
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A)
    gh.fake.add_run("devsecops.yml", waiting_on=["production"], conclusion=None)
    run = max(gh.fake.runs)
    assert (
        call(review.main, "reject", "--app", str(app), "--run", str(run), "--comment", "not this week")[0]
        == 0
    )
    assert gh.fake.runs[run]["conclusion"] == "failure"  # the production job never starts
    assert production_deployments(gh) == []
    assert not (app / "live-production.txt").exists()


def test_failed_production_validation_rolls_back_to_the_previous_release(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = command_app(tmp_path)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A, version="1.0.0")
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A)[0] == 0
    # B passed staging, but production's smoke check rejects it
    record_staging(gh.platform(), DIGEST_B, version="1.1.0")
    config = app / ".github" / "devops-agent.yml"
    import yaml

    data = yaml.safe_load(config.read_text())
    data["validate"]["smoke"] = [
        'grep -qx "$DEVOPS_AGENT_DIGEST" "live-$DEVOPS_AGENT_ENVIRONMENT.txt"',
        f'test "$DEVOPS_AGENT_DIGEST" != "{DIGEST_B}"',
    ]
    config.write_text(yaml.safe_dump(data))
    errors_of(monkeypatch)
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_B)[0] == 1
    assert (app / "live-production.txt").read_text().strip() == DIGEST_A  # rolled back
    text = history(app)
    assert "rolled back" in text or "rolled-back" in text
    rows = {r.digest: r for r in local_production(app)}
    assert rows["b" * 64].details["promotion"] in {"rolled-back", "rollback-failed"}
    assert json.dumps(rows["b" * 64].details["change_record"])  # recorded even when it failed


@pytest.mark.parametrize(
    "promote_section",
    [
        {"freeze": [{"name": "bad", "start": "2026-13-01", "end": "2027-01-01"}]},
        {"freeze": [{"name": "bad", "cron": "61 * * * *", "duration_minutes": 5}]},
        {"environment": "staging"},
    ],
)
def test_bad_promote_config_is_exit_2_and_touches_nothing(
    tmp_path: Path, gh: GitHubEnv, verifier: FakeVerifier, promote_section: dict[str, Any]
) -> None:
    app = command_app(tmp_path, promote=promote_section)
    protect(gh)
    record_staging(gh.platform(), DIGEST_A)
    before = len(gh.writes())
    assert call(promote.main, "--app", str(app), "--digest", DIGEST_A)[0] == 2
    assert len(gh.writes()) == before
    assert verifier.calls == []
    assert not (app / "live-production.txt").exists()


def test_a_missing_environments_file_is_bad_input(tmp_path: Path, gh: GitHubEnv) -> None:
    from devops_agent.stages import environments

    assert call(environments.main, "apply", str(tmp_path / "nope.yml"), "--app", str(tmp_path))[0] == 2
    assert call(environments.main, "apply", "--app", str(tmp_path))[0] == 2
    assert gh.fake.log == []
