"""Freeze windows: when promotion to production is blocked.

A window is either a date range (``start``/``end``) or a recurring freeze (``cron`` +
``duration_minutes``), both read in the window's IANA ``timezone`` (default UTC).

Semantics (documented in docs/promote.md, tested exhaustively in tests/test_promote_freeze.py):

- A window is the half-open interval ``[start, end)``. A date without a time means midnight of
  that day in the window's time zone (so ``end: 2026-01-05`` ends when 5 January begins).
- A date-time with an explicit offset (``Z``, ``+01:00``) is taken as that instant; without an
  offset it is a wall-clock time in ``timezone``.
- Cron fire times follow Debian cron (via ``cronsim``): a fixed-time freeze whose wall-clock start
  falls in a skipped hour (spring forward) starts at the end of the gap; in a repeated hour (fall
  back) it starts at the first occurrence, once.
- ``duration_minutes`` is counted on the wall clock of ``timezone``: a freeze starting Friday 18:00
  and lasting 3,600 minutes ends Monday 06:00 local time, on DST weekends too.
- Wall-clock times that do not exist (spring-forward gap) resolve to the end of the gap; ambiguous
  ones (fall-back overlap) resolve so that the window is never shorter than written: a start to
  the first occurrence, an end to the second one.

Everything here is pure: :func:`evaluate` takes ``now``; nothing reads the clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devops_agent.core.errors import ConfigError

UTC = timezone.utc
#: An override reason shorter than this is refused (a reason is an audit record, not a checkbox).
MIN_REASON_LENGTH = 10
#: How many chained recurring windows are followed to find when a freeze ends.
_MAX_CHAIN = 1000
#: Gaps longer than this do not exist in the tz database (Samoa skipped one whole day in 2011).
_MAX_GAP_MINUTES = 48 * 60

Side = Literal["start", "end"]


@dataclass(frozen=True)
class FreezeWindow:
    """One configured freeze window (``promote.freeze[index]``)."""

    name: str
    tz: str
    index: int = 0
    start: datetime | None = None  # aware, date ranges only
    end: datetime | None = None
    cron: str | None = None
    duration: timedelta | None = None

    @property
    def field(self) -> str:
        return f"promote.freeze[{self.index}]"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def describe(self) -> str:
        if self.cron:
            minutes = int((self.duration or timedelta()).total_seconds() // 60)
            return f"cron `{self.cron}` for {minutes} min ({self.tz})"
        assert self.start is not None
        assert self.end is not None
        return f"{_fmt(self.start, self.zone)} → {_fmt(self.end, self.zone)} ({self.tz})"


@dataclass(frozen=True)
class ActiveFreeze:
    """A window that contains ``now``: its name and the concrete interval."""

    window: FreezeWindow
    start: datetime
    end: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.window.name,
            "window": self.window.describe(),
            "start": self.start.astimezone(UTC).isoformat(),
            "end": self.end.astimezone(UTC).isoformat(),
            "timezone": self.window.tz,
        }


@dataclass(frozen=True)
class FreezeDecision:
    """What the freeze windows say about ``now``."""

    now: datetime
    active: tuple[ActiveFreeze, ...] = ()
    upcoming: ActiveFreeze | None = None  # the next window starting after now (within a year)

    @property
    def blocked(self) -> bool:
        return bool(self.active)

    @property
    def until(self) -> datetime | None:
        return max((a.end for a in self.active), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.astimezone(UTC).isoformat(),
            "blocked": self.blocked,
            "active": [a.to_json() for a in self.active],
            "until": self.until.astimezone(UTC).isoformat() if self.until else None,
            "upcoming": self.upcoming.to_json() if self.upcoming else None,
        }


@dataclass(frozen=True)
class FreezeOverride:
    """An explicit, recorded decision to promote during a freeze."""

    reason: str
    by: str
    at: datetime
    windows: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "by": self.by,
            "at": self.at.astimezone(UTC).isoformat(),
            "windows": list(self.windows),
        }


@dataclass(frozen=True)
class FreezeOutcome:
    """The gate's verdict: ``clear`` (no freeze), ``overridden`` (recorded) or ``blocked``."""

    status: Literal["clear", "overridden", "blocked"]
    decision: FreezeDecision
    override: FreezeOverride | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return self.status != "blocked"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            **self.decision.to_json(),
            "override": self.override.to_json() if self.override else None,
            "notes": list(self.notes),
        }


# -- time-zone arithmetic ----------------------------------------------------------------------


