"""Daily request-rate curves for simulated workloads.

Pure functions: a traffic declaration and a moment in, requests per second
out. No state, no randomness (the engine adds seeded noise), no clock.

The `office-hours` curve is a weekday shape (UTC): nothing before 07:00, a
morning ramp to the peak by 10:00, a lunch dip, an afternoon plateau, and
nothing after 20:00; weekends run at 5% of the weekday shape. `flat` is the
peak all day; `none` is zero. Explicit `points` (HH:MM -> rps) are joined by
straight lines and wrap around midnight.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime

from opsagent.cluster.sim.scenario import Traffic, _parse_hhmm

# Fraction of the peak at each whole hour (0..23) on a weekday.
OFFICE_HOURS = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.15, 0.5, 0.85, 1.0, 1.0,
    0.7, 0.85, 0.95, 0.9, 0.8, 0.5, 0.25, 0.1, 0.0, 0.0, 0.0, 0.0,
)
WEEKEND_FACTOR = 0.05


def _hour_of_day(at: datetime) -> float:
    return at.hour + at.minute / 60 + at.second / 3600


def _interpolate(points: list[tuple[float, float]], hour: float) -> float:
    """Linear between (hour, value) points sorted by hour, wrapping at 24."""
    if not points:
        return 0.0
    if len(points) == 1:
        return points[0][1]
    hours = [h for h, _ in points]
    i = bisect_right(hours, hour)
    (h0, v0) = points[i - 1] if i > 0 else (points[-1][0] - 24, points[-1][1])
    (h1, v1) = points[i] if i < len(points) else (points[0][0] + 24, points[0][1])
    if h1 == h0:
        return v0
    return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)


def compile_points(traffic: Traffic) -> list[tuple[float, float]]:
    out = []
    for key, rps in traffic.points.items():
        t = _parse_hhmm(key)
        out.append((t.hour + t.minute / 60, float(rps)))
    return sorted(out)


def rate_at(traffic: Traffic | None, at: datetime, points: list[tuple[float, float]] | None = None) -> float:
    """Requests per second the declaration asks for at `at` (before noise)."""
    if traffic is None:
        return 0.0
    hour = _hour_of_day(at)
    if traffic.points:
        return max(0.0, _interpolate(points if points is not None else compile_points(traffic), hour))
    if traffic.curve == "none" or traffic.peak_rps <= 0:
        return 0.0
    if traffic.curve == "flat":
        return traffic.peak_rps
    shape = _interpolate([(float(h), v) for h, v in enumerate(OFFICE_HOURS)], hour)
    if at.weekday() >= 5:
        shape *= WEEKEND_FACTOR
    return traffic.peak_rps * shape
