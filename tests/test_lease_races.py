"""Leases changed by two writers at once: two threads (each with its own runtime and database connection)
and two real processes.

In the threads the interleavings are forced, not hoped for: two starts both
pass their first look before either records; an extension holds its check
open while a cancel arrives; a lease is extended between the daemon's look
and its close. The two processes race 25 random starts, extensions and
cancels each. Whatever the order, the log holds at most one active lease per
workload, no extension past `max_wake` or on a closed lease, every answer a
caller got is what the log says, and the chain verifies.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsagent.audit import AuditStore
from opsagent.leases import Lease, LeaseRefused, LeaseService, read_leases
from opsagent.model import WorkloadRef
from opsagent.runtime import open_runtime

REPO = Path(__file__).resolve().parents[1]
RENDER = WorkloadRef(namespace="render", name="render-ui")


def _runtime(db: Path):
    return open_runtime(cluster="sim:demo", policies=REPO / "policies", db=db)


def _in_threads(*jobs: Any) -> list[Any]:
    out: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            out[i] = jobs[i]()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test looks at
            out[i] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return out


class _SlowCheck(LeaseService):
    """A lease service whose `nth` look at the leases waits (at most `hold` seconds) for another writer's event."""

    def __init__(self, rt: Any, looked: threading.Event, other: threading.Event, *, nth: int = 1,
                 hold: float = 2.0) -> None:
        super().__init__(audit=rt.audit, gate=rt.gate, policy=rt.policy, cluster=rt.cluster, clock=rt.clock)
        self.looked, self.other, self.nth, self.hold, self.calls = looked, other, nth, hold, 0
        self.other_came_between: bool | None = None

    def leases(self) -> dict[str, Lease]:
        found = super().leases()
        self.calls += 1
        if self.calls == self.nth:
            self.looked.set()
            self.other_came_between = self.other.wait(timeout=self.hold)
        return found


