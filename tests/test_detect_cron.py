"""The prewarm cron matcher: field syntax, day rules, and windows open at `now`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from opsagent.detect.cron import CronError, latest_match, parse_cron, window_open

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr, moment, expected", [
    ("* * * * *", "2026-01-05T03:17", True),
    ("0 8 * * *", "2026-01-05T08:00", True),
    ("0 8 * * *", "2026-01-05T08:01", False),
    ("*/15 * * * *", "2026-01-05T10:45", True),
    ("*/15 * * * *", "2026-01-05T10:44", False),
    ("0 8-10 * * *", "2026-01-05T10:00", True),
    ("0 8-10 * * *", "2026-01-05T11:00", False),
    ("0 8,20 * * *", "2026-01-05T20:00", True),
    ("10-40/10 * * * *", "2026-01-05T10:30", True),
    ("10-40/10 * * * *", "2026-01-05T10:50", False),
    ("0 8 * * 1-5", "2026-01-05T08:00", True),   # Monday
    ("0 8 * * 1-5", "2026-01-04T08:00", False),  # Sunday
    ("0 8 * * 0", "2026-01-04T08:00", True),
    ("0 8 * * 7", "2026-01-04T08:00", True),     # 7 is Sunday too
    ("0 0 1 * *", "2026-02-01T00:00", True),
    ("0 0 1 * *", "2026-02-02T00:00", False),
    ("0 0 * 2 *", "2026-01-01T00:00", False),
    ("0 0 15 * 1", "2026-01-15T00:00", True),    # dom or dow when both restricted: the 15th
    ("0 0 15 * 1", "2026-01-12T00:00", True),    # ... or a Monday
    ("0 0 15 * 1", "2026-01-13T00:00", False),
])
def test_matches(expr, moment, expected):
    assert parse_cron(expr).matches(at(moment)) is expected


@pytest.mark.parametrize("expr, field", [
    ("0 8 * *", "5 fields"),
    ("60 * * * *", "minute"),
    ("* 24 * * *", "hour"),
    ("* * 0 * *", "day-of-month"),
    ("* * * 13 *", "month"),
    ("* * * * 8", "day-of-week"),
    ("*/0 * * * *", "step"),
    ("a * * * *", "minute: 'a' is not valid"),
    ("1,,2 * * * *", "minute: '1,,2' is not valid"),
    ("0 8 * * mon-fry", "day-of-week"),
    ("0 8 * foo *", "month"),
    ("@fortnightly", "unknown macro"),
])
def test_bad_expressions_name_the_field(expr, field):
    with pytest.raises(CronError, match=field):
        parse_cron(expr)


@pytest.mark.parametrize("expr, duration, now, start", [
    ("0 8 * * 1-5", "10h", "2026-01-05T08:00", "2026-01-05T08:00"),   # opens exactly at the match
    ("0 8 * * 1-5", "10h", "2026-01-05T17:59", "2026-01-05T08:00"),
    ("0 8 * * 1-5", "10h", "2026-01-05T18:00", None),                 # m + duration is excluded
    ("0 8 * * 1-5", "10h", "2026-01-05T07:59", None),
    ("0 8 * * 1-5", "10h", "2026-01-04T12:00", None),                 # Sunday
    ("0 22 * * *", "4h", "2026-01-06T01:30", "2026-01-05T22:00"),     # crosses midnight
    ("0 22 * * 5", "3d", "2026-01-11T09:00", "2026-01-09T22:00"),     # Friday night to Monday
    ("30 * * * *", "10m", "2026-01-05T10:35", "2026-01-05T10:30"),
    ("30 * * * *", "10m", "2026-01-05T10:41", None),
])
def test_window_open(expr, duration, now, start):
    from opsagent.clock import parse_duration

    opened = window_open(expr, parse_duration(duration), at(now))
    if start is None:
        assert opened is None
    else:
        assert opened == (at(start), at(start) + parse_duration(duration))


@pytest.mark.parametrize("expr, moment, expected", [
    ("0 8 * * mon-fri", "2026-01-05T08:00", True),    # day names
    ("0 8 * * mon-fri", "2026-01-04T08:00", False),
    ("0 8 * * fri-mon", "2026-01-04T08:00", True),    # a range that runs backwards wraps around: Friday to Monday
    ("0 8 * * fri-mon", "2026-01-06T08:00", False),
    ("@daily", "2026-01-05T00:00", True),
    ("@daily", "2026-01-05T08:00", False),
    ("@hourly", "2026-01-05T08:00", True),
    ("0 9 1 jan *", "2026-01-01T09:00", True),         # month names
])
def test_names_and_macros(expr, moment, expected):
    assert parse_cron(expr).matches(at(moment)) is expected


def test_a_window_is_read_in_its_time_zone_and_keeps_local_time_across_dst():
    # 08:00 in Berlin is 07:00 UTC in winter and 06:00 UTC in summer (DST began 2026-03-29).
    winter = window_open("0 8 * * mon-fri", timedelta(hours=10), at("2026-03-27T07:30"), "Europe/Berlin")
    summer = window_open("0 8 * * mon-fri", timedelta(hours=10), at("2026-03-30T06:30"), "Europe/Berlin")
    assert winter is not None and winter[0] == at("2026-03-27T07:00")
    assert summer is not None and summer[0] == at("2026-03-30T06:00")
    assert window_open("0 8 * * mon-fri", timedelta(hours=10), at("2026-03-30T05:59"), "Europe/Berlin") is None
    # the same cron in UTC opens at 08:00 UTC
    assert window_open("0 8 * * mon-fri", timedelta(hours=10), at("2026-03-30T07:59")) is None


def test_an_unknown_time_zone_is_an_error():
    with pytest.raises(CronError, match="Europe/Berlim"):
        parse_cron("0 8 * * *", "Europe/Berlim")


def test_latest_match_is_bounded_and_ignores_seconds():
    now = at("2026-01-05T08:00") + timedelta(seconds=42)
    assert latest_match("0 8 * * *", now, within=timedelta(minutes=1)) == at("2026-01-05T08:00")
    assert latest_match("0 8 1 1 *", at("2026-06-01T00:00"), within=timedelta(days=2)) is None
    # a yearly match far back is found when the window allows it
    assert latest_match("0 8 1 1 *", at("2026-06-01T00:00"), within=timedelta(days=200)) == at("2026-01-01T08:00")
