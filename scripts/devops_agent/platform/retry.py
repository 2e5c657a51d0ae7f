"""The retry policy of the GitHub backend.

Rules (GitHub's documented rate-limit behaviour, see docs/platform.md):

- Only idempotent requests are re-sent after a server error or a broken connection (GET, PUT,
  DELETE, and the POST/PATCH calls the caller marks idempotent because re-sending them cannot
  change the outcome). A non-idempotent POST that may have succeeded (5xx, timeout, connection
  reset) is LOOKED UP first (``lookup``): when the object exists it is returned, otherwise the POST
  is re-sent. Without a lookup it is not re-sent: the error says so.
- A rate-limited answer (403/429 of a primary or secondary limit) means GitHub did not perform the
  request, so any request (POST included) is re-sent after the wait:
  ``retry-after`` → wait that long; ``x-ratelimit-remaining: 0`` → wait until
  ``x-ratelimit-reset``; otherwise (secondary limit without headers) back off exponentially from
  60 s. A single wait longer than ``max_wait`` or a total beyond ``max_total_wait`` or
  ``max_attempts`` attempts → :class:`RateLimitError` naming the limit and when it resets.
- Writes can be paced (``write_interval``) to stay under the content-creation secondary limit.

The clock and the sleep function are injectable, so tests never sleep for real; every attempt is
counted (:class:`Counters`) for benchmarks and job summaries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from devops_agent.core.errors import PlatformError, RateLimitError
from devops_agent.core.platform import RequestStats

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SERVER_ERRORS = frozenset({500, 502, 503, 504})
RATE_LIMIT_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


@dataclass(frozen=True)
class Response:
    """One HTTP answer. ``headers`` keys are lower case; ``data`` is the decoded JSON (or None)."""

    status: int
    headers: Mapping[str, str]
    data: Any
    looked_up: bool = False  # True when this is the result of a lookup, not of the request

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        if isinstance(self.data, Mapping):
            return str(self.data.get("message", ""))
        return ""


class TransportError(Exception):
    """The request could not complete (refused, reset, timed out): it may or may not have been
    performed by the server."""


@dataclass(frozen=True)
class Limit:
    """A rate-limit answer: which limit and how long GitHub asks us to wait."""

    name: str  # "primary rate limit" | "secondary rate limit" | "429 Too Many Requests"
    wait: float
    resets_at: float | None = None


def classify_limit(response: Response, now: float, attempt: int, policy: RetryPolicy) -> Limit | None:
    """The rate limit ``response`` reports, or None when it is not a rate-limit answer."""
    if response.status not in (403, 429):
        return None
    headers = response.headers
    message = response.message.lower()
    retry_after = _number(headers.get("retry-after"))
    remaining = headers.get("x-ratelimit-remaining")
    reset = _number(headers.get("x-ratelimit-reset"))
    secondary = "secondary rate limit" in message or "abuse" in message
    if retry_after is not None:
        name = "429 Too Many Requests" if response.status == 429 and not secondary else "secondary rate limit"
        return Limit(name, max(retry_after, 0.0))
    if remaining == "0" and reset is not None and not secondary:
        return Limit("primary rate limit", max(reset - now, 0.0) + 1.0, reset)
    if secondary or response.status == 429 or "rate limit" in message:
        backoff = policy.secondary_backoff * 2.0 ** max(attempt - 1, 0)
        name = "429 Too Many Requests" if response.status == 429 else "secondary rate limit"
        return Limit(name, min(backoff, policy.max_wait))
    return None  # a plain 403: permission denied


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass
class Counters:
    """Thread-safe request counters; :meth:`snapshot` gives the frozen :class:`RequestStats`."""

    requests: int = 0
    reads: int = 0
    writes: int = 0
    retries: int = 0
    lookups: int = 0
    waited_seconds: float = 0.0
    rate_limited: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, method: str, *, retry: bool, lookup: bool) -> None:
        with self._lock:
            self.requests += 1
            if method in ("GET", "HEAD"):
                self.reads += 1
            else:
                self.writes += 1
            self.retries += int(retry)
            self.lookups += int(lookup)

    def waited(self, seconds: float, *, rate_limited: bool) -> None:
        with self._lock:
            self.waited_seconds += seconds
            self.rate_limited += int(rate_limited)

    def snapshot(self) -> RequestStats:
        with self._lock:
            return RequestStats(
                requests=self.requests,
                reads=self.reads,
                writes=self.writes,
                retries=self.retries,
                lookups=self.lookups,
                waited_seconds=self.waited_seconds,
                rate_limited=self.rate_limited,
            )


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry. Defaults suit a CI job; tests inject ``clock``/``sleep``."""

    max_attempts: int = 6
    backoff: float = 1.0  # first wait after a server error; doubles each time
    max_backoff: float = 30.0
    secondary_backoff: float = 60.0  # first wait after a secondary limit without retry-after
    max_wait: float = 900.0  # one wait longer than this → give up (RateLimitError)
    max_total_wait: float = 1800.0
    write_interval: float = 0.0  # minimum seconds between two writes (pacing)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def server_backoff(self, attempt: int, response: Response | None) -> float:
        retry_after = _number(response.headers.get("retry-after")) if response is not None else None
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        return float(min(self.backoff * 2.0 ** max(attempt - 1, 0), self.max_backoff))


