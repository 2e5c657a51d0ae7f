"""Freeze windows: pure evaluation, exhaustively, including DST edges in several time zones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devops_agent.core.errors import ConfigError
from devops_agent.promote.freeze import (
    MIN_REASON_LENGTH,
    FreezeWindow,
    decide,
    evaluate,
    is_ambiguous,
    is_imaginary,
    localize,
    parse_windows,
    render,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def one(item: dict[str, Any]) -> FreezeWindow:
    (window,) = parse_windows([item])
    return window


def blocked(item: dict[str, Any], now: str) -> bool:
    return evaluate([one(item)], z(now)).blocked


# -- date ranges -------------------------------------------------------------------------------


def test_range_is_half_open_start_inclusive_end_exclusive() -> None:
    item = {"name": "release", "start": "2026-06-01T10:00Z", "end": "2026-06-01T12:00Z"}
    assert not blocked(item, "2026-06-01T09:59:59Z")
    assert blocked(item, "2026-06-01T10:00:00Z")
    assert blocked(item, "2026-06-01T11:59:59Z")
    assert not blocked(item, "2026-06-01T12:00:00Z")


def test_dates_mean_local_midnight_in_the_window_time_zone() -> None:
    item = {"start": "2026-12-24", "end": "2027-01-04", "timezone": "Europe/Berlin"}
    # 24 Dec 00:00 CET = 23 Dec 23:00Z; 4 Jan 00:00 CET = 3 Jan 23:00Z (end exclusive)
    assert not blocked(item, "2026-12-23T22:59Z")
    assert blocked(item, "2026-12-23T23:00Z")
    assert blocked(item, "2027-01-03T22:59:59Z")
    assert not blocked(item, "2027-01-03T23:00Z")


def test_explicit_offsets_win_over_the_window_time_zone() -> None:
    item = {
        "start": "2026-06-01T10:00+05:00",
        "end": "2026-06-01T11:00+05:00",
        "timezone": "America/New_York",
    }
    assert blocked(item, "2026-06-01T05:30Z")
    assert not blocked(item, "2026-06-01T06:00Z")


def test_yaml_native_dates_and_datetimes_are_accepted() -> None:
    import yaml

    data = yaml.safe_load("start: 2026-07-01\nend: 2026-07-02 12:00:00\ntimezone: America/New_York\n")
    window = one(data)
    assert window.start == z("2026-07-01T04:00Z")
    assert window.end == z("2026-07-02T16:00Z")


def test_start_in_spring_forward_gap_starts_at_end_of_gap() -> None:
    # Berlin 2026-03-29: 02:00 CET -> 03:00 CEST (01:00Z); 02:30 does not exist
    item = {"start": "2026-03-29T02:30", "end": "2026-03-29T05:00", "timezone": "Europe/Berlin"}
    assert one(item).start == z("2026-03-29T01:00Z")
    assert not blocked(item, "2026-03-29T00:59:59Z")
    assert blocked(item, "2026-03-29T01:00Z")


def test_end_in_spring_forward_gap_ends_at_end_of_gap() -> None:
    item = {"start": "2026-03-29T00:00", "end": "2026-03-29T02:30", "timezone": "Europe/Berlin"}
    assert one(item).end == z("2026-03-29T01:00Z")
    assert blocked(item, "2026-03-29T00:59Z")
    assert not blocked(item, "2026-03-29T01:00Z")


def test_ambiguous_times_never_shorten_a_window() -> None:
    # Berlin 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens at 00:30Z and at 01:30Z
    start = one({"start": "2026-10-25T02:30", "end": "2026-10-25T06:00", "timezone": "Europe/Berlin"}).start
    end = one({"start": "2026-10-25T00:00", "end": "2026-10-25T02:30", "timezone": "Europe/Berlin"}).end
    assert start == z("2026-10-25T00:30Z")  # first occurrence
    assert end == z("2026-10-25T01:30Z")  # second occurrence


def test_new_york_transitions() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z)
    assert localize(datetime(2026, 3, 8, 2, 15), NEW_YORK, "start") == z("2026-03-08T07:00Z")
    assert localize(datetime(2026, 11, 1, 1, 30), NEW_YORK, "start") == z("2026-11-01T05:30Z")
    assert localize(datetime(2026, 11, 1, 1, 30), NEW_YORK, "end") == z("2026-11-01T06:30Z")
    assert is_imaginary(datetime(2026, 3, 8, 2, 15), NEW_YORK)
    assert is_ambiguous(datetime(2026, 11, 1, 1, 30), NEW_YORK)
    assert not is_imaginary(datetime(2026, 11, 1, 1, 30), NEW_YORK)


def test_half_hour_dst_lord_howe() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # shifts by 30 minutes
    # 2026-10-04 02:00 +10:30 -> 02:30 +11:00
    assert is_imaginary(datetime(2026, 10, 4, 2, 10), lord_howe)
    assert localize(datetime(2026, 10, 4, 2, 10), lord_howe, "start") == z("2026-10-03T15:30Z")


def test_a_skipped_whole_day_samoa_2011() -> None:
    apia = ZoneInfo("Pacific/Apia")  # 2011-12-30 never happened there
    assert is_imaginary(datetime(2011, 12, 30, 12, 0), apia)
    assert localize(datetime(2011, 12, 30, 12, 0), apia, "start") == datetime(2011, 12, 31, 0, 0, tzinfo=apia)


# -- recurring windows -------------------------------------------------------------------------

WEEKEND = {"name": "weekend", "cron": "0 18 * * FRI", "duration_minutes": 3600, "timezone": "Europe/Berlin"}


def test_weekend_freeze_on_an_ordinary_weekend() -> None:
    # Fri 2026-06-05 18:00 CEST = 16:00Z, ends Mon 06:00 CEST = 04:00Z
    assert not blocked(WEEKEND, "2026-06-05T15:59Z")
    assert blocked(WEEKEND, "2026-06-05T16:00Z")
    assert blocked(WEEKEND, "2026-06-08T03:59Z")
    assert not blocked(WEEKEND, "2026-06-08T04:00Z")


def test_duration_is_wall_clock_over_spring_forward() -> None:
    # Fri 2026-03-27 18:00 CET = 17:00Z -> Mon 2026-03-30 06:00 CEST = 04:00Z (59 h elapsed)
    decision = evaluate([one(WEEKEND)], z("2026-03-28T12:00Z"))
    (active,) = decision.active
    assert (active.start, active.end) == (z("2026-03-27T17:00Z"), z("2026-03-30T04:00Z"))
    assert active.end - active.start == timedelta(hours=59)
    assert not blocked(WEEKEND, "2026-03-30T04:00Z")


def test_duration_is_wall_clock_over_fall_back() -> None:
    # Fri 2026-10-23 18:00 CEST = 16:00Z -> Mon 2026-10-26 06:00 CET = 05:00Z (61 h elapsed)
    (active,) = evaluate([one(WEEKEND)], z("2026-10-25T01:30Z")).active
    assert (active.start, active.end) == (z("2026-10-23T16:00Z"), z("2026-10-26T05:00Z"))
    assert blocked(WEEKEND, "2026-10-26T04:59Z")
    assert not blocked(WEEKEND, "2026-10-26T05:00Z")


def test_cron_start_in_gap_runs_at_end_of_gap_like_debian_cron() -> None:
    item = {"cron": "30 2 * * *", "duration_minutes": 60, "timezone": "Europe/Berlin"}
    (active,) = evaluate([one(item)], z("2026-03-29T01:30Z")).active
    assert active.start == z("2026-03-29T01:00Z")  # 03:00 CEST
    assert active.end == z("2026-03-29T02:00Z")  # 03:00 + 60 min wall clock
    assert not blocked(item, "2026-03-29T00:59Z")


def test_cron_start_in_overlap_fires_once_at_first_occurrence() -> None:
    item = {"cron": "30 2 * * *", "duration_minutes": 30, "timezone": "Europe/Berlin"}
    (active,) = evaluate([one(item)], z("2026-10-25T01:45Z")).active  # 02:45 CET, second pass
    assert active.start == z("2026-10-25T00:30Z")  # 02:30 CEST
    assert active.end == z("2026-10-25T02:00Z")  # wall 03:00 exists once: 03:00 CET
    assert not blocked(item, "2026-10-25T00:29Z")
    assert not blocked(item, "2026-10-25T02:00Z")


def test_overlapping_recurring_windows_chain_until_the_last_one_ends() -> None:
    item = {"cron": "0 8,12 * * *", "duration_minutes": 300, "timezone": "UTC"}
    decision = evaluate([one(item)], z("2026-06-01T09:00Z"))
    assert decision.until == z("2026-06-01T17:00Z")
    assert blocked(item, "2026-06-01T16:59Z")
    assert not blocked(item, "2026-06-01T17:00Z")


def test_a_permanent_freeze_stays_bounded() -> None:
    item = {"cron": "0 * * * *", "duration_minutes": 120, "timezone": "UTC"}
    decision = evaluate([one(item)], z("2026-06-01T09:30Z"))
    assert decision.blocked
    assert decision.until is not None
    assert decision.until > z("2026-06-01T11:00Z")


def test_several_windows_and_upcoming() -> None:
    windows = parse_windows(
        [
            {"name": "year end", "start": "2026-12-20", "end": "2027-01-05", "timezone": "Europe/Berlin"},
            WEEKEND,
        ]
    )
    decision = evaluate(windows, z("2026-12-18T17:00Z"))  # Friday 18:00 CET
    assert [a.window.name for a in decision.active] == ["weekend"]
    assert decision.upcoming is not None
    assert decision.upcoming.window.name == "year end"
    both = evaluate(windows, z("2026-12-26T10:00Z"))  # Saturday inside the year-end freeze
    assert sorted(a.window.name for a in both.active) == ["weekend", "year end"]
    assert both.until == z("2027-01-04T23:00Z")
    clear = evaluate(windows, z("2026-12-16T10:00Z"))
    assert not clear.blocked
    assert clear.upcoming is not None
    assert clear.upcoming.window.name == "weekend"


def test_every_minute_across_dst_days_matches_the_interval_definition() -> None:
    """Sweep each minute of the transition days: blocked <=> start <= now < end of some fire."""
    for tz, day in (
        ("Europe/Berlin", "2026-03-29"),
        ("Europe/Berlin", "2026-10-25"),
        ("America/New_York", "2026-03-08"),
        ("America/New_York", "2026-11-01"),
        ("Australia/Lord_Howe", "2026-10-04"),
    ):
        zone = ZoneInfo(tz)
        window = one({"cron": "15 1,2 * * *", "duration_minutes": 50, "timezone": tz})
        base = datetime.fromisoformat(day)
        fires = [
            localize(datetime(d.year, d.month, d.day, h, 15), zone, "start")
            for d in (base - timedelta(days=1), base, base + timedelta(days=1))
            for h in (1, 2)
        ]
        # Debian cron runs a time repeated in an overlap once: drop the duplicate instants
        intervals = [
            (f, localize(f.astimezone(zone).replace(tzinfo=None) + timedelta(minutes=50), zone, "end"))
            for f in sorted(set(fires))
        ]
        start_utc = localize(base, zone, "start").astimezone(UTC)
        for minute in range(0, 26 * 60):
            now = start_utc + timedelta(minutes=minute)
            expected = any(s <= now < e for s, e in intervals)
            decision = evaluate([window], now)
            assert decision.blocked is expected, (tz, now.isoformat())
            # the next window always lies ahead (cronsim can hand back a past time in a repeated hour)
            assert decision.upcoming is not None
            assert decision.upcoming.start > now, (tz, now.isoformat())


_FIELDS = st.lists(st.integers(0, 59), min_size=1, max_size=3, unique=True)


@settings(max_examples=60, deadline=None)
@given(
    minutes=_FIELDS,
    hours=st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True),
    duration=st.integers(1, 26 * 60),
    offset=st.integers(0, 7 * 24 * 60),
)
def test_utc_cron_windows_match_a_brute_force_oracle(
    minutes: list[int], hours: list[int], duration: int, offset: int
) -> None:
    cron = f"{','.join(map(str, minutes))} {','.join(map(str, hours))} * * *"
    window = one({"cron": cron, "duration_minutes": duration})
    now = z("2026-06-01T00:00Z") + timedelta(minutes=offset)
    expected = False
    for back in range(duration):  # a fire f with now - duration < f <= now
        f = now - timedelta(minutes=back)
        if f.minute in minutes and f.hour in hours:
            expected = True
            break
    assert evaluate([window], now).blocked is expected


@settings(max_examples=80, deadline=None)
@given(
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    length=st.integers(1, 60 * 24 * 40),
    probe=st.integers(-3000, 60 * 24 * 41),
)
def test_ranges_block_exactly_between_their_instants(
    tz: str, start: datetime, length: int, probe: int
) -> None:
    end = start + timedelta(minutes=length)
    window = one({"start": start.isoformat(), "end": end.isoformat(), "timezone": tz})
    assert window.start is not None
    assert window.end is not None
    assert window.start < window.end
    now = window.start + timedelta(minutes=probe)
    assert evaluate([window], now).blocked is (window.start <= now < window.end)


# -- config errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"start": "2026-01-02", "end": "2026-01-01"}, "promote.freeze[0].end", "before"),
        ({"start": "2026-01-01", "end": "2026-01-01"}, "promote.freeze[0].end", "before"),
        ({"start": "soon", "end": "2026-01-01"}, "promote.freeze[0].start", "ISO 8601"),
        (
            {"start": "2026-01-01", "end": "2026-02-01", "timezone": "Mars/Base"},
            "promote.freeze[0].timezone",
            "IANA",
        ),
        ({"cron": "0 18 * *", "duration_minutes": 5}, "promote.freeze[0].cron", "5-field"),
        ({"cron": "0 0 18 * * FRI", "duration_minutes": 5}, "promote.freeze[0].cron", "5-field"),
        ({"cron": "0 25 * * *", "duration_minutes": 5}, "promote.freeze[0].cron", "valid cron"),
        ({"cron": "0 18 * * FRI", "duration_minutes": 0}, "promote.freeze[0].duration_minutes", "positive"),
        ({"cron": "0 18 * * FRI"}, "promote.freeze[0].duration_minutes", "required"),
        ({"start": "2026-01-01"}, "promote.freeze[0].end", "required"),
        ({"name": "nothing"}, "promote.freeze[0]", "either"),
        ({"start": "2026-01-01", "end": "2026-01-02", "cron": "0 1 * * *"}, "promote.freeze[0]", "either"),
    ],
)
def test_bad_windows_name_the_field(item: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_windows([{"name": "x", **item}] if "name" not in item else [item])
    assert info.value.field == field
    assert words in info.value.render()
    assert info.value.exit_code == 2


# -- the gate ----------------------------------------------------------------------------------


def _decision(active: bool) -> Any:
    item = {"name": "release freeze", "start": "2026-06-01T00:00Z", "end": "2026-06-02T00:00Z"}
    return evaluate([one(item)], z("2026-06-01T12:00Z" if active else "2026-06-03T12:00Z"))


def test_gate_blocks_without_override() -> None:
    outcome = decide(_decision(True), override=False, reason=None, by="alice")
    assert outcome.status == "blocked"
    assert not outcome.allowed
    assert outcome.override is None
    assert "Freeze window active" in render(outcome)
    assert "release freeze" in render(outcome)


def test_override_with_reason_is_recorded() -> None:
    outcome = decide(_decision(True), override=True, reason="  CVE-2026-1234 hotfix  ", by="alice")
    assert outcome.status == "overridden"
    assert outcome.allowed
    assert outcome.override is not None
    record = outcome.to_json()["override"]
    assert record == {
        "reason": "CVE-2026-1234 hotfix",
        "by": "alice",
        "at": "2026-06-01T12:00:00+00:00",
        "windows": ["release freeze"],
    }
    assert "Override by **alice**: CVE-2026-1234 hotfix" in render(outcome)


@pytest.mark.parametrize("reason", [None, "", "   ", "x" * (MIN_REASON_LENGTH - 1)])
def test_override_without_a_real_reason_is_bad_input(reason: str | None) -> None:
    for active in (True, False):
        with pytest.raises(ConfigError) as info:
            decide(_decision(active), override=True, reason=reason, by="alice")
        assert info.value.field == "--reason"


def test_override_outside_a_freeze_is_not_recorded() -> None:
    outcome = decide(_decision(False), override=True, reason="hotfix for the outage", by="alice")
    assert outcome.status == "clear"
    assert outcome.override is None
    assert "no freeze window is active" in outcome.notes[0]


def test_evaluate_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate([], datetime(2026, 1, 1))
