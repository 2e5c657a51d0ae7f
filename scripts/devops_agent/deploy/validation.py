"""Post-deployment validation: HTTP checks, smoke commands, soak window, canary share.

The decisions are pure (:func:`evaluate`, :func:`backoff_schedule`, :func:`canary_targets`); the
I/O goes through two small interfaces — :class:`Probe` (one HTTP request) and :class:`Clock`
(monotonic time and sleep) — so tests drive the logic with a local HTTP server and a fake clock.

One check passes when an attempt meets every expectation: status in ``expect_status``, the body
contains ``body_contains``, every dotted JSON path equals its expected value, and the request took
at most ``latency_ms``. A failed attempt is retried ``retries - 1`` times, waiting
``backoff_seconds`` then doubling, never past the overall ``timeout_seconds``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from devops_agent.deploy import shell
from devops_agent.deploy.settings import HttpCheck, ValidateSettings

_MISSING = object()


@dataclass(frozen=True)
class Response:
    status: int  # 0 when no HTTP response arrived
    body: str
    elapsed_ms: float
    error: str | None = None  # connection refused, timeout...


class Probe(Protocol):
    def request(self, method: str, url: str, *, timeout: float) -> Response: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class RequestsProbe:
    """HTTP through requests; loopback targets ignore proxy settings from the environment."""

    def __init__(self) -> None:
        import requests

        self._requests = requests
        self._direct = requests.Session()
        self._direct.trust_env = False
        self._env = requests.Session()

    def request(self, method: str, url: str, *, timeout: float) -> Response:
        host = (urlsplit(url).hostname or "").lower()
        session = self._direct if host in {"127.0.0.1", "localhost", "::1"} else self._env
        started = time.monotonic()
        try:
            response = session.request(method, url, timeout=timeout, allow_redirects=False)
            body = response.text if method != "HEAD" else ""
            return Response(response.status_code, body[:65536], (time.monotonic() - started) * 1000)
        except self._requests.RequestException as exc:
            reason = type(exc).__name__
            if isinstance(exc, self._requests.ConnectionError):
                reason = "connection failed"
            if isinstance(exc, self._requests.Timeout):
                reason = f"timed out after {timeout:g}s"
            return Response(0, "", (time.monotonic() - started) * 1000, reason)

    def close(self) -> None:
        self._direct.close()
        self._env.close()


# -- pure decisions ---------------------------------------------------------------------------


def json_lookup(data: Any, path: str) -> Any:
    """``a.b.0.c`` in parsed JSON; ``_MISSING`` when absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected if isinstance(expected, bool) else False
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(actual) == float(expected)
    return bool(actual == expected)


def evaluate(check: HttpCheck, response: Response) -> list[str]:
    """Every unmet expectation of one response (empty: the attempt passed)."""
    if response.error:
        return [response.error]
    problems: list[str] = []
    if response.status not in check.expect_status:
        want = "/".join(str(s) for s in check.expect_status)
        problems.append(f"status {response.status}, expected {want}")
    if check.body_contains is not None and check.body_contains not in response.body:
        problems.append(f"body does not contain {check.body_contains!r}")
    if check.json:
        try:
            data = json.loads(response.body)
        except ValueError:
            problems.append("body is not JSON")
        else:
            for path, expected in check.json.items():
                actual = json_lookup(data, path)
                if actual is _MISSING:
                    problems.append(f"JSON {path} is missing (expected {expected!r})")
                elif not _same(actual, expected):
                    problems.append(f"JSON {path} = {actual!r}, expected {expected!r}")
    if check.latency_ms is not None and response.elapsed_ms > check.latency_ms:
        problems.append(f"took {response.elapsed_ms:.0f} ms, budget {check.latency_ms} ms")
    return problems


def backoff_schedule(retries: int, backoff_seconds: float) -> list[float]:
    """The waits between attempts: backoff, 2 * backoff, 4 * backoff… (retries - 1 of them)."""
    return [backoff_seconds * (2**i) for i in range(max(0, retries - 1))]


def canary_targets(percent: int, rounds: int) -> list[bool]:
    """Which rounds go to the canary (True): exactly round(percent% of rounds), spread evenly."""
    out: list[bool] = []
    for i in range(rounds):
        out.append((i + 1) * percent // 100 > i * percent // 100)
    if percent > 0 and not any(out) and rounds:
        out[-1] = True  # at least one check must reach the canary
    return out


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    check: str
    url: str
    number: int
    status: int
    elapsed_ms: float
    problems: tuple[str, ...]
    target: str = "live"  # live | canary

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class CheckResult:
    name: str
    url: str
    attempts: tuple[Attempt, ...]
    phase: str = "checks"  # checks | canary | soak | revalidate

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok


@dataclass(frozen=True)
class SmokeResult:
    command: str
    exit_code: int
    seconds: float
    tail: str
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class ValidationReport:
    base_url: str | None
    checks: tuple[CheckResult, ...] = ()
    smoke: tuple[SmokeResult, ...] = ()
    soak_rounds: int = 0
    seconds: float = 0.0
    failed_at: float | None = None  # clock.monotonic() of the observation that failed it
    reason: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "base_url": self.base_url,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "soak_rounds": self.soak_rounds,
            "checks": [
                {
                    "name": c.name,
                    "url": c.url,
                    "phase": c.phase,
                    "passed": c.passed,
                    "attempts": [
                        {
                            "n": a.number,
                            "status": a.status,
                            "ms": round(a.elapsed_ms, 1),
                            "problems": list(a.problems),
                            "target": a.target,
                        }
                        for a in c.attempts
                    ],
                }
                for c in self.checks
            ],
            "smoke": [
                {
                    "command": s.command,
                    "exit_code": s.exit_code,
                    "seconds": round(s.seconds, 3),
                    "tail": s.tail,
                }
                for s in self.smoke
            ],
            "notes": list(self.notes),
        }


