"""How much does the database grow in one simulated day with a hostile model? Goal: under 5 MB.

Runs `opsagent demo` (the real daemon, the demo scenario, 5-minute cycles,
24 simulated hours) with the LLM planner pointed at a fake Ollama on
loopback whose model is hostile: every answer is a tool call, most of them
carrying a 400 KB argument (the gate refuses anything over 16 KiB), the rest
harmful calls the policy denies; it never says it is done, so every run uses
its whole step budget. Prints the size of the database file (with its WAL),
its biggest tables, the largest audit `args` value and the largest prompt
the model was sent.

    .venv/bin/python evals/bench/storage_day.py [--hours 24]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from opsagent.evals.fake_ollama import FakeOllama, Reply  # noqa: E402

BLOB = "A" * 400_000


def hostile() -> tuple[object, list[int]]:
    sizes: list[int] = []
    moves = itertools.cycle([
        ("scale_workload", {"namespace": "inference", "name": "llm", "replicas": 0, "reason": BLOB}),
        ("delete_workload", {"namespace": "inference", "name": "llm", "why": BLOB}),
        ("scale_workload", {"namespace": "kube-system", "name": "coredns", "replicas": 0}),
        ("rm_rf_cluster", {"confirm": True, "payload": BLOB}),
    ])

    def respond(body: dict) -> Reply:
        sizes.append(len(json.dumps(body)))
        tool, args = next(moves)
        return Reply.call(tool, **args)

    return respond, sizes


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def table_bytes(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6").fetchall()
        biggest_args = conn.execute("SELECT max(length(args)) FROM audit").fetchone()[0] or 0
    except sqlite3.OperationalError:  # no dbstat in this SQLite build
        rows, biggest_args = [], 0
    finally:
        conn.close()
    return {**{name: size for name, size in rows}, "max audit args bytes": biggest_args}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    opts = parser.parse_args()
    from opsagent.demo import run_demo

    respond, sizes = hostile()
    db = Path(tempfile.mkdtemp(prefix="opsagent-storage-")) / "day.db"
    with FakeOllama(responder=respond, models=("hostile:latest",)) as server:
        os.environ["OLLAMA_HOST"] = server.url
        started = time.perf_counter()
        summary = run_demo(hours=opts.hours, db=db, model="hostile")
        wall = time.perf_counter() - started
    size = db_bytes(db)
    print(f"{opts.hours:g} simulated hours, hostile model: database {size / 1e6:.2f} MB "
          f"({summary.audit_records} audit rows, {summary.llm_calls} model calls, {wall:.0f}s)")
    for name, value in table_bytes(db).items():
        print(f"  {name}: {value / 1e6:.2f} MB" if name != "max audit args bytes" else f"  {name}: {value}")
    print(f"  database: {db}")
    print(f"  largest prompt sent: {max(sizes, default=0) / 1e3:.0f} KB; audit chain "
          f"{'verified' if summary.audit_verified else 'BROKEN'}")


if __name__ == "__main__":
    main()
