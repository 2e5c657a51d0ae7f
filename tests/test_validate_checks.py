"""Validation logic: pure decisions, then the runner against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devops_agent.deploy.settings import HttpCheck, ValidateSettings
from devops_agent.deploy.validation import (
    RequestsProbe,
    Response,
    Validator,
    backoff_schedule,
    canary_targets,
    evaluate,
    json_lookup,
)


class FakeClock:
    """Monotonic time that only moves when the code sleeps (or a probe says time passed)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class Behaviour:
    """What the local server answers, per path; counts requests."""

    def __init__(self) -> None:
        self.fail_first: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.body: dict[str, Any] = {}
        self.delay: dict[str, float] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            import time

            path = self.path
            with behaviour.lock:
                behaviour.hits[path] = behaviour.hits.get(path, 0) + 1
                hit = behaviour.hits[path]
            if behaviour.delay.get(path):
                time.sleep(behaviour.delay[path])
            status = behaviour.status.get(path, 200)
            if hit <= behaviour.fail_first.get(path, 0):
                status = 503
            payload = behaviour.body.get(path, {"status": "ok"})
            body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", behaviour
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def settings(*checks: HttpCheck, **kw: Any) -> ValidateSettings:
    base = ValidateSettings(checks=checks, retries=3, backoff_seconds=0.5, timeout_seconds=60)
    return replace(base, **kw)


# -- pure ---------------------------------------------------------------------------------------


def test_evaluate_names_every_unmet_expectation() -> None:
    check = HttpCheck(
        "h",
        path="/h",
        expect_status=(200, 204),
        body_contains="ok",
        json={"status": "ok", "db.up": True, "items.1": 2},
        latency_ms=100,
    )
    good = Response(204, json.dumps({"status": "ok", "db": {"up": True}, "items": [1, 2]}), 10)
    assert evaluate(check, good) == []
    bad = Response(500, json.dumps({"status": "down", "db": {"up": 1}, "items": [1]}), 250)
    problems = evaluate(check, bad)
    assert problems == [
        "status 500, expected 200/204",
        "body does not contain 'ok'",
        "JSON status = 'down', expected 'ok'",
        "JSON db.up = 1, expected True",  # 1 is not True: booleans compare strictly
        "JSON items.1 is missing (expected 2)",
        "took 250 ms, budget 100 ms",
    ]
    assert evaluate(check, Response(0, "", 5, "connection failed")) == ["connection failed"]
    assert evaluate(HttpCheck("j", path="/", json={"a": 1}), Response(200, "<html>", 1)) == [
        "body is not JSON"
    ]


def test_numbers_compare_by_value() -> None:
    check = HttpCheck("c", path="/", json={"fahrenheit": 212})
    assert evaluate(check, Response(200, '{"fahrenheit": 212.0}', 1)) == []


def test_json_lookup_walks_mappings_and_lists() -> None:
    data = {"a": {"b": [{"c": 1}]}}
    assert json_lookup(data, "a.b.0.c") == 1
    assert json_lookup(data, "a.b.1.c") is not None  # the missing sentinel, never a value
    assert json_lookup(data, "a.x") is json_lookup(data, "zzz")


def test_backoff_doubles() -> None:
    assert backoff_schedule(5, 0.5) == [0.5, 1.0, 2.0, 4.0]
    assert backoff_schedule(1, 0.5) == []


