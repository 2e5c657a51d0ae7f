"""Local mode: incidents recorded in the state store (LocalPlatform) and printed; the streak is
counted from the local pipeline runs; recovery closes with MTTR into the history file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devops_agent.core.state import StateStore
from devops_agent.platform.local import LocalPlatform
from devops_agent.stages import incidents as stage

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=timezone.utc)
LABELS = ["deployment-failure", "cicd-incident"]


def record_run(app: Path, status: str, stage_name: str | None = "build", branch: str = "main") -> str:
    with StateStore.for_app(app) as store:
        run_id = store.start_run(branch=branch, commit_sha="ab" * 20)
        store.finish_run(run_id, status, {"stage": stage_name} if stage_name else {})
    return run_id


def cli(
    app: Path,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    command: str = "report-failure",
    at: datetime = T0,
) -> tuple[int, str]:
    capsys.readouterr()
    code = stage.main([command, "--app", str(app), "--branch", "main", *args], env={}, clock=lambda: at)
    out = capsys.readouterr()
    return code, out.out + out.err


def issues(app: Path, state: str = "all") -> list[Any]:
    with LocalPlatform.for_app(app) as platform:
        return list(platform.list_issues(labels=LABELS, state=state))  # type: ignore[arg-type]


def comments(app: Path, number: int) -> list[str]:
    with LocalPlatform.for_app(app) as platform:
        return [c.body for c in platform.list_comments(number)]


def test_local_failure_is_recorded_in_the_state_store_and_printed(
    sample_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = record_run(sample_app, "failure", "deploy-staging")
    code, out = cli(sample_app, capsys)
    assert code == 0
    [issue] = issues(sample_app)
    assert issue.title == "Pipeline failure: deploy-staging failed on main (sample-app)"
    assert issue.state == "open"
    assert set(LABELS) <= set(issue.labels)
    # printed: the summary table and the open incidents of the state store
    assert "| deploy-staging | created | #1 |" in out
    assert "Open incidents (state store):" in out
    assert "| #1 | sample-app/local | main | deploy-staging |" in out
    ctx = sample_app / "docs/operations/failed_deployments" / f".devops_cicd_cache_{'ab' * 20}.md"
    assert ctx.is_file()
    assert f"run {run_id}" in ctx.read_text(encoding="utf-8")


def test_local_lifecycle_repeat_escalate_ignore_cancelled_and_recover(
    sample_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_run(sample_app, "failure")
    assert cli(sample_app, capsys)[0] == 0
    record_run(sample_app, "failure")
    assert cli(sample_app, capsys)[0] == 0
    [issue] = issues(sample_app)
    assert len(comments(sample_app, issue.number)) == 1
    # re-reporting the same local run adds nothing
    assert cli(sample_app, capsys)[0] == 0
    assert len(comments(sample_app, issue.number)) == 1
    record_run(sample_app, "cancelled", None)  # neither counts nor breaks the streak
    record_run(sample_app, "failure")
    code, out = cli(sample_app, capsys, "--json")
    assert code == 0
    payload = json.loads(out[: out.rindex("}") + 1])
    assert payload["consecutive_failures"] == 3
    assert payload["results"][0]["escalated"] is True
    [issue] = issues(sample_app)
    assert "escalated" in issue.labels
    assert issue.title.startswith("[URGENT] ")
    assert sum("@org/platform-team" in c for c in comments(sample_app, issue.number)) == 1
    # recovery: `devops-agent resolve` after a successful local run
    record_run(sample_app, "success", None)
    code, out = cli(sample_app, capsys, command="resolve", at=T0 + timedelta(minutes=42))
    assert code == 0
    assert "| build | resolved | #1 | 42m 00s |" in out
    assert "No open incidents (state store)." in out
    [closed] = issues(sample_app, "closed")
    assert "MTTR" in comments(sample_app, closed.number)[-1]
    history = (sample_app / "docs/operations/deployment_history.md").read_text(encoding="utf-8")
    assert "MTTR 42m 00s" in history


def test_list_prints_open_incidents(sample_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(sample_app, capsys, "--list")
    assert code == 0
    assert "No open incidents" in out
    record_run(sample_app, "failure", "scan")
    cli(sample_app, capsys)
    code, out = cli(sample_app, capsys, "--list", "--json")
    assert code == 0
    data = json.loads(out[out.index("{") :])
    assert [row["Stage"] for row in data["open_incidents"]] == ["scan"]


def test_explicit_stage_and_unknown_run(sample_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_run(sample_app, "failure", None)
    assert cli(sample_app, capsys, "--stage", "validate")[0] == 0
    assert issues(sample_app)[0].title.startswith("Pipeline failure: validate failed")
    code, out = cli(sample_app, capsys, "--run-id", "local-nope")
    assert code == 2
    assert "--run-id" in out


def test_disabled_incidents_change_nothing(sample_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sample_app / ".github/devops-agent.yml"
    config.write_text(config.read_text(encoding="utf-8") + "  enabled: false\n", encoding="utf-8")
    record_run(sample_app, "failure")
    code, out = cli(sample_app, capsys)
    assert code == 0
    assert "incidents.enabled is false" in out
    assert issues(sample_app) == []
    assert not (sample_app / "docs/operations/failed_deployments").exists()


def test_a_broken_config_still_reports_the_failure(
    sample_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sample_app / ".github/devops-agent.yml").write_text("app: [unclosed\n", encoding="utf-8")
    record_run(sample_app, "failure", "config")
    code, _out = cli(sample_app, capsys)
    assert code == 0
    [issue] = issues(sample_app)
    assert "config failed" in issue.title
    assert "could not be loaded" in next(
        (sample_app / "docs/operations/failed_deployments").iterdir()
    ).read_text(encoding="utf-8")


def test_resolve_refuses_failed_needs(sample_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(sample_app, capsys, "--needs", '{"build": {"result": "failure"}}', command="resolve")
    assert code == 2
    assert "report-failure" in out


def test_damaged_evidence_does_not_stop_the_report(
    sample_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sample_app / "merged.sarif").write_text('{"runs": [', encoding="utf-8")
    record_run(sample_app, "failure", "scan")
    code, _out = cli(sample_app, capsys, "--gate-report", "merged.sarif", "--deployment-report", "none.json")
    assert code == 0
    [issue] = issues(sample_app)
    assert "scan failed" in issue.title
    text = next((sample_app / "docs/operations/failed_deployments").iterdir()).read_text(encoding="utf-8")
    assert "gate report merged.sarif is not readable JSON" in text
    assert "deployment report none.json was not found" in text