# -- the runner -------------------------------------------------------------------------------


@dataclass
class Validator:
    settings: ValidateSettings
    probe: Probe
    clock: Clock
    app_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def _check(
        self,
        check: HttpCheck,
        base_url: str | None,
        deadline: float,
        *,
        retries: int,
        phase: str,
        target: str,
    ) -> tuple[CheckResult, float | None]:
        url = check.target(base_url)
        waits = backoff_schedule(retries, self.settings.backoff_seconds)
        attempts: list[Attempt] = []
        failed_at: float | None = None
        for number in range(1, retries + 1):
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                attempts.append(
                    Attempt(check.name, url, number, 0, 0.0, ("overall validation timeout reached",), target)
                )
                failed_at = self.clock.monotonic()
                break
            response = self.probe.request(
                check.method, url, timeout=min(self.settings.request_timeout_seconds, max(0.1, remaining))
            )
            problems = tuple(evaluate(check, response))
            attempts.append(
                Attempt(check.name, url, number, response.status, response.elapsed_ms, problems, target)
            )
            if not problems:
                failed_at = None
                break
            failed_at = self.clock.monotonic()
            if number <= len(waits):
                wait = min(waits[number - 1], max(0.0, deadline - self.clock.monotonic()))
                self.clock.sleep(wait)
        return CheckResult(check.name, url, tuple(attempts), phase), failed_at

    def _round(
        self,
        base_url: str | None,
        deadline: float,
        *,
        retries: int,
        phase: str,
        target: str = "live",
    ) -> tuple[list[CheckResult], float | None, str]:
        results: list[CheckResult] = []
        for check in self.settings.checks:
            result, failed_at = self._check(
                check, base_url, deadline, retries=retries, phase=phase, target=target
            )
            results.append(result)
            if not result.passed:
                last = result.attempts[-1]
                where = f" ({target})" if target != "live" else ""
                return results, failed_at, f"check {check.name!r}{where} failed: {'; '.join(last.problems)}"
        return results, None, ""

    def _smoke(self, base_url: str | None, deadline: float) -> tuple[list[SmokeResult], float | None, str]:
        out: list[SmokeResult] = []
        env = dict(self.env)
        env["DEVOPS_AGENT_URL"] = base_url or ""
        for command in self.settings.smoke:
            remaining = max(1.0, deadline - self.clock.monotonic())
            done = shell.shell(command, cwd=self.app_dir, env=env, timeout=remaining)
            result = SmokeResult(command, done.exit_code, done.seconds, done.tail(20), done.timed_out)
            out.append(result)
            if not result.passed:
                why = "timed out" if done.timed_out else f"exit code {done.exit_code}"
                return out, self.clock.monotonic(), f"smoke command {command!r} failed ({why})"
        return out, None, ""

    def run(
        self,
        base_url: str | None,
        *,
        canary_url: str | None = None,
        soak: bool = True,
        phase: str = "checks",
    ) -> ValidationReport:
        """Validate ``base_url`` (with a canary first when ``canary_url`` is given)."""
        started = self.clock.monotonic()
        deadline = started + self.settings.timeout_seconds
        results: list[CheckResult] = []
        notes: list[str] = []

        def done(
            reason: str = "",
            failed_at: float | None = None,
            smoke: Sequence[SmokeResult] = (),
            rounds: int = 0,
        ) -> ValidationReport:
            return ValidationReport(
                base_url,
                tuple(results),
                tuple(smoke),
                rounds,
                self.clock.monotonic() - started,
                failed_at,
                reason,
                tuple(notes),
            )

        if canary_url is not None and self.settings.canary_percent:
            targets = canary_targets(self.settings.canary_percent, self.settings.canary_rounds)
            notes.append(
                f"canary: {sum(targets)} of {len(targets)} check rounds ({self.settings.canary_percent}%) "
                f"sent to the new release"
            )
            for to_canary in targets:
                url = canary_url if to_canary else base_url
                got, failed_at, reason = self._round(
                    url,
                    deadline,
                    retries=self.settings.retries,
                    phase="canary",
                    target="canary" if to_canary else "live",
                )
                results.extend(got)
                if reason:
                    return done(reason, failed_at)
            return done()
        got, failed_at, reason = self._round(base_url, deadline, retries=self.settings.retries, phase=phase)
        results.extend(got)
        if reason:
            return done(reason, failed_at)
        smoke, failed_at, reason = self._smoke(base_url, deadline)
        if reason:
            return done(reason, failed_at, smoke)
        rounds = 0
        if soak and self.settings.soak_seconds > 0 and self.settings.checks:
            soak_end = self.clock.monotonic() + self.settings.soak_seconds
            while True:
                now = self.clock.monotonic()
                if now >= soak_end:
                    break
                self.clock.sleep(min(self.settings.soak_interval_seconds, soak_end - now))
                rounds += 1
                # Soak rounds are strict: one attempt per check, no retries.
                got, failed_at, reason = self._round(
                    base_url, soak_end + self.settings.request_timeout_seconds, retries=1, phase="soak"
                )
                results.extend(got)
                if reason:
                    return done(f"soak round {rounds}: {reason}", failed_at, smoke, rounds)
            notes.append(f"soak: {rounds} rounds over {self.settings.soak_seconds:g}s passed")
        return done("", None, smoke, rounds)
