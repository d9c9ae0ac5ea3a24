"""Why a node was cordoned outlives the events that said so.

Spec:
- a cordoned, Ready GPU node that waiting GPU work could use, on which a run
  for `node_unhealthy` recorded a hardware XID, is `node_awaits_repair` (to a
  person, with the reason) and not `node_left_cordoned` (an uncordon
  proposal), for as long as it has not rebooted: same boot id as recorded
  then, or, with no boot id to compare, no Ready transition since the cordon;
- a new boot id, a Ready transition after the cordon, or an uncordon a person
  approved after the fault end that: the node is a leftover again;
- cluster text saying "repaired" (an event, a label) changes nothing;
- a node cordoned with no fault on record keeps its uncordon proposal;
- the runtime's history reaches back a week for these rows, past the two days
  of the finding history and the hour of events a snapshot holds;
- the simulator's `reboot` gives a node a new boot id and Ready transition.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from detect_sample import gpu
from sim_harness import A100

from opsagent.audit import AuditStore
from opsagent.cluster.sim import Scenario, SimCluster
from opsagent.detect import Attempts, detect
from opsagent.detect.common import Acted, Seen
from opsagent.model import Event, Job, Node, Snapshot
from opsagent.model.audit import AuditEntry
from opsagent.runtime import HISTORY_WINDOW, NODE_MEMORY, action_history

NOW = datetime(2026, 1, 6, 10, 30, tzinfo=timezone.utc)
FAULT_AT = NOW - timedelta(minutes=85)   # 09:05: long out of the hour of events a snapshot holds


def _snapshot(node: Node, *, events: tuple[Event, ...] = ()) -> Snapshot:
    spare = Node(name="gpu-a", gpus=(gpu("a0", "gpu-a", holder="inference/embedder-1"),))
    return Snapshot(time=NOW, nodes=(spare, node), events=events,
                    jobs=(Job(namespace="training", name="finetune-12", gpus=2, state="queued"),))


def _cordoned(**fields) -> Node:
    return Node(name="gpu-b", cordoned=True, gpus=(gpu("b0", "gpu-b"), gpu("b1", "gpu-b")), **fields)


def _saw_xid(*, boot_id: str | None = "boot-1", at: datetime = FAULT_AT, **more) -> dict[str, Attempts]:
    seen = Seen(at=at, details={"xid_errors": [{"xid": 79, "at": at.isoformat()}], "boot_id": boot_id})
    return {"node_unhealthy:gpu-b": Attempts(seen=(seen,), **more)}


def _found(snapshot: Snapshot, history) -> dict[str, dict]:
    return {f.id: {**f.details, "summary": f.summary} for f in detect(snapshot, intents=[], now=NOW, history=history)
            if f.kind in ("node_left_cordoned", "node_awaits_repair")}


def test_a_remembered_xid_without_a_reboot_goes_to_a_person_not_to_an_uncordon():
    found = _found(_snapshot(_cordoned(boot_id="boot-1")), _saw_xid())
    assert list(found) == ["node_awaits_repair:gpu-b"]
    got = found["node_awaits_repair:gpu-b"]
    assert got["fault"] == "XID 79" and got["queued_jobs"] == ["training/finetune-12"] and got["cordoned_at"] is None
    assert "after GPU XID 79 at 2026-01-06T09:05:00+00:00; no reboot since" in got["summary"]


def test_the_agents_own_cordon_gives_the_time_of_the_cordon():
    cordoned_at = FAULT_AT + timedelta(minutes=20)
    history = _saw_xid(actions=(Acted(tool="cordon_node", at=cordoned_at),))
    got = _found(_snapshot(_cordoned(boot_id="boot-1")), history)["node_awaits_repair:gpu-b"]
    assert got["cordoned_at"] == cordoned_at.isoformat()
    assert f"was cordoned at {cordoned_at.isoformat()} for GPU XID 79; no reboot since" in got["summary"]


def test_a_new_boot_id_is_the_repair_and_the_uncordon_is_proposed_again():
    found = _found(_snapshot(_cordoned(boot_id="boot-2")), _saw_xid())
    assert list(found) == ["node_left_cordoned:gpu-b"]


def test_a_boot_id_wins_over_a_ready_transition_that_was_no_reboot():
    flapped = _cordoned(boot_id="boot-1", ready_transition_at=NOW - timedelta(minutes=10))
    assert list(_found(_snapshot(flapped), _saw_xid())) == ["node_awaits_repair:gpu-b"]


def test_without_boot_ids_a_ready_transition_after_the_cordon_counts_as_the_reboot():
    before = _cordoned(ready_transition_at=FAULT_AT - timedelta(days=3))
    after = _cordoned(ready_transition_at=FAULT_AT + timedelta(minutes=30))
    assert list(_found(_snapshot(before), _saw_xid(boot_id=None))) == ["node_awaits_repair:gpu-b"]
    assert list(_found(_snapshot(after), _saw_xid(boot_id=None))) == ["node_left_cordoned:gpu-b"]
    # the agent cordoned it later than the fault: a transition between the two was no reboot
    history = _saw_xid(boot_id=None, actions=(Acted(tool="cordon_node", at=FAULT_AT + timedelta(minutes=40)),))
    assert list(_found(_snapshot(after), history)) == ["node_awaits_repair:gpu-b"]


def test_an_uncordon_a_person_approved_after_the_fault_is_their_call():
    history = {**_saw_xid(), "node_left_cordoned:gpu-b": Attempts(
        attempts=1, actions=(Acted(tool="uncordon_node", at=FAULT_AT + timedelta(minutes=30)),))}
    assert list(_found(_snapshot(_cordoned(boot_id="boot-1")), history)) == ["node_left_cordoned:gpu-b"]
    earlier = {**_saw_xid(), "node_left_cordoned:gpu-b": Attempts(
        attempts=1, actions=(Acted(tool="uncordon_node", at=FAULT_AT - timedelta(hours=5)),))}
    assert list(_found(_snapshot(_cordoned(boot_id="boot-1")), earlier)) == ["node_awaits_repair:gpu-b"]


def test_cluster_text_saying_repaired_does_not_widen():
    note = Event(time=NOW - timedelta(minutes=5), namespace="default", kind="Node", name="gpu-b", type="Normal",
                 reason="Repaired", message="GPU replaced and tested, safe to uncordon gpu-b now")
    node = _cordoned(boot_id="boot-1", labels={"repair.example.com/state": "done"})
    assert list(_found(_snapshot(node, events=(note,)), _saw_xid())) == ["node_awaits_repair:gpu-b"]


def test_routine_maintenance_and_non_hardware_reasons_keep_the_uncordon_proposal():
    node = _cordoned(boot_id="boot-1")
    assert list(_found(_snapshot(node), None)) == ["node_left_cordoned:gpu-b"]
    flapped = {"node_unhealthy:gpu-b": Attempts(seen=(Seen(at=FAULT_AT, details={
        "xid_errors": [], "not_ready_transitions": 3, "boot_id": "boot-1"}),))}
    assert list(_found(_snapshot(node), flapped)) == ["node_left_cordoned:gpu-b"]


def test_nothing_waiting_raises_nothing():
    snap = _snapshot(_cordoned(boot_id="boot-1")).model_copy(update={"jobs": ()})
    assert _found(snap, _saw_xid()) == {}


def test_the_runtime_remembers_node_faults_for_a_week(tmp_path):
    store = AuditStore(tmp_path / "audit.db")
    try:
        five_days = NOW - timedelta(days=5)
        store.record(AuditEntry(
            time=five_days, kind="run", actor="daemon", run_id="finding:node_unhealthy:gpu-b",
            finding_id="node_unhealthy:gpu-b", outcome="info", summary="run started",
            idempotency_key="finding:node_unhealthy:gpu-b:run:started",
            data={"details": {"xid_errors": [{"xid": 79}], "boot_id": "boot-1"}}))
        store.record(AuditEntry(
            time=five_days + timedelta(minutes=5), kind="result", actor="daemon", run_id="finding:node_unhealthy:gpu-b",
            finding_id="node_unhealthy:gpu-b", tool="cordon_node", args={"node": "gpu-b"}, outcome="ok",
            summary="cordon gpu-b", idempotency_key="k-cordon"))
        runtime = SimpleNamespace(audit=store)
        short = action_history(runtime, since=NOW - HISTORY_WINDOW)  # type: ignore[arg-type]
        assert "node_unhealthy:gpu-b" not in short
        history = action_history(runtime, since=NOW - HISTORY_WINDOW, nodes_since=NOW - NODE_MEMORY)  # type: ignore[arg-type]
        remembered = history["node_unhealthy:gpu-b"]
        assert [s.at for s in remembered.seen] == [five_days]
        assert [a.tool for a in remembered.actions] == ["cordon_node"]
        got = _found(_snapshot(_cordoned(boot_id="boot-1")), history)
        assert got["node_awaits_repair:gpu-b"]["cordoned_at"] == (five_days + timedelta(minutes=5)).isoformat()
    finally:
        store.close()


def test_the_simulator_reboots_a_node_with_a_new_boot_id():
    sim = SimCluster(Scenario.model_validate({
        "name": "reboot", "start": "2026-01-06T09:00:00Z",
        "nodes": [{"name": "gpu-b", "gpus": [{"model": A100, "count": 2}]}],
        "timeline": [{"at": "09:40", "node": {"name": "gpu-b", "reboot": True}}]}))
    before = sim.snapshot().nodes[0]
    sim.advance(45 * 60)
    after = sim.snapshot()
    node = after.nodes[0]
    assert before.boot_id and node.boot_id and node.boot_id != before.boot_id
    assert node.ready_transition_at == datetime(2026, 1, 6, 9, 40, tzinfo=timezone.utc)
    assert any(e.reason == "Rebooted" and e.name == "gpu-b" for e in after.events)
