"""Several processes appending to one audit file at once (daemon, chat, Slack) neither
lose nor duplicate rows, and the hash chain stays one unbroken line."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import datetime, timezone

from opsagent.audit import AuditStore
from opsagent.model import AuditEntry

WRITERS, PER_WRITER = 4, 200


def _append(path: str, writer: int, start) -> None:
    store = AuditStore(path)
    start.wait()
    for i in range(PER_WRITER):
        store.record(AuditEntry(time=datetime(2026, 1, 5, tzinfo=timezone.utc), kind="result", actor=f"writer-{writer}",
                                tool="scale_workload", args={"namespace": "ml", "name": "llm", "n": i},
                                outcome="ok", summary=f"{writer}:{i}", idempotency_key=f"w{writer}:{i}"))
    store.close()


def test_four_processes_keep_every_row_once_and_the_chain(tmp_path):
    path = str(tmp_path / "audit.db")
    AuditStore(path).close()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_append, args=(path, w, start)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = AuditStore(path)
    rows = store.list(limit=None)
    assert len(rows) == WRITERS * PER_WRITER
    assert Counter(r.summary for r in rows) == Counter(f"{w}:{i}" for w in range(WRITERS) for i in range(PER_WRITER))
    report = store.verify()
    assert report.ok, report.problem
    assert report.rows == WRITERS * PER_WRITER
    store.close()