def _fmt(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def is_imaginary(wall: datetime, zone: ZoneInfo) -> bool:
    """True when the naive wall-clock time ``wall`` does not exist in ``zone`` (DST gap)."""
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall


def is_ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    """True when ``wall`` happens twice in ``zone`` (DST overlap)."""
    return wall.replace(tzinfo=zone, fold=0).utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset()


def localize(wall: datetime, zone: ZoneInfo, side: Side) -> datetime:
    """A naive wall-clock time in ``zone`` → an aware instant, never shortening a window.

    Skipped times (spring forward) resolve to the end of the gap. Repeated times (fall back)
    resolve to the first occurrence for a ``start`` and to the second for an ``end``.
    """
    if wall.tzinfo is not None:
        raise ValueError("localize() takes a naive wall-clock time")
    if is_imaginary(wall, zone):
        probe = wall.replace(second=0, microsecond=0)
        for _ in range(_MAX_GAP_MINUTES):
            probe += timedelta(minutes=1)
            if not is_imaginary(probe, zone):
                return probe.replace(tzinfo=zone, fold=0).astimezone(UTC)
        raise ValueError(f"{wall} is in a time-zone gap longer than {_MAX_GAP_MINUTES} minutes")
    fold = 1 if side == "end" and is_ambiguous(wall, zone) else 0
    # Always UTC: Python compares two datetimes of the SAME tzinfo by wall time, ignoring fold.
    return wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(value: Any, zone: ZoneInfo, side: Side, field_name: str) -> datetime:
    """An ISO 8601 date or date-time from the config → an aware instant (see module doc)."""
    if isinstance(value, datetime):  # YAML may have parsed it already
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            if _DATE_ONLY.match(text):
                d = date.fromisoformat(text)
                parsed = datetime(d.year, d.month, d.day)
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise ConfigError(
                f"{value!r} is not an ISO 8601 date or date-time",
                "write e.g. 2026-12-24, 2026-12-24T18:00 (in `timezone`) or 2026-12-24T17:00:00Z",
                field=field_name,
            ) from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return localize(parsed, zone, side)


# -- config -> windows -------------------------------------------------------------------------


def _zone(name: Any, field_name: str) -> str:
    tz = str(name or "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {tz!r}",
            "use an IANA name such as UTC, Europe/Berlin or America/New_York",
            field=field_name,
        ) from None
    return tz


def check_cron(expr: str, field_name: str) -> str:
    from cronsim import CronSim, CronSimError

    text = " ".join(str(expr).split())
    if len(text.split(" ")) != 5:
        raise ConfigError(
            f"{expr!r} is not a 5-field cron expression",
            "write minute hour day-of-month month day-of-week, e.g. '0 18 * * FRI'",
            field=field_name,
        )
    try:
        CronSim(text, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ConfigError(
            f"{expr!r} is not a valid cron expression ({exc})",
            "write minute hour day-of-month month day-of-week, e.g. '0 18 * * FRI'",
            field=field_name,
        ) from None
    return text


def parse_windows(items: Sequence[Mapping[str, Any]] | None) -> tuple[FreezeWindow, ...]:
    """``promote.freeze`` (already schema-checked) → windows; ConfigError names the bad field."""
    out: list[FreezeWindow] = []
    for index, item in enumerate(items or ()):
        where = f"promote.freeze[{index}]"
        tz = _zone(item.get("timezone"), f"{where}.timezone")
        zone = ZoneInfo(tz)
        name = str(item.get("name") or f"freeze #{index + 1}")
        has_range = "start" in item or "end" in item
        has_cron = "cron" in item or "duration_minutes" in item
        if has_range == has_cron:
            raise ConfigError(
                "a freeze window needs either start/end or cron/duration_minutes",
                "give start and end (dates or date-times), or cron and duration_minutes",
                field=where,
            )
        if has_range:
            if "start" not in item or "end" not in item:
                missing = "end" if "start" in item else "start"
                raise ConfigError(
                    "is required with a date range", "give both start and end", field=f"{where}.{missing}"
                )
            start = parse_moment(item["start"], zone, "start", f"{where}.start")
            end = parse_moment(item["end"], zone, "end", f"{where}.end")
            if end <= start:
                raise ConfigError(
                    f"ends ({_fmt(end, zone)}) before or when it starts ({_fmt(start, zone)})",
                    "the end is exclusive and must come after the start",
                    field=f"{where}.end",
                )
            out.append(FreezeWindow(name, tz, index, start=start, end=end))
        else:
            if "cron" not in item or "duration_minutes" not in item:
                missing = "duration_minutes" if "cron" in item else "cron"
                raise ConfigError(
                    "is required with a recurring freeze",
                    "give both cron and duration_minutes",
                    field=f"{where}.{missing}",
                )
            minutes = item["duration_minutes"]
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
                raise ConfigError(
                    f"{minutes!r} is not a positive whole number of minutes",
                    "e.g. duration_minutes: 3600 (60 hours)",
                    field=f"{where}.duration_minutes",
                )
            cron = check_cron(str(item["cron"]), f"{where}.cron")
            out.append(FreezeWindow(name, tz, index, cron=cron, duration=timedelta(minutes=minutes)))
    return tuple(out)


# -- evaluation --------------------------------------------------------------------------------


def _cron_fires(window: FreezeWindow, after: datetime) -> Iterator[datetime]:
    """Fire times (aware, UTC) strictly after ``after``."""
    from cronsim import CronSim

    assert window.cron is not None
    for fire in CronSim(window.cron, after.astimezone(window.zone).replace(microsecond=0)):
        yield fire.astimezone(UTC)


def _cron_end(window: FreezeWindow, fire: datetime) -> datetime:
    assert window.duration is not None
    wall = fire.astimezone(window.zone).replace(tzinfo=None) + window.duration
    return localize(wall, window.zone, "end")


def _cron_active(window: FreezeWindow, now: datetime) -> ActiveFreeze | None:
    """The window (of the fires up to now) that covers now and ends last, chained forward.

    Scans forward from ``now - duration - 1 day``: ends are NOT monotonic in the fire time on a
    fall-back day (a wall-clock duration then spans an extra hour), and cronsim, started inside
    the repeated hour, may return the first occurrence — a time already past. A forward scan over
    the whole span sees every fire exactly once.
    """
    assert window.duration is not None
    lower = now - window.duration - timedelta(days=1, seconds=1)
    best: ActiveFreeze | None = None
    for fire in _cron_fires(window, lower):
        if fire > now:
            break
        end = _cron_end(window, fire)
        if fire <= now < end and (best is None or end > best.end):
            best = ActiveFreeze(window, fire, end)
    if best is None:
        return None
    # Follow windows that start before the current one ends (back-to-back freezes).
    end = best.end
    fires = _cron_fires(window, now)
    for _ in range(_MAX_CHAIN):
        following = next(fires, None)
        if following is None or following >= end:
            break
        end = max(end, _cron_end(window, following))
    return ActiveFreeze(window, best.start, end)


def _next_start(window: FreezeWindow, now: datetime, horizon: timedelta) -> ActiveFreeze | None:
    if window.cron:
        # skip what cronsim may return from inside a repeated (fall-back) hour: times already past
        fire = next((f for f in islice(_cron_fires(window, now), _MAX_CHAIN) if f > now), None)
        if fire is None or fire - now > horizon:
            return None
        return ActiveFreeze(window, fire, _cron_end(window, fire))
    assert window.start is not None
    assert window.end is not None
    if now < window.start and window.start - now <= horizon:
        return ActiveFreeze(window, window.start, window.end)
    return None


def evaluate(
    windows: Sequence[FreezeWindow], now: datetime, *, horizon: timedelta = timedelta(days=366)
) -> FreezeDecision:
    """Which windows contain ``now`` (aware), and the next one to start."""
    if now.tzinfo is None:
        raise ValueError("evaluate() needs an aware datetime")
    now = now.astimezone(UTC)
    active: list[ActiveFreeze] = []
    upcoming: ActiveFreeze | None = None
    for window in windows:
        if window.cron:
            hit = _cron_active(window, now)
        else:
            assert window.start is not None
            assert window.end is not None
            hit = ActiveFreeze(window, window.start, window.end) if window.start <= now < window.end else None
        if hit is not None:
            active.append(hit)
        nxt = _next_start(window, now, horizon)
        if nxt is not None and (upcoming is None or nxt.start < upcoming.start):
            upcoming = nxt
    return FreezeDecision(now, tuple(active), upcoming)


def decide(decision: FreezeDecision, *, override: bool, reason: str | None, by: str) -> FreezeOutcome:
    """The freeze gate. An override needs a reason; it is recorded only when a freeze is active.

    ConfigError (exit 2) for an override without a (real) reason, whether or not a freeze is
    active, so a pipeline that always passes ``override-freeze`` fails loudly.
    """
    text = (reason or "").strip()
    if override and len(text) < MIN_REASON_LENGTH:
        raise ConfigError(
            "a freeze override needs a reason" + (f" (got {text!r})" if text else ""),
            f"pass --reason 'why this cannot wait' (at least {MIN_REASON_LENGTH} characters; "
            "action input `override-reason`); it is recorded in the change record and history",
            field="--reason",
        )
    if not decision.blocked:
        notes = (
            ("override requested but no freeze window is active: nothing to override",) if override else ()
        )
        return FreezeOutcome("clear", decision, notes=notes)
    if not override:
        return FreezeOutcome("blocked", decision)
    recorded = FreezeOverride(
        reason=text, by=by, at=decision.now, windows=tuple(a.window.name for a in decision.active)
    )
    return FreezeOutcome("overridden", decision, recorded)


def render(outcome: FreezeOutcome) -> str:
    """Markdown for the job summary."""
    d = outcome.decision
    if outcome.status == "clear":
        text = "**Freeze windows:** none active."
        if d.upcoming:
            text += (
                f" Next: *{d.upcoming.window.name}* from {_fmt(d.upcoming.start, d.upcoming.window.zone)}."
            )
        return text + "\n"
    lines = []
    for a in d.active:
        z = a.window.zone
        lines.append(f"- *{a.window.name}*: {_fmt(a.start, z)} → {_fmt(a.end, z)} ({a.window.describe()})")
    head = (
        "⛔ **Freeze window active** — promotion blocked"
        if outcome.status == "blocked"
        else ("⚠️ **Freeze window overridden**")
    )
    text = head + "\n\n" + "\n".join(lines) + "\n"
    if outcome.override:
        text += f"\nOverride by **{outcome.override.by}**: {outcome.override.reason}\n"
    return text
