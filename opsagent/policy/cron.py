"""Cron schedules for prewarm windows, in a time zone the policy names.

The matching is croniter's: five fields (minute hour day-of-month month
day-of-week) with numbers, ranges, lists, steps, month and day names
(`mon-fri`, `jan`), and the macros `@hourly`, `@daily`, `@weekly`, `@monthly`
and `@yearly`. As in classic cron, when both day-of-month and day-of-week are
restricted a day matches if either does. A schedule is read in its window's
time zone (an IANA name such as `Europe/Berlin`, default UTC), so "08:00 on
weekdays" stays 08:00 local time across daylight-saving changes.

This module adds two things croniter does not: an error that names the field
that is wrong (so `policy lint` can say `day-of-week: ...` with the file and
line), and `window_open`, the question the detectors ask every cycle. It never
reads a clock or does I/O: callers pass `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
MACROS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
UTC_NAME = "UTC"


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: its expression and the time zone it is read in."""

    expr: str
    zone: tzinfo

    def matches(self, moment: datetime) -> bool:
        """Does the minute of `moment` (any time zone) match, read in this schedule's zone?"""
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0)
        return bool(croniter.match(self.expr, local))

    def latest(self, now: datetime) -> datetime:
        """The latest matching minute at or before `now`, as an aware datetime in `now`'s zone."""
        local = now.astimezone(self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        found = croniter(self.expr, local).get_prev(datetime)
        return found.astimezone(now.tzinfo or timezone.utc)


@lru_cache(maxsize=256)
def zone(name: str) -> tzinfo:
    """The time zone called `name` (IANA, e.g. Europe/Berlin; UTC by default); CronError when unknown."""
    if name.upper() == UTC_NAME:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"time zone {name!r} is not a known IANA name (e.g. Europe/Berlin, America/New_York, UTC)") from None


@lru_cache(maxsize=512)
def parse_cron(expr: str, tz: str = UTC_NAME) -> Cron:
    """Parse `expr` read in time zone `tz`; CronError naming the bad field otherwise."""
    text = " ".join(str(expr).split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"cron {expr!r}: unknown macro; use one of {', '.join(MACROS)}")
        text = text.lower()
    else:
        parts = text.split(" ")
        if len(parts) != 5:
            raise CronError(f"cron {expr!r} must have 5 fields: minute hour day-of-month month day-of-week "
                            "(or a macro such as @daily)")
        for i, part in enumerate(parts):
            alone = " ".join(part if j == i else "*" for j in range(5))
            if not _valid(alone):
                raise CronError(f"{FIELDS[i]}: {part!r} is not valid (numbers, ranges a-b, lists a,b, steps */n"
                                f"{', day names mon-sun' if i == 4 else ', month names jan-dec' if i == 3 else ''})")
        if not _valid(text):
            raise CronError(f"cron {expr!r} can never match")
    return Cron(expr=text, zone=zone(tz))


def _valid(text: str) -> bool:
    try:
        croniter(text, datetime(2026, 1, 1, tzinfo=timezone.utc))
    except (CroniterError, ValueError, KeyError, TypeError):
        return False
    return True


def _cron(expr: str | Cron, tz: str) -> Cron:
    return expr if isinstance(expr, Cron) else parse_cron(expr, tz)


def latest_match(expr: str | Cron, now: datetime, *, within: timedelta, tz: str = UTC_NAME) -> datetime | None:
    """The latest minute m <= now matching `expr`, if it lies within `within` of now."""
    found = _cron(expr, tz).latest(now)
    return found if found >= now.replace(second=0, microsecond=0) - within else None


def window_open(expr: str | Cron, duration: timedelta, now: datetime, tz: str = UTC_NAME) -> tuple[datetime, datetime] | None:
    """(start, end) of the window open at `now`, if any: some match m with m <= now < m + duration."""
    if duration <= timedelta(0):
        return None
    start = latest_match(expr, now, within=duration, tz=tz)
    if start is None or not (start <= now < start + duration):
        return None
    return start, start + duration
