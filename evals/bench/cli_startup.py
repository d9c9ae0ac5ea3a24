"""Benchmark: how long the commands people type by hand take to start.

Times whole processes, as a shell runs them: `python -c pass` (the floor),
`opsagent --help`, `opsagent audit --help` and `opsagent audit list` on an
empty audit database. Prints the median and range over repeats and the ratio
to the floor. Goal: `--help` and `audit list` on an empty database under 0.25 s.

Run: .venv/bin/python evals/bench/cli_startup.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _result import emit, median_range

OPSAGENT = [sys.executable, "-c", "from opsagent.cli import main; main()"]


def timed(argv: list[str], repeats: int) -> list[float]:
    out = []
    env = {**os.environ, "COLUMNS": "120"}
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "audit.db"
        subprocess.run([sys.executable, "-c", f"from opsagent.audit import AuditStore; AuditStore({str(db)!r}).close()"], check=True)
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            ("opsagent --help", [*OPSAGENT, "--help"], 0.25),
            ("opsagent audit --help", [*OPSAGENT, "audit", "--help"], None),
            ("opsagent audit list (empty db)", [*OPSAGENT, "audit", "list", "--db", str(db)], 0.25),
        ]
        floor = None
        print(f"{'command':34} {'median s':>9} {'range s':>15} {'x floor':>8}  goal")
        for label, argv, goal in cases:
            times = timed(argv, args.repeats)
            median = statistics.median(times)
            floor = floor or median
            verdict = "" if goal is None else (f"< {goal} s " + ("met" if median < goal else "NOT met"))
            print(f"{label:34} {median:9.3f} {min(times):7.3f}-{max(times):7.3f} {median / floor:8.1f}  {verdict}")
            if goal is not None:
                emit(f"`{label}` start-up", median_range(times, "{:.3f}", " s") + f", {median / floor:.0f}x `python -c pass`",
                     value=median, target=goal)


if __name__ == "__main__":
    main()
