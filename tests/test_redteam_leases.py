"""Time-boxed wakes under attack: who may move a lease, what a lease may make the daemon do, and how far
records in the audit log can stretch one. Real gate, policy, audit log and simulator throughout.

In the shipped policy erin (render-team) may wake render/render-ui outright; mallory may not (a wake by her
needs an on-call engineer's approval).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from opsagent.audit.records import iso
from opsagent.leases import LeaseRefused
from opsagent.model import AuditEntry, ToolCall, WorkloadRef

REPO = Path(__file__).resolve().parents[1]
RENDER = WorkloadRef(namespace="render", name="render-ui")


def _runtime(tmp_path: Path):
    from opsagent.runtime import open_runtime

    return open_runtime(cluster="sim:demo", policies=REPO / "policies", db=tmp_path / "ops.db")


def _replicas(rt) -> int:
    return rt.cluster.snapshot().workload(RENDER).replicas


def _asleep(rt) -> None:
    done = rt.gate.submit(ToolCall(tool="sleep_workload", args={"namespace": "render", "name": "render-ui"}, actor="erin"))
    assert done.status == "ok" and _replicas(rt) == 0, done


def _sleeps(rt) -> list:
    return rt.audit.list(kind="result", tool="sleep_workload", limit=None)


def test_a_person_the_policy_does_not_let_wake_cannot_move_someone_elses_lease(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    _asleep(rt)
    service = rt.leases()
    lease, _ = service.start(RENDER, timedelta(hours=1), actor="erin")
    wake = ToolCall(tool="wake_workload", args={"namespace": "render", "name": "render-ui"}, actor="mallory")
    assert rt.gate.preview(wake).effect == "require_approval"
    with pytest.raises(LeaseRefused, match="extending its lease needs the policy to let mallory"):
        service.extend(RENDER, timedelta(hours=3), actor="mallory")          # keeping GPUs up is a wake
    with pytest.raises(LeaseRefused, match="cancelling erin.s lease needs the policy to let mallory"):
        service.cancel(RENDER, actor="mallory")
    assert service.leases()[lease.id].until == lease.until and service.leases()[lease.id].state == "active"
    assert service.extend(RENDER, timedelta(hours=2), actor="frank").until > lease.until   # render-team may
    assert service.cancel(RENDER, actor="erin").state == "cancelled"                      # the starter may


def test_no_lease_or_extension_makes_the_daemon_sleep_a_workload_sooner(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    _asleep(rt)
    service = rt.leases()
    for span in (timedelta(0), timedelta(hours=-1)):
        with pytest.raises(LeaseRefused, match="longer than zero"):
            service.start(RENDER, span, actor="erin")
    lease, _ = service.start(RENDER, timedelta(hours=2), actor="erin")
    for span in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(LeaseRefused, match="longer than zero"):
            service.extend(RENDER, span, actor="erin")
    with pytest.raises(LeaseRefused, match="cannot end it sooner"):
        service.extend(RENDER, timedelta(minutes=1), actor="erin")
    assert service.close_due() == [] and _replicas(rt) == 1 and service.leases()[lease.id].until == lease.until


def test_chat_wake_for_zero_hours_is_refused_and_sleeps_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opsagent.cli import app

    db = str(tmp_path / "ops.db")
    said = CliRunner().invoke(app, ["ask", "wake render/render-ui for 00h", "--cluster", "sim:demo", "--as", "erin",
                                    "--db", db])
    assert "longer than zero" in said.output, said.output
    rt = _runtime(tmp_path)
    assert rt.leases().leases() == {} and rt.leases().close_due() == [] and _sleeps(rt) == []


def _forge_start(rt, *, started, until) -> None:
    """A lease record written straight into the audit log, as someone holding the database file could."""
    rt.audit.record(AuditEntry(time=started, kind="lease", actor="erin", channel="cli",
                               args={"namespace": "render", "name": "render-ui"}, summary="forged",
                               data={"event": "started", "lease": "render/render-ui@forged", "workload": "render/render-ui",
                                     "until": iso(until)}))


def test_a_lease_record_never_holds_a_workload_past_the_policys_max_wake(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    now = rt.clock.now()
    _forge_start(rt, started=now, until=now + timedelta(days=3650))
    service = rt.leases()
    assert service.leases()["render/render-ui@forged"].until == now + timedelta(hours=4)   # render-ui: max_wake 4h
    assert service.held() == {"render/render-ui"}
    rt.sim.advance(timedelta(hours=4, minutes=1))
    assert service.held() == frozenset()            # the idle rule applies again


def test_a_lease_recorded_as_starting_later_holds_nothing(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    later = rt.clock.now() + timedelta(days=365)
    _forge_start(rt, started=later, until=later + timedelta(hours=1))
    assert rt.leases().held() == frozenset()


def test_a_person_putting_a_leased_workload_to_sleep_ends_the_lease(tmp_path: Path) -> None:
    """Sleeping it by hand is scaling it by hand (to zero): the lease must not keep holding it, so a request that
    wakes it again afterwards leaves it to its idle rule rather than to the lease's clock."""
    rt = _runtime(tmp_path)
    _asleep(rt)
    service = rt.leases()
    lease, _ = service.start(RENDER, timedelta(hours=4), actor="erin")
    slept = rt.gate.submit(ToolCall(tool="sleep_workload", args={"namespace": "render", "name": "render-ui"}, actor="frank"))
    assert slept.status == "ok"
    assert service.held() == frozenset()
    [(closed, result)] = service.close_due()
    assert closed.id == lease.id and result is None
    assert service.leases()[lease.id].state == "ended" and service.leases()[lease.id].scaled_by_hand == slept.audit_id
