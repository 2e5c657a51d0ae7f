"""Redaction, log excerpts, the jobs-API log fetch, SARIF findings and the markdown renderers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from devops_agent.core.gha import Actions
from devops_agent.incidents import render
from devops_agent.incidents.collect import deployment_rows, sarif_findings, workflow_file
from devops_agent.incidents.logs import excerpt_log, fetch_job_log
from devops_agent.incidents.model import FailureContext, IncidentSettings, JobView, RunInfo, StageResult
from devops_agent.incidents.redact import mask_environment, redact, redact_patterns

FIXTURES = Path(__file__).parent / "fixtures" / "incidents"
T0 = datetime(2027, 1, 15, 12, 0, tzinfo=timezone.utc)


# -- redaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("push failed: ghp_" + "a1B2" * 9, "ghp_" + "a1B2" * 9),
        ("token github_pat_" + "x" * 30, "github_pat_" + "x" * 30),
        ("AKIA" + "ABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("Authorization: Bearer abc.def-123", "abc.def-123"),
        ("curl https://deploy:hunter2secret@registry.example/v2", "hunter2secret"),
        ("DB_PASSWORD=s3cr3t-value ./run", "s3cr3t-value"),
        ('api_key: "k-123456789"', "k-123456789"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----", "MIIE"),
    ],
)
def test_credential_shapes_are_redacted(text: str, secret: str) -> None:
    out = redact_patterns(text)
    assert secret not in out
    assert "***" in out


def test_plain_text_is_left_alone() -> None:
    text = "error: test_convert failed: expected 212.0, got 211.9 (tokenizer passes)"
    assert redact_patterns(text) == text


def test_masked_environment_values_are_redacted_everywhere() -> None:
    actions = Actions.from_env({})
    env = {
        "DEPLOY_TOKEN": "zzz-not-a-pattern-42",
        "MY_SECRET": "hush-hush-1",
        "PATH": "/usr/bin",
        "X_TOKEN": "abc",
    }
    assert mask_environment(actions, env) == 2  # PATH is not secret, "abc" is too short
    out = redact("log: zzz-not-a-pattern-42 and hush-hush-1 and /usr/bin", actions)
    assert "zzz-not-a-pattern-42" not in out
    assert "hush-hush-1" not in out
    assert "/usr/bin" in out


def test_masking_emits_add_mask_in_actions(tmp_path: Path) -> None:
    import io

    stream = io.StringIO()
    actions = Actions.from_env({"GITHUB_ACTIONS": "true"}, stream=stream)
    mask_environment(actions, {"GITHUB_TOKEN": "ghs_" + "q" * 36})
    assert "::add-mask::ghs_" in stream.getvalue()


# -- log excerpts ---------------------------------------------------------------------------------


def test_excerpt_starts_before_the_first_error_and_strips_timestamps() -> None:
    log = (FIXTURES / "job-log.txt").read_text(encoding="utf-8")
    out = excerpt_log(log, max_lines=12, context=3)
    lines = out.splitlines()
    assert lines[0].endswith("earlier lines omitted")
    assert any("FAILED tests/test_app.py::test_convert" in line for line in lines)
    assert not any(line.startswith("2026-") for line in lines)
    assert "##[group]" not in out
    assert len(lines) <= 12 + 2


def test_excerpt_without_error_is_the_tail() -> None:
    log = "\n".join(f"2026-11-24T05:00:{i:02d}.1234567Z line {i}" for i in range(50))
    out = excerpt_log(log, max_lines=5)
    assert out.splitlines() == [
        "… 45 earlier lines omitted",
        "line 45",
        "line 46",
        "line 47",
        "line 48",
        "line 49",
    ]


def test_excerpt_limits() -> None:
    assert excerpt_log("", 10) == ""
    assert excerpt_log("error: x", 0) == ""
    long_line = "error: " + "x" * 5000
    assert len(excerpt_log(long_line, 5)) < 500


class _LogHandler(BaseHTTPRequestHandler):
    seen_auth: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _LogHandler.seen_auth.append(self.headers.get("authorization", ""))
        if self.path == "/repos/o/r/actions/jobs/7/logs":  # GitHub answers with a redirect
            self.send_response(302)
            self.send_header("Location", "/blob/7.txt")
            self.end_headers()
        elif self.path == "/blob/7.txt":
            body = b"2026-11-24T05:00:00.0000000Z ##[error]Process completed with exit code 1.\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/repos/o/r/actions/jobs/8/logs":
            self.send_response(403)
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()


@pytest.fixture
def log_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LogHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_job_log_follows_the_redirect(log_server: str) -> None:
    result = fetch_job_log(log_server, "o/r", 7, "tok-123", timeout=5)
    assert result.text is not None
    assert "exit code 1" in result.text
    assert _LogHandler.seen_auth[0] == "Bearer tok-123"


def test_fetch_job_log_reports_why_it_failed(log_server: str) -> None:
    denied = fetch_job_log(log_server, "o/r", 8, "tok", timeout=5)
    assert denied.text is None
    assert "actions: read" in denied.note
    missing = fetch_job_log(log_server, "o/r", 9, "tok", timeout=5)
    assert missing.text is None
    assert "404" in missing.note
    refused = fetch_job_log("http://127.0.0.1:9", "o/r", 1, "tok", timeout=2)
    assert refused.text is None
    assert "not available" in refused.note


# -- findings and deployment rows ------------------------------------------------------------------


def test_sarif_findings_most_severe_first_without_suppressed() -> None:
    actions = Actions.from_env({})
    findings, total, notes = sarif_findings([FIXTURES / "gate.sarif", FIXTURES / "absent.sarif"], actions)
    assert total == 3  # the suppressed result is not counted
    assert [f.level for f in findings] == ["error", "warning", "note"]
    assert findings[0].rule == "B105"
    assert findings[0].location == "src/app.py:12"
    assert "ghp_" not in json.dumps([f.message for f in findings])  # redacted
    assert notes
    assert "absent.sarif" in notes[0]


def test_deployment_rows_from_report_and_stage_outputs(tmp_path: Path) -> None:
    report = tmp_path / "validate.json"
    report.write_text(
        json.dumps(
            {"result": "rolled-back", "rollback": {"to": "1.2.2", "ttr_seconds": 14.2}, "checks": [1]}
        ),
        encoding="utf-8",
    )
    stages = [
        StageResult("deploy-staging", "success", {"url": "http://127.0.0.1:18081"}),
        StageResult("build", "success", {"v": "1"}),
    ]
    found, notes = deployment_rows(report, stages, Actions.from_env({}))
    rows = dict(found)
    assert notes == ()
    assert rows["result"] == "rolled-back"
    assert rows["rollback.to"] == "1.2.2"
    assert rows["deploy-staging.url"] == "http://127.0.0.1:18081"
    assert "build.v" not in rows


def test_workflow_file_from_the_callers_workflow_ref() -> None:
    env = {"GITHUB_WORKFLOW_REF": "o/r/.github/workflows/ci.yml@refs/heads/main", "GITHUB_WORKFLOW": "CI"}
    assert workflow_file(env) == "ci.yml"
    assert workflow_file({"GITHUB_WORKFLOW": "CI"}) == "CI"


# -- renderers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (61, "1m 01s"), (3725, "1h 02m 05s"), (90061, "1d 01h 01m"), (-5, "0s")],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert render.duration_text(seconds) == text
    assert render.duration_text(timedelta(seconds=seconds)) == text


def _ctx(log: str = "", error: str = "") -> FailureContext:
    run = RunInfo(
        "app/ci.yml",
        "ci.yml",
        "55",
        "main",
        "f" * 40,
        2,
        9,
        "https://github.com/o/r/actions/runs/55",
        actor="dev1",
    )
    jobs = (
        JobView("pipeline / build", "failure", "https://github.com/o/r/job/1", log_excerpt=log),
        JobView("lint", "success"),
    )
    return FailureContext(
        run, (StageResult("build", "failure"), StageResult("deploy", "skipped")), T0, jobs, error=error
    )


def test_issue_body_carries_the_seed_sentence_and_a_safe_code_fence() -> None:
    body = render.render_issue_body(
        _ctx(log="```\nerror: boom\n```"), "build", 1, "docs/x/.devops_cicd_cache_f.md", IncidentSettings()
    )
    assert "Deployment failed for commit `" + "f" * 40 + "`" in body
    assert "Pipeline logs: https://github.com/o/r/actions/runs/55" in body
    assert "Failure point: build" in body
    assert "artifact `devops-agent-failure-context-55-2`" in body
    assert "````text" in body  # longer than the backticks inside the log
    assert "@dev1" in body
    assert "[pipeline / build](https://github.com/o/r/job/1): failure" in body


def test_context_file_has_stages_diagram_and_is_bounded() -> None:
    text = render.render_context_file(_ctx(error="x" * 100), "build", 3, "p.md")
    assert "```mermaid" in text
    assert '["❌ build"]' in text
    assert "| Consecutive failed runs | 3 |" in text
    huge = render.render_issue_body(_ctx(log="y\n" * 80_000), "build", 1, "p", IncidentSettings())
    assert len(huge) <= render.MAX_BODY


def test_resolution_comment_states_mttr_and_fixing_run() -> None:
    run = _ctx().run
    text = render.render_resolution(run, "build", T0, T0 + timedelta(minutes=95), timedelta(minutes=95))
    assert "**1h 35m 00s**" in text
    assert "[run #9 (attempt 2)](https://github.com/o/r/actions/runs/55)" in text


def test_damaged_reports_become_notes_not_errors(tmp_path: Path) -> None:
    actions = Actions.from_env({})
    truncated = tmp_path / "merged.sarif"
    truncated.write_text('{"version": "2.1.0", "runs": [{"results": [', encoding="utf-8")
    not_sarif = tmp_path / "other.sarif"
    not_sarif.write_text('{"runs": "nope"}', encoding="utf-8")
    odd = tmp_path / "odd.sarif"
    odd.write_text('{"runs": [{"results": ["x", {"ruleId": "R1", "level": "error"}]}, 7]}', encoding="utf-8")
    findings, total, notes = sarif_findings([truncated, not_sarif, odd], actions)
    assert total == 1
    assert findings[0].rule == "R1"
    assert len(notes) == 2
    assert "merged.sarif is not readable JSON" in notes[0]
    assert "other.sarif is not a SARIF" in notes[1]
    report = tmp_path / "validate.json"
    report.write_text("[1, 2]", encoding="utf-8")
    rows, dep_notes = deployment_rows(report, [], actions)
    assert rows == ()
    assert dep_notes == ("deployment report validate.json is not a JSON object",)
    _rows, missing = deployment_rows(tmp_path / "absent.json", [], actions)
    assert "was not found" in missing[0]
