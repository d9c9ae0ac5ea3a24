"""Time, from one place. Nothing time-based in opsagent reads the system clock directly.

`RealClock` is wall time. `VirtualClock` is the simulator's: it moves only when
told to (or when something sleeps on it), so hours of simulated cluster time
run in milliseconds and every run is reproducible.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

UTC = timezone.utc


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    def sleep(self, seconds: float) -> None:
        """Wait; instant on a virtual clock (it advances instead)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations."""


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


class VirtualClock:
    """A clock that advances only when told to. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("VirtualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._start = self._now
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock never goes back")
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def monotonic(self) -> float:
        with self._lock:
            return (self._now - self._start).total_seconds()


MAX_DURATION = timedelta(days=36500)  # a hundred years: longer is a typo, and datetime arithmetic overflows


def format_duration(seconds: float | timedelta, *, parts: int = 4) -> str:
    """The form `parse_duration` reads: 2d, 1h30m, 45s, 0s; `parts` keeps only the largest units (rounded down)."""
    total = int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
    sign, total = ("-", -total) if total < 0 else ("", total)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size and len(out) < parts:
            out.append(f"{total // size}{unit}")
            total %= size
    return sign + ("".join(out) or "0s")


def parse_duration(text: str | int | float) -> timedelta:
    """Parse '90s', '30m', '2h', '1d', '1h30m' or a number of seconds."""
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty duration")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, number = 0.0, ""
    for ch in raw:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number and number.count(".") <= 1:
            total += float(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}: use forms like 90s, 30m, 2h, 1d, 1h30m")
    if number:
        if number.count(".") > 1:
            raise ValueError(f"bad duration {text!r}: use forms like 90s, 30m, 2h, 1d, 1h30m")
        total += float(number)  # bare number: seconds
    if total > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is too long (at most {MAX_DURATION.days} days)")
    return timedelta(seconds=total)
