"""The retry policy on its own (no server): classification, budgets, lookups, counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devops_agent.core.errors import PlatformError, RateLimitError
from devops_agent.platform.retry import (
    Executor,
    Response,
    RetryPolicy,
    TransportError,
    classify_limit,
)
from tests.fakes.github.harness import FakeClock, policy_for

NOW = 1_800_000_000.0


def _r(status: int, message: str = "", **headers: str) -> Response:
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, {"message": message})


def _scripted(answers: list[Response | Exception]) -> tuple[Callable[[], Response], list[int]]:
    calls: list[int] = []
    queue: Iterator[Response | Exception] = iter(answers)

    def send() -> Response:
        calls.append(1)
        item = next(queue)
        if isinstance(item, Exception):
            raise item
        return item

    return send, calls


@pytest.mark.parametrize(
    ("response", "name", "wait"),
    [
        (_r(403, "You have exceeded a secondary rate limit", retry_after="30"), "secondary rate limit", 30.0),
        (_r(429, "", retry_after="12"), "429 Too Many Requests", 12.0),
        (
            _r(
                403,
                "API rate limit exceeded",
                x_ratelimit_remaining="0",
                x_ratelimit_reset=str(int(NOW) + 50),
            ),
            "primary rate limit",
            51.0,
        ),
        (_r(403, "You have exceeded a secondary rate limit"), "secondary rate limit", 60.0),
        (_r(429), "429 Too Many Requests", 60.0),
    ],
)
def test_classify_rate_limits(response: Response, name: str, wait: float) -> None:
    limit = classify_limit(response, NOW, 1, RetryPolicy())
    assert limit is not None
    assert (limit.name, limit.wait) == (name, wait)


@pytest.mark.parametrize("response", [_r(403, "Resource not accessible by integration"), _r(404), _r(500)])
def test_plain_errors_are_not_rate_limits(response: Response) -> None:
    assert classify_limit(response, NOW, 1, RetryPolicy()) is None


def test_secondary_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_wait=200)
    waits = [classify_limit(_r(403, "secondary rate limit"), NOW, n, policy) for n in (1, 2, 3, 4)]
    assert [w.wait for w in waits if w] == [60.0, 120.0, 200.0, 200.0]


def test_non_idempotent_without_lookup_is_never_resent() -> None:
    clock = FakeClock()
    send, calls = _scripted([_r(502), _r(201)])
    with pytest.raises(PlatformError, match="not re-sent"):
        Executor(policy_for(clock)).run(send, method="POST", what="create thing")
    assert len(calls) == 1


def test_transport_error_on_post_triggers_lookup() -> None:
    clock = FakeClock()
    send, calls = _scripted([TransportError("reset")])
    found = {"id": 7}
    ex = Executor(policy_for(clock))
    result = ex.run(send, method="POST", what="create", lookup=lambda: found)
    assert result.looked_up
    assert result.data == found
    assert len(calls) == 1


def test_lookup_miss_resends_once() -> None:
    clock = FakeClock()
    send, calls = _scripted([_r(500), _r(201)])
    result = Executor(policy_for(clock)).run(send, method="POST", what="create", lookup=lambda: None)
    assert result.status == 201
    assert len(calls) == 2


def test_rate_limited_post_is_resent_without_lookup() -> None:
    clock = FakeClock()
    send, calls = _scripted([_r(403, "secondary rate limit", retry_after="3"), _r(201)])
    looked: list[int] = []
    result = Executor(policy_for(clock)).run(
        send, method="POST", what="create", lookup=lambda: looked.append(1)
    )
    assert result.status == 201
    assert looked == []
    assert len(calls) == 2
    assert clock.slept == [3.0]


def test_wait_longer_than_max_wait_fails_fast() -> None:
    clock = FakeClock(now=NOW)
    send, calls = _scripted([_r(403, "", x_ratelimit_remaining="0", x_ratelimit_reset=str(int(NOW) + 5000))])
    with pytest.raises(RateLimitError, match=r"primary rate limit.*more than the 900 s allowed"):
        Executor(policy_for(clock)).run(send, method="GET", what="list")
    assert clock.slept == []
    assert len(calls) == 1


def test_total_wait_budget() -> None:
    clock = FakeClock()
    answers: list[Response | Exception] = [_r(429, "", retry_after="100")] * 6
    send, _ = _scripted(answers)
    with pytest.raises(RateLimitError, match="exceed 250 s in total"):
        Executor(policy_for(clock, max_total_wait=250)).run(send, method="GET", what="list")
    assert clock.slept == [100.0, 100.0]


def test_4xx_is_returned_to_the_caller_unretried() -> None:
    clock = FakeClock()
    send, calls = _scripted([_r(422, "Validation Failed")])
    assert Executor(policy_for(clock)).run(send, method="PUT", what="put").status == 422
    assert len(calls) == 1


def test_counters() -> None:
    clock = FakeClock()
    send, _ = _scripted([_r(503), _r(429, retry_after="1"), _r(200)])
    ex = Executor(policy_for(clock))
    ex.run(send, method="GET", what="list")
    stats = ex.counters.snapshot()
    assert (stats.requests, stats.reads, stats.writes, stats.retries, stats.rate_limited) == (3, 3, 0, 2, 1)
    assert stats.waited_seconds == 2.0