def test_two_writers_starting_at_once_make_one_lease(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    first, second = _runtime(db), _runtime(db)
    one, two = threading.Event(), threading.Event()
    # Each start looks once before the wake and once to record; the second look waits for the other's.
    services = [_SlowCheck(first, one, two, nth=2), _SlowCheck(second, two, one, nth=2)]
    try:
        outcomes = _in_threads(lambda: services[0].start(RENDER, timedelta(hours=2), actor="erin"),
                               lambda: services[1].start(RENDER, timedelta(hours=3), actor="frank"))
        won = [o for o in outcomes if isinstance(o, tuple)]
        lost = [o for o in outcomes if isinstance(o, LeaseRefused)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert "meanwhile" in str(lost[0]) and "your wake ran" in str(lost[0])
        with AuditStore(db) as store:
            leases = read_leases(store)
            assert [lease.state for lease in leases.values()] == ["active"]
            assert list(leases.values())[0] == won[0][0]
            started = [r for r in store.list(kind="lease", limit=None) if (r.data or {}).get("event") == "started"]
            assert len(started) == 1
            assert store.verify().ok
    finally:
        first.audit.close()
        second.audit.close()


def test_an_extension_and_a_cancel_at_once_are_both_kept_in_order(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    first, second = _runtime(db), _runtime(db)
    try:
        lease, _ = first.leases().start(RENDER, timedelta(hours=1), actor="erin")
        looked, cancelled = threading.Event(), threading.Event()
        slow = _SlowCheck(first, looked, cancelled)
        canceller = second.leases()

        def extend() -> Lease:
            return slow.extend(RENDER, timedelta(hours=3), actor="erin")

        def cancel() -> Lease:
            assert looked.wait(timeout=30)
            try:
                return canceller.cancel(RENDER, actor="erin")
            finally:
                cancelled.set()

        extended, ended = _in_threads(extend, cancel)
        assert isinstance(extended, Lease) and isinstance(ended, Lease), (extended, ended)
        # The cancel could not be recorded while the extension's check was open: it waited, then came after.
        assert slow.other_came_between is False
        assert extended.state == "active" and extended.until == lease.started_at + timedelta(hours=3)
        assert ended.state == "cancelled" and ended.until == extended.until   # the extension is in the fold
        with AuditStore(db) as store:
            events = [(r.data or {}).get("event") for r in sorted(store.list(kind="lease", limit=None), key=lambda r: r.id)]
            assert events == ["started", "extended", "cancelled"]
            assert store.verify().ok
    finally:
        first.audit.close()
        second.audit.close()


@pytest.mark.parametrize("spans", [(3, 5), (5, 3)], ids=["in-cap-first", "over-cap-first"])
def test_two_extensions_at_once_never_pass_the_cap(tmp_path: Path, spans: tuple[int, int]) -> None:
    db = tmp_path / "ops.db"
    first, second = _runtime(db), _runtime(db)
    try:
        lease, _ = first.leases().start(RENDER, timedelta(hours=1), actor="erin")
        a, b = first.leases(), second.leases()
        outcomes = _in_threads(lambda: a.extend(RENDER, timedelta(hours=spans[0]), actor="erin"),
                               lambda: b.extend(RENDER, timedelta(hours=spans[1]), actor="frank"))
        refused = [o for o in outcomes if isinstance(o, LeaseRefused)]
        assert len(refused) == 1 and "past max_wake 4h00m" in str(refused[0])
        with AuditStore(db) as store:
            [now] = read_leases(store).values()
            assert now.until - now.started_at == timedelta(hours=3)
            assert store.verify().ok
    finally:
        first.audit.close()
        second.audit.close()


class _ExtendedMeanwhile(LeaseService):
    """The daemon's lease service; right after its first look at the leases, erin extends hers."""

    def __init__(self, rt: Any) -> None:
        super().__init__(audit=rt.audit, gate=rt.gate, policy=rt.policy, cluster=rt.cluster, clock=rt.clock)
        self.rt, self.calls = rt, 0

    def leases(self) -> dict[str, Lease]:
        found = super().leases()
        self.calls += 1
        if self.calls == 1:
            self.rt.leases().extend(RENDER, timedelta(hours=1), actor="erin")
        return found


def test_a_lease_extended_while_the_daemon_closes_it_is_not_slept(tmp_path: Path) -> None:
    rt = _runtime(tmp_path / "ops.db")
    try:
        lease, _ = rt.leases().start(RENDER, timedelta(hours=1), actor="erin")
        rt.sim.advance(timedelta(hours=1, minutes=1))          # due: the daemon's first look says so
        assert _ExtendedMeanwhile(rt).close_due() == []          # ...but erin extended it before it could close it
        [now] = read_leases(rt.audit).values()
        assert now.state == "active" and now.until > rt.clock.now()
        assert rt.audit.list(kind="result", tool="sleep_workload", limit=None) == []
        assert rt.cluster.snapshot().workload(RENDER).replicas >= 1
        # Once closed, a lease takes no extension: the close and the sleep are one story in the log.
        rt.sim.advance(timedelta(hours=1))
        [(closed, sleep)] = rt.leases().close_due()
        assert closed.state == "expired" and sleep is not None and sleep.status == "ok", sleep
        expired = [r for r in rt.audit.list(kind="lease", limit=None) if (r.data or {}).get("event") == "expired"]
        assert [r.data["sleep_run_id"] for r in expired] == [rt.audit.get(sleep.audit_id).run_id]
        with pytest.raises(LeaseRefused, match="no active lease"):
            rt.leases().extend(RENDER, timedelta(hours=1), actor="erin")
        assert rt.audit.verify().ok
    finally:
        rt.audit.close()


_WORKER = r"""
import json, random, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from opsagent.leases import LeaseRefused
from opsagent.model import WorkloadRef
from opsagent.runtime import open_runtime

db, policies, go, seed = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
rt = open_runtime(cluster="sim:demo", policies=policies, db=db)
service, ref, rng, out = rt.leases(), WorkloadRef(namespace="render", name="render-ui"), random.Random(seed), []
while not go.exists():
    time.sleep(0.01)
for _ in range(25):
    op, who = rng.choice(["start", "extend", "extend", "cancel"]), rng.choice(["erin", "frank"])
    try:
        if op == "start":
            service.start(ref, timedelta(hours=1), actor=who)
        elif op == "extend":
            service.extend(ref, timedelta(minutes=rng.randint(60, 300)), actor=who)
        else:
            service.cancel(ref, actor=who)
        out.append([op, "ok"])
    except LeaseRefused as exc:
        out.append([op, str(exc)])
rt.audit.close()
print(json.dumps(out))
"""


def test_two_processes_changing_one_lease_keep_the_rules(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    db, go = tmp_path / "ops.db", tmp_path / "go"
    _runtime(db).audit.close()                         # the database exists before either process opens it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(db), str(REPO / "policies"), str(go), str(seed)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    go.touch()
    outcomes = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        outcomes += json.loads(stdout)
    ok = {op: sum(1 for o, said in outcomes if o == op and said == "ok") for op in ("start", "extend", "cancel")}
    assert ok["start"] >= 1 and ok["extend"] + ok["cancel"] >= 1, outcomes
    with AuditStore(db) as store:
        rows = sorted(store.list(kind="lease", limit=None), key=lambda r: r.id)
        active: dict[str, Any] | None = None
        for row in rows:                                  # every record, in chain order, is one the rules allow
            data = row.data or {}
            if data["event"] == "started":
                assert active is None, f"audit {row.id}: a second active lease"
                active = {"id": data["lease"], "start": row.time}
            else:
                assert active is not None and data["lease"] == active["id"], f"audit {row.id}: on a lease not active"
                if data["event"] == "extended":
                    until = datetime.fromisoformat(data["until"])
                    assert until - active["start"] <= timedelta(hours=4), f"audit {row.id}: past max_wake"
                else:
                    active = None
        events = [(row.data or {})["event"] for row in rows]
        assert events.count("started") == ok["start"]     # no start lost, none doubled
        assert events.count("cancelled") == ok["cancel"]
        assert 0 < events.count("extended") <= ok["extend"] or ok["extend"] == 0   # equal ends share one record
        assert store.verify().ok
