"""Audit-store throughput: appends per second for one writer and for four writer
processes sharing one file (chain verified afterwards), plus the cost of catching
the full-text index up and of verifying. Prints figures; asserts nothing on time.

Run: .venv/bin/python evals/bench/audit.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from opsagent.audit import AuditStore
from opsagent.model import AuditEntry

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def entry(writer: int, i: int) -> AuditEntry:
    return AuditEntry(time=T0, kind="result", actor=f"writer-{writer}", channel="daemon", run_id=f"run-{i // 10}",
                      tool="scale_workload", args={"namespace": "ml", "name": f"llm-{i % 7}", "replicas": 0},
                      risk="write", decision="allow", rule_file="policies/default.yaml", rule_name="free-idle-gpus",
                      outcome="ok", summary=f"scaled ml/llm-{i % 7} from 1 to 0", duration_ms=3.2,
                      idempotency_key=f"w{writer}:{i}", data={"gpus_freed": 1, "gpu_hours_freed": 0.5})


def _writer(path: str, writer: int, rows: int, start) -> None:
    store = AuditStore(path)
    start.wait()
    for i in range(rows):
        store.record(entry(writer, i))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000, help="appends per writer")
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.db"
        store = AuditStore(one)
        started = time.perf_counter()
        for i in range(rows):
            store.record(entry(0, i))
        elapsed = time.perf_counter() - started
        print(f"one writer: {rows} appends in {elapsed:.2f}s = {rows / elapsed:,.0f} appends/s")
        started = time.perf_counter()
        report = store.verify()
        print(f"verify: {report.rows} rows in {time.perf_counter() - started:.3f}s, ok={report.ok}")
        started = time.perf_counter()
        hits = store.search("llm-3")
        print(f"first search (indexes {rows} rows): {time.perf_counter() - started:.3f}s, {len(hits)} hits")
        started = time.perf_counter()
        store.search("llm-3")
        print(f"next search (index current): {(time.perf_counter() - started) * 1000:.1f} ms")
        started = time.perf_counter()
        store.record_many([entry(1, i) for i in range(rows)])
        elapsed = time.perf_counter() - started
        print(f"batched (record_many): {rows} appends in {elapsed:.2f}s = {rows / elapsed:,.0f} appends/s")
        store.close()

        shared = Path(tmp) / "shared.db"
        AuditStore(shared).close()
        ctx = multiprocessing.get_context("fork")
        start = ctx.Event()
        procs = [ctx.Process(target=_writer, args=(str(shared), w, rows // 4, start)) for w in range(4)]
        for p in procs:
            p.start()
        time.sleep(0.5)  # let every process open the store before the clock starts
        started = time.perf_counter()
        start.set()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
        total = 4 * (rows // 4)
        print(f"4 writer processes: {total} appends in {elapsed:.2f}s = {total / elapsed:,.0f} appends/s")
        with AuditStore(shared) as check:
            report = check.verify()
            print(f"chain after concurrent run: rows={report.rows} expected={total} ok={report.ok}"
                  + (f" problem={report.problem}" if not report.ok else ""))


if __name__ == "__main__":
    main()
