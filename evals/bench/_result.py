"""The one result format every bench script speaks, so `make bench` can print one table.

A bench script prints whatever it likes for a person reading it, and in addition
one line per goal it measures, made by `emit()`:

    BENCH {"goal": "policy decision, daemon rule mix", "figure": "median 21 us (19-24)",
           "value": 21.0, "target": 50.0, "better": "lower", "ratio": 0.42, "pass": true}

Fields: `goal` names what is measured (one line of the table); `figure` is the
measured result as a person should read it (median and range); `value` and
`target` are the numbers compared; `better` is "lower" or "higher"; `ratio` is
value / target; `pass` is whether the goal is met (null when the line only
reports a figure and has no goal). Only `goal` and `figure` are required.

Scripts stay runnable alone (`python evals/bench/policy.py`); `_collect.py`
runs every `evals/bench/*.py` not starting with `_`, keeps the lines starting
with `BENCH ` and prints them as one table. A script that does not yet emit
these lines still runs; its output is kept in the log but adds no row.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence

PREFIX = "BENCH "


def emit(goal: str, figure: str, *, value: float | None = None, target: float | None = None,
         better: str = "lower", passed: bool | None = None) -> dict:
    """Print one result line; `passed` defaults to comparing value with target."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', not {better!r}")
    ratio = None
    if value is not None and target:
        ratio = value / target
        if passed is None:
            passed = value < target if better == "lower" else value >= target
    row = {"goal": goal, "figure": figure, "value": value, "target": target, "better": better,
           "ratio": None if ratio is None else round(ratio, 3), "pass": passed}
    print(PREFIX + json.dumps(row), flush=True)
    return row


def median_range(values: Sequence[float], fmt: str = "{:.1f}", unit: str = "") -> str:
    """'median 21.3 us (19.8-24.0)': the median with its range over repeats."""
    m = statistics.median(values)
    return f"median {fmt.format(m)}{unit} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def parse(line: str) -> dict | None:
    """The result on a BENCH line, or None for any other line (or a malformed one)."""
    if not line.startswith(PREFIX):
        return None
    try:
        row = json.loads(line[len(PREFIX):])
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("goal"), str) or "figure" not in row:
        return None
    return row
