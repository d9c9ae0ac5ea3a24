"""A tiny, pure 5-field cron matcher for prewarm windows (UTC).

Fields: minute hour day-of-month month day-of-week, each `*`, a number, a range
`a-b`, a list `a,b` or a step (`*/n`, `a-b/n`). Day-of-week 0 and 7 are Sunday.
As in classic cron, when both day-of-month and day-of-week are restricted a
day matches if either does.

It must not read a clock or do I/O: callers pass `now`. Parsed expressions are
cached, so calling `window_open` every cycle costs a few set lookups. The
policy loader parses every prewarm cron when the policy loads, so a value such
as `0 8 * * 1-9` is an error in `policy lint`, never a window that silently
never opens; the detectors use the same functions (through opsagent.detect.cron).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message names the field."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    days_any: bool
    weekdays_any: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_any and self.weekdays_any:
            return True
        if self.days_any:
            return dow
        if self.weekdays_any:
            return dom
        return dom or dow

    def matches(self, moment: datetime) -> bool:
        return moment.minute in self.minutes and moment.hour in self.hours and self.day_matches(moment.date())


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{name}: empty list item in {text!r}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, name, low, high), _number(b, name, low, high)
            if start > end:
                raise CronError(f"{name}: range {base!r} runs backwards")
        else:
            start = _number(base, name, low, high)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number ({low}-{high})")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


@lru_cache(maxsize=512)
def parse_cron(expr: str) -> Cron:
    """Parse a 5-field cron expression; raises CronError naming the bad field."""
    parts = expr.split()
    if len(parts) != 5:
        raise CronError(f"cron {expr!r} must have 5 fields: minute hour day-of-month month day-of-week")
    sets = [_field(text, name, low, high) for text, (name, low, high) in zip(parts, _FIELDS)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        minutes=sets[0], hours=sets[1], days=sets[2], months=sets[3], weekdays=weekdays,
        days_any=parts[2] == "*", weekdays_any=parts[4] == "*",
    )


def latest_match(expr: str | Cron, now: datetime, *, within: timedelta) -> datetime | None:
    """The latest minute m with m <= now matching `expr`, looking back at most `within`.

    Walks whole days backwards (at most within/1 day + 1 of them) and, on a
    matching day, picks the latest hour and minute directly from the sets.
    """
    cron = parse_cron(expr) if isinstance(expr, str) else expr
    now = now.replace(second=0, microsecond=0)
    earliest = now - within
    day = now.date()
    limit: tuple[int, int] | None = (now.hour, now.minute)
    while True:
        day_start = datetime.combine(day, time(0, 0), tzinfo=now.tzinfo)
        if day_start + timedelta(days=1) <= earliest:
            return None
        if cron.day_matches(day):
            found = _latest_in_day(cron, limit)
            if found is not None:
                moment = day_start.replace(hour=found[0], minute=found[1])
                return moment if moment >= earliest else None
        day -= timedelta(days=1)
        limit = None


def _latest_in_day(cron: Cron, limit: tuple[int, int] | None) -> tuple[int, int] | None:
    for hour in sorted(cron.hours, reverse=True):
        if limit is not None and hour > limit[0]:
            continue
        for minute in sorted(cron.minutes, reverse=True):
            if limit is not None and hour == limit[0] and minute > limit[1]:
                continue
            return hour, minute
    return None


def window_open(expr: str | Cron, duration: timedelta, now: datetime) -> tuple[datetime, datetime] | None:
    """(start, end) of the window open at `now`, if any: some match m with m <= now < m + duration."""
    if duration <= timedelta(0):
        return None
    start = latest_match(expr, now, within=duration)
    if start is None or not (start <= now < start + duration):
        return None
    return start, start + duration
