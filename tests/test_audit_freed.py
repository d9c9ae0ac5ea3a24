"""GPU-hours freed are worked out from result records: a freeing counts its GPUs from its
own time until the workload comes back (the return call's start), is freed again, or the
range ends, clipped to the range. Dry runs, failures and calls that freed nothing count 0.

Each case appends real rows to a real audit file and reads the figure back through
`AuditStore.stats`, the way `opsagent audit stats` does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from opsagent.audit import AuditStore
from opsagent.audit.freed import freed_periods
from opsagent.model import AuditEntry

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sleep(minutes: float, name: str = "llm", gpus: int = 2, **overrides) -> AuditEntry:
    values = dict(time=at(minutes), kind="result", actor="daemon", tool="sleep_workload", outcome="ok",
                  args={"namespace": "ml", "name": name}, duration_ms=5.0,
                  data={"workload": f"ml/{name}", "gpus_freed": gpus, "replicas_before": 1, "dry_run": False})
    values.update(overrides)
    return AuditEntry(**values)


def wake(minutes: float, name: str = "llm", waited_minutes: float = 0.0, **overrides) -> AuditEntry:
    values = dict(time=at(minutes), kind="result", actor="wake-proxy", tool="wake_workload", outcome="ok",
                  args={"namespace": "ml", "name": name}, duration_ms=waited_minutes * 60_000,
                  data={"workload": f"ml/{name}", "replicas": 1, "replicas_before": 0, "state": "ready"})
    values.update(overrides)
    return AuditEntry(**values)


def scale(minutes: float, replicas: int, name: str = "llm") -> AuditEntry:
    return AuditEntry(time=at(minutes), kind="result", actor="alice", tool="scale_workload", outcome="ok",
                      args={"namespace": "ml", "name": name, "replicas": replicas},
                      data={"workload": f"ml/{name}", "replicas": replicas, "replicas_before": 0, "dry_run": False})


CASES = [
    # (rows, since minutes or None, now minutes, expected GPU-hours)
    pytest.param([sleep(0), wake(90)], None, 600, 3.0, id="sleep-then-wake"),
    pytest.param([sleep(0), wake(90, waited_minutes=30)], None, 600, 2.0,
                 id="a-wake-takes-the-gpus-when-it-starts-not-when-ready"),
    pytest.param([sleep(0)], None, 45, 1.5, id="still-asleep-counts-until-now"),
    pytest.param([sleep(0), wake(120)], 60, 600, 2.0, id="clipped-to-since"),
    pytest.param([sleep(0), wake(60), sleep(120, gpus=1), wake(180)], None, 600, 3.0, id="two-periods"),
    pytest.param([sleep(0), sleep(30, gpus=1), wake(90)], None, 600, 2 * 0.5 + 1 * 1.0,
                 id="a-second-freeing-closes-the-first"),
    pytest.param([sleep(0, name="a", gpus=1), sleep(0, name="b", gpus=4), wake(60, name="a")], None, 120, 1 + 8,
                 id="per-workload"),
    pytest.param([sleep(0, dry_run=True)], None, 60, 0.0, id="dry-run-column"),
    pytest.param([sleep(0, data={"workload": "ml/llm", "gpus_freed": 2, "dry_run": True})], None, 60, 0.0,
                 id="dry-run-in-data"),
    pytest.param([sleep(0, outcome="error")], None, 60, 0.0, id="failed-sleep"),
    pytest.param([sleep(0, gpus=0)], None, 60, 0.0, id="already-at-zero"),
    pytest.param([sleep(0), wake(30, outcome="error"), wake(60)], None, 600, 2.0, id="a-failed-wake-is-no-return"),
    pytest.param([sleep(0), scale(30, 0), scale(60, 2)], None, 600, 2.0, id="scale-to-zero-is-no-return"),
    pytest.param([sleep(0, kind="decision", outcome=None)], None, 60, 0.0, id="only-results-count"),
]


@pytest.mark.parametrize(("rows", "since", "now", "expected"), CASES)
def test_gpu_hours_freed(tmp_path, rows, since, now, expected):
    with AuditStore(tmp_path / "a.db") as store:
        store.record_many(rows)
        stats = store.stats(since=at(since) if since is not None else None, now=at(now))
    assert stats.gpu_hours_freed == pytest.approx(expected, abs=1e-3)


def test_periods_name_the_workload_and_its_window(tmp_path):
    with AuditStore(tmp_path / "a.db") as store:
        store.record_many([sleep(0), wake(90, waited_minutes=10)])
        records = list(reversed(store.list(limit=None)))
    [period] = freed_periods(records, since=None, end=at(600))
    assert (period.workload, period.gpus, period.start, period.end) == ("ml/llm", 2.0, at(0), at(80))


def test_gpus_freed_counts_applied_results_in_the_range(tmp_path):
    with AuditStore(tmp_path / "a.db") as store:
        store.record_many([sleep(0, gpus=2), sleep(10, name="b", gpus=3, dry_run=True), sleep(20, name="c", gpus=1)])
        assert store.stats(now=at(60)).gpus_freed == 3
        assert store.stats(since=at(15), now=at(60)).gpus_freed == 1