class Executor:
    """Runs one logical request under a :class:`RetryPolicy`, counting every attempt."""

    def __init__(self, policy: RetryPolicy, counters: Counters | None = None) -> None:
        self.policy = policy
        self.counters = counters or Counters()
        self._last_write = -1e18
        self._write_lock = threading.Lock()

    def _pace(self, method: str) -> None:
        if method in ("GET", "HEAD") or self.policy.write_interval <= 0:
            return
        with self._write_lock:
            due = self._last_write + self.policy.write_interval - self.policy.clock()
            if due > 0:
                self.policy.sleep(due)
            self._last_write = self.policy.clock()

    def run(
        self,
        send: Callable[[], Response],
        *,
        method: str,
        what: str,
        idempotent: bool | None = None,
        lookup: Callable[[], Any | None] | None = None,
        is_lookup: bool = False,
    ) -> Response:
        """Send until an answer that is not a transient failure; see the module docstring.

        Returns the final response (any status below 500 that is not a rate limit — the caller
        interprets 4xx), or a ``looked_up`` response whose ``data`` is what ``lookup`` found.
        """
        policy = self.policy
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        total_wait = 0.0
        last_problem = ""
        for attempt in range(1, policy.max_attempts + 1):
            self._pace(method)
            self.counters.count(method, retry=attempt > 1, lookup=is_lookup)
            response: Response | None
            try:
                response = send()
            except TransportError as exc:
                response, last_problem = None, f"the connection failed ({exc})"
            if response is not None:
                limit = classify_limit(response, policy.clock(), attempt, policy)
                if limit is not None:
                    # GitHub refused the request: nothing happened, any method may be re-sent.
                    total_wait = self._wait_for_limit(limit, what, attempt, total_wait)
                    continue
                if response.status not in SERVER_ERRORS:
                    return response
                last_problem = f"GitHub answered {response.status} {response.message}".rstrip()
            # a server error or a broken connection: the request may have been performed
            if not idempotent:
                if lookup is None:
                    raise PlatformError(
                        f"{what}: {last_problem}; the request is not idempotent and may or may not "
                        "have been applied, so it was not re-sent",
                        "check the result on GitHub, then re-run the job",
                    )
                wait = policy.server_backoff(attempt, response)
                total_wait = self._sleep(wait, total_wait, rate_limited=False)
                found = lookup()
                if found is not None:
                    return Response(200, {}, found, looked_up=True)
            if attempt == policy.max_attempts:
                break
            if idempotent:
                wait = policy.server_backoff(attempt, response)
                total_wait = self._sleep(wait, total_wait, rate_limited=False)
        raise PlatformError(
            f"{what}: {last_problem} (gave up after {policy.max_attempts} attempts)",
            "GitHub may be having an incident (https://www.githubstatus.com); re-run the job later",
        )

    def _sleep(self, seconds: float, total: float, *, rate_limited: bool) -> float:
        if seconds > 0:
            self.policy.sleep(seconds)
        self.counters.waited(seconds, rate_limited=rate_limited)
        return total + seconds

    def _wait_for_limit(self, limit: Limit, what: str, attempt: int, total: float) -> float:
        policy = self.policy
        resets = ""
        if limit.resets_at is not None:
            when = datetime.fromtimestamp(limit.resets_at, tz=timezone.utc)
            resets = f"; it resets at {when:%Y-%m-%d %H:%M:%S} UTC"
        if attempt >= policy.max_attempts:
            reason = f"it persisted through {attempt} attempts"
        elif limit.wait > policy.max_wait:
            reason = f"GitHub asks to wait {limit.wait:.0f} s, more than the {policy.max_wait:.0f} s allowed"
        elif total + limit.wait > policy.max_total_wait:
            reason = f"waiting {limit.wait:.0f} s more would exceed {policy.max_total_wait:.0f} s in total"
        else:
            self.counters.waited(0.0, rate_limited=True)
            return self._sleep(limit.wait, total, rate_limited=False)
        self.counters.waited(0.0, rate_limited=True)
        raise RateLimitError(
            f"{what}: GitHub {limit.name} hit and {reason}{resets}",
            "re-run the job after the limit resets; spread heavy jobs (cleanup) over time, or use a "
            "token with a higher limit (a GitHub App installation token)",
            link=RATE_LIMIT_DOCS,
        )