@given(st.integers(1, 100), st.integers(1, 200))
def test_canary_share_is_exact_and_never_zero(percent: int, rounds: int) -> None:
    targets = canary_targets(percent, rounds)
    assert len(targets) == rounds
    assert sum(targets) == max(1, rounds * percent // 100)


# -- against a real server ------------------------------------------------------------------------


def test_retries_with_exponential_backoff_until_healthy(
    server: tuple[str, Behaviour], tmp_path: Path
) -> None:
    url, behaviour = server
    behaviour.fail_first["/healthz"] = 2
    clock = FakeClock()
    probe = RequestsProbe()
    report = Validator(
        settings(HttpCheck("health", path="/healthz", json={"status": "ok"}), retries=4),
        probe,
        clock,
        tmp_path,
    ).run(url)
    probe.close()
    assert report.passed
    attempts = report.checks[0].attempts
    assert [a.status for a in attempts] == [503, 503, 200]
    assert clock.sleeps == [0.5, 1.0]
    assert behaviour.hits["/healthz"] == 3


def test_a_check_that_never_passes_fails_with_its_reason(
    server: tuple[str, Behaviour], tmp_path: Path
) -> None:
    url, behaviour = server
    behaviour.body["/api"] = {"value": 3}
    clock = FakeClock()
    probe = RequestsProbe()
    report = Validator(
        settings(HttpCheck("api", path="/api", json={"value": 4})), probe, clock, tmp_path
    ).run(url)
    probe.close()
    assert not report.passed
    assert report.reason == "check 'api' failed: JSON value = 3, expected 4"
    assert len(report.checks[0].attempts) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert report.failed_at == clock.now


def test_latency_budget_is_enforced(server: tuple[str, Behaviour], tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.delay["/slow"] = 0.3
    probe = RequestsProbe()
    report = Validator(
        settings(HttpCheck("slow", path="/slow", latency_ms=50), retries=1), probe, FakeClock(), tmp_path
    ).run(url)
    probe.close()
    assert not report.passed
    assert "budget 50 ms" in report.reason


def test_overall_timeout_stops_retrying(server: tuple[str, Behaviour], tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.status["/down"] = 500
    clock = FakeClock()
    probe = RequestsProbe()
    report = Validator(
        settings(HttpCheck("down", path="/down"), retries=50, backoff_seconds=1, timeout_seconds=10),
        probe,
        clock,
        tmp_path,
    ).run(url)
    probe.close()
    assert not report.passed
    # waits 1, 2, 4, then only the 3 s left: never past the 10 s budget
    assert clock.sleeps == [1, 2, 4, 3]
    assert report.checks[0].attempts[-1].problems == ("overall validation timeout reached",)


def test_unreachable_release_is_a_failed_check(tmp_path: Path) -> None:
    from tests.fixtures.deploy.support import free_ports

    port = free_ports(1)[0]
    probe = RequestsProbe()
    report = Validator(settings(HttpCheck("h", path="/"), retries=2), probe, FakeClock(), tmp_path).run(
        f"http://127.0.0.1:{port}"
    )
    probe.close()
    assert report.reason == "check 'h' failed: connection failed"


def test_absolute_url_and_body_contains(server: tuple[str, Behaviour], tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.body["/page"] = "<h1>Welcome</h1>"
    probe = RequestsProbe()
    ok = Validator(
        settings(HttpCheck("page", url=f"{url}/page", body_contains="Welcome")), probe, FakeClock(), tmp_path
    ).run(None)
    probe.close()
    assert ok.passed
    assert ok.checks[0].url == f"{url}/page"


def test_smoke_commands_see_the_url_and_fail_the_validation(
    server: tuple[str, Behaviour], tmp_path: Path
) -> None:
    url, _ = server
    probe = RequestsProbe()
    good = settings(
        HttpCheck("h", path="/"),
        smoke=(
            'test "$DEVOPS_AGENT_URL" = "' + url + '"',
            "python3 -c \"import urllib.request,os; urllib.request.urlopen(os.environ['DEVOPS_AGENT_URL'])\"",
        ),
    )
    report = Validator(good, probe, FakeClock(), tmp_path).run(url)
    assert report.passed, report.reason
    assert [s.exit_code for s in report.smoke] == [0, 0]
    bad = replace(good, smoke=("echo checking; exit 7",))
    failed = Validator(bad, probe, FakeClock(), tmp_path).run(url)
    probe.close()
    assert failed.reason == "smoke command 'echo checking; exit 7' failed (exit code 7)"
    assert "checking" in failed.smoke[0].tail


def test_soak_repeats_checks_and_catches_a_late_failure(
    server: tuple[str, Behaviour], tmp_path: Path
) -> None:
    url, behaviour = server
    clock = FakeClock()
    probe = RequestsProbe()
    soak = settings(HttpCheck("h", path="/h"), soak_seconds=10, soak_interval_seconds=2)
    report = Validator(soak, probe, clock, tmp_path).run(url)
    assert report.passed
    assert report.soak_rounds == 5
    assert clock.sleeps == [2, 2, 2, 2, 2]
    # now the service degrades after 3 more requests: the soak must catch it
    behaviour.fail_first.clear()
    behaviour.hits.clear()
    behaviour.status["/late"] = 200
    failing = settings(HttpCheck("late", path="/late"), soak_seconds=10, soak_interval_seconds=2)

    class Degrading(RequestsProbe):
        calls = 0

        def request(self, method: str, url: str, *, timeout: float) -> Response:
            Degrading.calls += 1
            if Degrading.calls > 3:
                behaviour.status["/late"] = 500
            return super().request(method, url, timeout=timeout)

    degrading = Degrading()
    late = Validator(failing, degrading, FakeClock(), tmp_path).run(url)
    degrading.close()
    probe.close()
    assert not late.passed
    assert late.reason.startswith("soak round 3: check 'late' failed: status 500")
    # soak rounds are strict: one attempt each
    assert all(len(c.attempts) == 1 for c in late.checks if c.phase == "soak")


def test_canary_rounds_split_between_live_and_canary(tmp_path: Path) -> None:
    seen: list[str] = []

    class Recording:
        def request(self, method: str, url: str, *, timeout: float) -> Response:
            seen.append(url)
            return Response(200, '{"status": "ok"}', 1)

    s = settings(HttpCheck("h", path="/healthz"), canary_percent=30, canary_rounds=10)
    report = Validator(s, Recording(), FakeClock(), tmp_path).run("http://live", canary_url="http://canary")
    assert report.passed
    assert seen.count("http://canary/healthz") == 3
    assert seen.count("http://live/healthz") == 7
    assert "3 of 10 check rounds" in report.notes[0]
