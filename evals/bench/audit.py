"""The audit log at size: what a user hits on a database of 1,000,000 rows.

Builds (once, cached under /tmp) a chained audit database of realistic rows spread
over 100 days (runs, decisions, results that free and take back GPUs, denials,
approvals, model calls), then measures `audit stats --since 7d`, `audit search`,
`audit list`, the rate of `audit verify`, the history one detection pass reads,
and the latency of appends while another process searches without pause.
Prints a table with each goal and the figure's ratio to it, then one JSON line per
figure. Asserts nothing on time.

Run: .venv/bin/python evals/bench/audit.py [--rows 1000000] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from opsagent.audit import AuditFilter, AuditStore
from opsagent.audit.chain import GENESIS, row_hash
from opsagent.audit.schema import AUDIT_TABLE, CONTENT_COLUMNS, SCHEMA_VERSION
from opsagent.model import AuditEntry, canonical_json

DAYS = 100
END = datetime(2026, 6, 1, tzinfo=timezone.utc)
START = END - timedelta(days=DAYS)
TOOLS = ("sleep_workload", "wake_workload", "scale_workload", "restart_workload")


def _row(i: int, step: timedelta) -> dict[str, Any]:
    """Row i of the synthetic log: a cycle of run → decision → result per finding, with denials,
    approvals and model calls mixed in."""
    at = (START + step * i).isoformat(timespec="microseconds")
    ns, name = f"team-{i % 23}", f"llm-{i % 211}"
    finding = f"idle:{ns}/{name}"
    run = f"run-{i // 8}"
    base: dict[str, Any] = dict.fromkeys(CONTENT_COLUMNS)
    base.update(time=at, actor="daemon", channel="daemon", run_id=run, finding_id=finding, namespace=ns,
                workload=name, dry_run=0)
    phase = i % 8
    if phase == 0:
        base.update(kind="finding", message=f"{ns}/{name} idle for 2h holding 4 GPUs", summary="idle workload")
    elif phase == 1:
        base.update(kind="run", outcome="ok", model="qwen2.5:7b", prompt_tokens=1800, completion_tokens=120,
                    idempotency_key=f"{run}:run:llm{i}", summary="planned sleep")
    elif phase in (2, 5):
        tool = TOOLS[(i // 8) % len(TOOLS)]
        args = {"namespace": ns, "name": name}
        denied = (i // 8) % 17 == 0
        base.update(kind="decision", tool=tool, args=canonical_json(args), risk="write",
                    decision="deny" if denied else "allow", rule_file="policies/default.yaml",
                    rule_name="protect-prod" if denied else "free-idle-gpus",
                    summary=f"{'denied' if denied else 'allowed'} {tool} on {ns}/{name}")
    elif phase in (3, 6):
        tool = TOOLS[(i // 8) % len(TOOLS)]
        args = {"namespace": ns, "name": name, **({"replicas": 1} if tool == "scale_workload" else {})}
        data: dict[str, Any] = {"workload": f"{ns}/{name}"}
        if tool == "sleep_workload":
            data.update(gpus_freed=4, replicas_before=1, dry_run=False)
        elif tool in ("wake_workload", "scale_workload"):
            data.update(replicas=1, replicas_before=0)
        ok = (i // 8) % 13 != 0
        base.update(kind="result", tool=tool, args=canonical_json(args), risk="write", outcome="ok" if ok else "error",
                    summary=f"{tool} {ns}/{name} {'done' if ok else 'failed: timeout'}", duration_ms=850.0,
                    idempotency_key=f"{run}:{phase}:{tool}", data=canonical_json(data))
    elif phase == 4:
        base.update(kind="approval", tool="delete_workload", approval_id=i, actor="alice",
                    outcome="rejected" if (i // 8) % 3 == 0 else "approved", summary="rejected: still in use")
    else:
        base.update(kind="run", outcome="ok", data=canonical_json({"resolved": (i // 8) % 2 == 0}),
                    idempotency_key=f"{run}:run:finished", summary="run finished")
    return base


def build(path: Path, rows: int) -> None:
    """One transaction of bulk inserts, chained like the store chains them (the insert trigger indexes each row)."""
    path.unlink(missing_ok=True)
    store = AuditStore(path)
    step = timedelta(days=DAYS) / rows
    cols = (*CONTENT_COLUMNS, "prev_hash", "hash")
    sql = f"INSERT INTO [{AUDIT_TABLE}] ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    prev = GENESIS
    started = time.perf_counter()
    with store.transaction() as conn:
        batch: list[list[Any]] = []
        for i in range(rows):
            row = _row(i, step)
            digest = row_hash(prev, row)
            batch.append([row[c] for c in CONTENT_COLUMNS] + [prev, digest])
            prev = digest
            if len(batch) == 20_000:
                conn.executemany(sql, batch)
                batch.clear()
        conn.executemany(sql, batch)
    store.db.conn.execute("ANALYZE")
    store.close()
    print(f"built {rows:,} rows in {time.perf_counter() - started:.1f} s: {path}")


def timed(fn: Any, repeats: int = 3) -> tuple[float, Any]:
    """Median seconds over `repeats` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _searcher(path: str, stop: Any, ready: Any, count: Any) -> None:
    store = AuditStore(path)
    ready.set()
    words = ("done", "sleep_workload", "team-7", "failed timeout", "llm-42")
    n = 0
    while not stop.is_set():
        store.search(words[n % len(words)], limit=50)
        n += 1
    count.value = n
    store.close()


