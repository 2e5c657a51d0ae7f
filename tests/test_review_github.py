"""`devops-agent approve|reject|pending` against the fake GitHub server."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_agent.stages import review
from tests.fixtures.promote.support import GitHubEnv, call, call_json, github

REVIEW = "POST /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"


def waiting_run(gh: GitHubEnv) -> int:
    gh.fake.add_run("devsecops.yml", waiting_on=["production"], conclusion=None)
    return max(gh.fake.runs)


def test_pending_lists_runs_waiting_for_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch) as gh:
        run = waiting_run(gh)
        gh.fake.add_run("devsecops.yml")  # a finished run: not listed
        code, data = call_json(review.main, "pending", "--app", str(tmp_path))
        assert code == 0
        assert [(p["run"], p["environment"], p["can_approve"]) for p in data["pending"]] == [
            (run, "production", True)
        ]
        code, one = call_json(review.main, "pending", "--app", str(tmp_path), "--run", str(run))
        assert [p["environment"] for p in one["pending"]] == ["production"]


def test_approve_with_comment_releases_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch) as gh:
        run = waiting_run(gh)
        code, data = call_json(
            review.main,
            "approve",
            "--app",
            str(tmp_path),
            "--run",
            str(run),
            "--env",
            "production",
            "--comment",
            "staging evidence and change record reviewed",
        )
        assert code == 0
        assert data["state"] == "approved"
        assert data["environments"] == ["production"]
        assert gh.fake.pending[run] == []
        assert gh.fake.runs[run]["status"] == "in_progress"
        assert [d["environment"] for d in gh.fake.deployments.values()] == ["production"]
        assert gh.writes() == [REVIEW]
        # reviewing again: nothing waits any more -> a clear failure, no second POST
        code, _ = call(
            review.main, "approve", "--app", str(tmp_path), "--run", str(run), "--comment", "again please"
        )
        assert code == 1
        assert gh.writes() == [REVIEW]


def test_reject_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch) as gh:
        run = waiting_run(gh)
        code, _ = call(
            review.main, "reject", "--app", str(tmp_path), "--run", str(run), "--comment", "freeze week, wait"
        )
        assert code == 0
        assert gh.fake.runs[run]["status"] == "completed"
        assert gh.fake.runs[run]["conclusion"] == "failure"
        assert gh.fake.deployments == {}  # nothing reaches production


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_review_needs_a_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, comment: str) -> None:
    with github(monkeypatch) as gh:
        run = waiting_run(gh)
        code, _ = call(
            review.main, "approve", "--app", str(tmp_path), "--run", str(run), "--comment", comment
        )
        assert code == 2
        assert gh.fake.log == []


@pytest.mark.parametrize(
    ("token", "env"),
    [
        ("fake-token-0123456789", {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "fake-token-0123456789"}),
        ("ghs_installation0123456789", {}),
    ],
)
def test_workflow_and_app_tokens_cannot_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str, env: dict[str, str]
) -> None:
    with github(monkeypatch, token=token) as gh:
        run = waiting_run(gh)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code, _ = call(
            review.main, "approve", "--app", str(tmp_path), "--run", str(run), "--comment", "looks fine to me"
        )
        assert code == 2
        assert gh.fake.log == []
        assert gh.fake.pending[run] != []


def test_wrong_environment_names_what_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch) as gh:
        run = waiting_run(gh)
        from devops_agent.core.gha import Actions

        errors: list[str] = []
        monkeypatch.setattr(Actions, "error", lambda self, message, **_: errors.append(message))
        code, _ = call(
            review.main,
            "approve",
            "--app",
            str(tmp_path),
            "--run",
            str(run),
            "--env",
            "prod",
            "--comment",
            "wrong env name",
        )
        assert code == 1
        assert "it waits on: production" in errors[0]
        assert gh.writes() == []


def test_run_is_required_and_numeric_on_github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch):
        assert call(review.main, "approve", "--app", str(tmp_path), "--comment", "no run given")[0] == 2
        assert (
            call(review.main, "approve", "--app", str(tmp_path), "--run", "abc", "--comment", "bad run")[0]
            == 2
        )


def test_unknown_review_command() -> None:
    assert review.main(["bless"]) == 2