def append_under_search(path: Path, appends: int = 300) -> tuple[list[float], int]:
    """Append latencies (s) while another process searches without pause; and how many searches ran."""
    ctx = multiprocessing.get_context("fork")
    stop, ready, count = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    proc = ctx.Process(target=_searcher, args=(str(path), stop, ready, count))
    proc.start()
    ready.wait(30)
    latencies = []
    with AuditStore(path) as store:
        for i in range(appends):
            entry = AuditEntry(time=END + timedelta(seconds=i), kind="result", actor="bench", tool="sleep_workload",
                               args={"namespace": "bench", "name": f"w{i}"}, outcome="ok", summary=f"bench append {i}")
            started = time.perf_counter()
            store.record(entry)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
    stop.set()
    proc.join()
    return latencies, count.value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="build the cached database again")
    args = parser.parse_args()
    path = Path(f"/tmp/opsagent-bench-audit-{args.rows}-v{SCHEMA_VERSION}.db")
    if args.rebuild or not path.exists():
        build(path, args.rows)
    else:
        print(f"using cached {path}")
    figures: list[tuple[str, float, str, float | None]] = []   # metric, value, unit, goal (None: informative)
    now = END
    with AuditStore(path) as store:
        rows = store.count()
        secs, stats = timed(lambda: store.stats(since=now - timedelta(days=7), now=now))
        figures.append(("stats_since_7d", secs, "s", 2.0))
        print(f"stats --since 7d: rows={stats.rows:,} gpu_hours_freed={stats.gpu_hours_freed:,.1f}")
        secs, hits = timed(lambda: store.search("done", limit=50))
        figures.append(("search_common_word", secs, "s", 2.0))
        secs, hits = timed(lambda: store.search("team-7 llm-42 failed", limit=50))
        figures.append(("search_rare_words", secs, "s", 2.0))
        secs, _ = timed(lambda: store.list(AuditFilter(limit=50)))
        figures.append(("list_newest_50", secs, "s", None))
        secs, _ = timed(lambda: store.list(AuditFilter(since=now - timedelta(hours=2), namespace="team-7", limit=50)))
        figures.append(("list_since_2h_namespace", secs, "s", None))
        secs, history = timed(lambda: store.finding_history(since=now - timedelta(days=2)))
        figures.append(("detection_history_read_2d", secs, "s", None))
        print(f"detection history: {len(history):,} rows in the 2-day window")
        started = time.perf_counter()
        report = store.verify()
        secs = time.perf_counter() - started
        figures.append(("verify_per_row", secs / max(report.rows, 1) * 1e6, "us", None))
        print(f"verify: {report.rows:,} rows in {secs:.1f} s, ok={report.ok}")
    latencies, searches = append_under_search(path)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    figures += [("append_under_search_p50", q[49] * 1000, "ms", None),
                ("append_under_search_p99", q[98] * 1000, "ms", None),
                ("append_under_search_max", latencies[-1] * 1000, "ms", 100.0)]
    print(f"appends under search: {len(latencies)} appends while {searches} searches ran")

    print(f"\naudit at {rows:,} rows")
    print(f"{'metric':<28} {'value':>10} {'unit':<4} {'goal':>8}  ratio")
    for metric, value, unit, goal in figures:
        shown_goal = f"< {goal:g}" if goal is not None else "-"
        ratio = f"{value / goal:.2f}x of goal" if goal is not None else ""
        print(f"{metric:<28} {value:>10.3f} {unit:<4} {shown_goal:>8}  {ratio}")
    for metric, value, unit, goal in figures:
        print(json.dumps({"bench": "audit", "metric": metric, "value": round(value, 4), "unit": unit, "goal": goal,
                          "rows": rows}))


if __name__ == "__main__":
    main()
