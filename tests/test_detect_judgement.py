"""Detectors that judge incidents they were not written for.

Spec:
- incident identity: a rollout's retries count only the failing release (its
  trailing same-image revisions) and only since the finding was last resolved;
  a rollback in the incident means escalate, never more restarts;
- a person's rejection moves the stage: restart rejected → rollback, rollback
  rejected → escalate; a rejected pod deletion → the crash loop escalates;
- spec_conflict: templates no GPU can satisfy, or stricter than the intent;
- node_unhealthy (flapping, hardware XIDs, problem conditions) and
  node_left_cordoned, read from the simulator's snapshots;
- idle hysteresis: a workload woken soon after it was slept gets a longer
  window, reported in the finding;
- a rate-limit deny says when the limit frees up.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from detect_sample import NOW, gpu, intent, pod, workload
from judgement_harness import gpu_node, image

from opsagent.cluster.sim import Scenario, SimCluster
from opsagent.detect import Attempts, detect
from opsagent.detect.common import Acted, Rejection
from opsagent.model import (
    AuditEntry, GpuRequirement, Node, Revision, RolloutState, Snapshot, ToolCall)
from opsagent.policy.decide import decide
from opsagent.policy.limits import Counts
from tools import risk_table

EMB = "inference/embedder"
EMB_INTENT = intent("embedder", "inference", ["embedder"], rollout={"max_attempts": 3, "backoff": "2m"})


def _failing(revisions: list[tuple[int, str, int]]):
    """The embedder failing on its newest revision; `revisions` are (number, tag, minutes before NOW)."""
    history = tuple(Revision(revision=n, image=f"emb:{tag}", created_at=NOW - timedelta(minutes=m)) for n, tag, m in revisions)
    top = history[-1]
    wl = workload("inference", "embedder", replicas=1, gpus_per_replica=1, revision=top.revision, image=top.image,
                  rollout=RolloutState(status="failed", reason="ProgressDeadlineExceeded", revision=top.revision,
                                       since=NOW - timedelta(minutes=30)), history=history)
    return Snapshot(time=NOW, workloads=(wl,), nodes=(Node(name="gpu-a", gpus=(gpu("a0"),)),))


def _rollout(snap, history):
    [f] = [f for f in detect(snap, intents=[EMB_INTENT], now=NOW, history=history) if f.kind == "rollout_failed"]
    return f.details


def _acts(*pairs):
    return tuple(Acted(tool=t, at=NOW - timedelta(minutes=m)) for t, m in pairs)


# morning: 2.4.0 (revs 2-5: release + 3 restarts), rollback to 2.3 (rev 6); afternoon: 2.5.0 (rev 7) fails
AFTERNOON = [(1, "2.3", 600), (2, "2.4.0", 400), (3, "2.4.0", 390), (4, "2.4.0", 380), (5, "2.4.0", 370),
             (6, "2.3", 360), (7, "2.5.0", 20)]
MORNING_ACTS = _acts(("restart_rollout", 390), ("restart_rollout", 380), ("restart_rollout", 370),
                     ("undo_rollout", 360))


def test_a_new_release_is_a_new_incident_with_a_fresh_budget():
    d = _rollout(_failing(AFTERNOON), {f"rollout_failed:{EMB}": Attempts(attempts=4, actions=MORNING_ACTS)})
    assert d["attempts"] == 0 and d["next_action"] == "restart_rollout"
    assert d["incident_started_at"] == (NOW - timedelta(minutes=20)).isoformat()


def test_restarts_of_the_same_release_stay_in_one_incident():
    revisions = [(1, "2.3", 600), (2, "2.4.0", 40), (3, "2.4.0", 30), (4, "2.4.0", 20)]
    acts = _acts(("restart_rollout", 30), ("restart_rollout", 20))
    d = _rollout(_failing(revisions), {f"rollout_failed:{EMB}": Attempts(attempts=2, actions=acts)})
    assert d["attempts"] == 2 and d["next_action"] == "restart_rollout"
    acts3 = acts + _acts(("restart_rollout", 10))
    assert _rollout(_failing(revisions), {f"rollout_failed:{EMB}": Attempts(attempts=3, actions=acts3)})["next_action"] \
        == "undo_rollout"


def test_a_failure_after_recovery_starts_afresh():
    revisions = [(1, "2.3", 600), (2, "2.4.0", 300)]  # the same release, it recovered, then failed again
    acts = _acts(("restart_rollout", 250), ("restart_rollout", 240), ("restart_rollout", 230))
    seen = Attempts(attempts=3, actions=acts, resolved_at=NOW - timedelta(minutes=200))
    d = _rollout(_failing(revisions), {f"rollout_failed:{EMB}": seen})
    assert d["attempts"] == 0 and d["next_action"] == "restart_rollout"


def test_a_failing_rollback_is_never_followed_by_restarts():
    revisions = [(1, "2.3", 600), (2, "2.4.0", 40), (3, "2.3", 10)]  # the rollback to 2.3 fails too
    acts = _acts(("undo_rollout", 10))
    d = _rollout(_failing(revisions), {f"rollout_failed:{EMB}": Attempts(attempts=1, actions=acts)})
    assert d["next_action"] == "escalate"


@pytest.mark.parametrize("refused, expected", [
    (("restart_rollout",), "undo_rollout"),
    (("restart_rollout", "undo_rollout"), "escalate"),
    (("undo_rollout",), "restart_rollout"),  # retries left: the rollback is only refused when it comes
])
def test_a_rejection_moves_the_rollout_to_its_next_stage(refused, expected):
    rejected = tuple(Rejection(tool=t, by="dave", reason="exec format error; roll it back", at=NOW - timedelta(minutes=5))
                     for t in refused)
    d = _rollout(_failing([(1, "2.3", 600), (2, "2.4.0", 30)]),
                 {f"rollout_failed:{EMB}": Attempts(rejected=rejected)})
    assert d["next_action"] == expected
    assert [r["tool"] for r in d["rejected"]] == list(refused) and d["rejected"][0]["by"] == "dave"


def test_a_rejection_from_an_earlier_incident_is_forgotten():
    old = Rejection(tool="restart_rollout", by="dave", reason="no", at=NOW - timedelta(minutes=300))
    d = _rollout(_failing(AFTERNOON), {f"rollout_failed:{EMB}": Attempts(rejected=(old,))})
    assert d["next_action"] == "restart_rollout" and d["rejected"] == []


def test_a_rejected_pod_deletion_escalates_the_crash_loop():
    wl = workload("batch", "worker", replicas=1, gpus_per_replica=1, revision=5,
                  history=(Revision(revision=5, image="w:1", created_at=NOW - timedelta(hours=3)),))
    crashing = pod("batch", "worker-1", "worker", gpu_ids=["a0"], phase="Running", reason="CrashLoopBackOff", restarts=7,
                   revision=5)
    snap = Snapshot(time=NOW, workloads=(wl,), pods=(crashing,), nodes=(Node(name="gpu-a", gpus=(gpu("a0"),)),))
    no = Rejection(tool="delete_pod", by="carol", reason="it holds a checkpoint", at=NOW - timedelta(minutes=5))
    [f] = [f for f in detect(snap, intents=[], now=NOW, history={"crashloop:batch/worker": Attempts(rejected=(no,))})
           if f.kind == "crashloop"]
    assert f.details["attempts"] == 1 and f.details["rejected"][0]["reason"] == "it holds a checkpoint"


# --- spec_conflict --------------------------------------------------------------------------

LLM_INTENT = intent("llm", "inference", ["llm"], placement={"gpus": 2, "min_link_width": 16, "coherent": True})
NODES = (Node(name="gpu-a", gpus=(gpu("a0"), gpu("a1"), gpu("a2", link=4, switch="1"), gpu("a3", link=4, switch="1"))),)


def _conflicts(*workloads):
    snap = Snapshot(time=NOW, workloads=workloads, nodes=NODES)
    return {f.subject: f.details for f in detect(snap, intents=[LLM_INTENT], now=NOW) if f.kind == "spec_conflict"}


def test_a_template_wider_than_any_gpu_and_than_its_intent_is_a_conflict_with_the_intents_fix():
    found = _conflicts(workload("inference", "llm", gpus_per_replica=2,
                                gpu_requirement=GpuRequirement(min_link_width=32, coherent=True)))
    d = found["inference/llm"]
    assert any("x32" in p and "x16" in p for p in d["problems"])
    assert d["widest_link"] == 16 and d["proposed_placement"] == {"min_link_width": 16, "coherent": True}


@pytest.mark.parametrize("wl, problem", [
    (workload("inference", "big", gpus_per_replica=8), "any node has at most 4"),
    (workload("inference", "tp", gpus_per_replica=3, tensor_parallel=True,
              gpu_requirement=GpuRequirement(coherent=True)), "one switch group has at most 2"),
])
def test_more_gpus_per_replica_than_any_node_or_switch_group_holds(wl, problem):
    d = _conflicts(wl)[wl.key]
    assert any(problem in p for p in d["problems"]) and d["proposed_placement"] is None


def test_satisfiable_templates_are_no_conflict():
    assert _conflicts(
        workload("inference", "llm", gpus_per_replica=2, gpu_requirement=GpuRequirement(min_link_width=16)),
        workload("inference", "small", gpus_per_replica=1, gpu_requirement=GpuRequirement(min_link_width=8)),
        workload("web", "api", gpus_per_replica=0),
    ) == {}


# --- nodes, on the simulator --------------------------------------------------------------

def _sim(timeline, *, nodes=None, workloads=None):
    sim = SimCluster(Scenario.model_validate({
        "name": "nodes", "nodes": nodes or [gpu_node("gpu-a"), gpu_node("gpu-b")],
        "workloads": workloads or [{"namespace": "render", "name": "render-ui", "image": image("render/render-ui", "1"),
                                    "gpus": 1, "traffic": {"peak_rps": 5, "curve": "flat"}}],
        "timeline": timeline}))
    return sim


def _node_findings(sim, minutes):
    sim.advance(minutes * 60)
    snap = sim.snapshot()
    return {f.id: f.details for f in detect(snap, intents=[], now=sim.clock.now())
            if f.kind in ("node_unhealthy", "node_left_cordoned")}


def test_a_flapping_node_is_unhealthy_and_a_single_blip_is_not():
    flaps = [{"at": f"+{m}m", "node": {"name": "gpu-b", "ready": m % 2 == 0}} for m in (1, 2, 3, 4)]
    found = _node_findings(_sim(flaps), 6)
    assert found["node_unhealthy:gpu-b"]["not_ready_transitions"] == 2
    one = [{"at": "+1m", "node": {"name": "gpu-b", "ready": False}}, {"at": "+2m", "node": {"name": "gpu-b", "ready": True}}]
    assert _node_findings(_sim(one), 6) == {}


@pytest.mark.parametrize("xid, unhealthy", [(79, True), (48, True), (13, False), (31, False)])
def test_hardware_xids_make_a_node_unhealthy_application_xids_do_not(xid, unhealthy):
    found = _node_findings(_sim([{"at": "+1m", "node": {"name": "gpu-a", "xid": xid, "gpu": 1}}]), 3)
    assert ("node_unhealthy:gpu-a" in found) is unhealthy
    if unhealthy:
        assert found["node_unhealthy:gpu-a"]["xid_errors"][0]["xid"] == xid


def test_a_problem_condition_counts_until_cleared_and_a_cordoned_node_is_left_alone():
    cond = {"type": "GpuXidError", "reason": "Xid79", "message": "GPU has fallen off the bus"}
    sim = _sim([{"at": "+1m", "node": {"name": "gpu-b", "condition": cond}},
                {"at": "+10m", "node": {"name": "gpu-b", "condition": {"type": "GpuXidError", "clear": True}}}])
    assert _node_findings(sim, 3)["node_unhealthy:gpu-b"]["conditions"][0]["type"] == "GpuXidError"
    assert sim.snapshot().node("gpu-b").conditions[0].reason == "Xid79"
    assert _node_findings(sim, 10) == {}
    sim = _sim([{"at": "+1m", "node": {"name": "gpu-b", "condition": cond}}, {"at": "+2m", "node": {"name": "gpu-b", "cordon": True}}])
    assert _node_findings(sim, 3) == {}


def test_a_healthy_cordoned_node_with_pods_waiting_for_its_gpus_is_a_leftover():
    workloads = [{"namespace": "render", "name": "render-ui", "image": image("render/render-ui", "1"), "gpus": 1,
                  "replicas": 2, "traffic": {"peak_rps": 5, "curve": "flat"}}]
    nodes = [gpu_node("gpu-a", count=1), gpu_node("gpu-b", count=2, cordoned=True)]
    found = _node_findings(_sim([], nodes=nodes, workloads=workloads), 5)
    assert found["node_left_cordoned:gpu-b"]["free_gpus"] == 2 and len(found["node_left_cordoned:gpu-b"]["pending_pods"]) == 1
    # nobody waiting: nothing to say; a reason still showing (a condition): leave it cordoned
    assert _node_findings(_sim([], nodes=nodes, workloads=[{**workloads[0], "replicas": 1}]), 5) == {}
    sick = [{"at": "+1m", "node": {"name": "gpu-b", "condition": {"type": "KernelDeadlock"}}}]
    assert "node_left_cordoned:gpu-b" not in _node_findings(_sim(sick, nodes=nodes, workloads=workloads), 5)


def test_a_queued_job_waiting_for_a_cordoned_healthy_nodes_gpus_is_a_leftover_too():
    nodes = [gpu_node("gpu-a", count=1), gpu_node("gpu-b", count=2, cordoned=True)]
    job = [{"at": "+1m", "job": {"namespace": "training", "name": "finetune-12", "gpus": 2, "duration": "2h"}}]
    found = _node_findings(_sim(job, nodes=nodes), 5)
    assert found["node_left_cordoned:gpu-b"]["queued_jobs"] == ["training/finetune-12"]
    assert found["node_left_cordoned:gpu-b"]["pending_pods"] == []
    # a job wider than the cordoned node's free GPUs is not waiting for that node
    wide = [{"at": "+1m", "job": {"namespace": "training", "name": "finetune-12", "gpus": 4, "duration": "2h"}}]
    assert _node_findings(_sim(wide, nodes=nodes), 5) == {}


def test_a_rollout_whose_new_pods_cannot_be_placed_skips_the_restarts():
    llm = {"namespace": "inference", "name": "llm", "image": image("inference/llm", "5.0.2"), "gpus": 2,
           "tensor_parallel": True, "traffic": {"peak_rps": 5, "curve": "flat"}}
    for count, expected in ((2, "undo_rollout"), (4, "restart_rollout")):
        sim = _sim([{"at": "+1m", "rollout": {"workload": "inference/llm", "image": image("inference/llm", "5.0.3")}}],
                   nodes=[gpu_node("gpu-a", count=count)],
                   workloads=[{**llm, "failures": [{"image": image("inference/llm", "5.0.3"), "mode": "slow"}]}])
        sim.advance(40 * 60)  # past the progress deadline
        snap = sim.snapshot()
        [f] = [f for f in detect(snap, intents=[], now=sim.clock.now()) if f.kind == "rollout_failed"]
        assert f.details["next_action"] == expected, (count, f.details)
        assert bool(f.details["unschedulable_pods"]) is (count == 2)


def test_kube_node_conditions_other_than_ready_that_hold_are_read():
    from opsagent.cluster.kube.read import _problem_conditions

    status = {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"},
        {"type": "EtcdIsVoter", "status": "True", "reason": "MemberNotLearner"},  # a fact, not a problem
        {"type": "GpuXidError", "status": "True", "reason": "Xid79", "message": "fallen off the bus",
         "lastTransitionTime": "2026-01-05T09:00:00Z"}]}
    [cond] = _problem_conditions(status)
    assert (cond.type, cond.reason) == ("GpuXidError", "Xid79") and cond.since is not None


# --- idle hysteresis ----------------------------------------------------------------------

UI_INTENT = intent("ui", "render", ["ui"], replicas={"min": 0, "max": 2}, idle={"after": "30m"})


def _idle(woken_minutes_ago, history):
    wl = workload("render", "ui", replicas=1, gpus_per_replica=1, request_rate=0.0,
                  last_request_at=NOW - timedelta(minutes=woken_minutes_ago + 1))
    p = pod("render", "ui-1", "ui", gpu_ids=["a0"], started=NOW - timedelta(minutes=woken_minutes_ago), phase="Running",
            ready=True)
    snap = Snapshot(time=NOW, workloads=(wl,), pods=(p,), nodes=(Node(name="gpu-a", gpus=(gpu("a0", holder="render/ui-1"),)),))
    return {f.id: f.details for f in detect(snap, intents=[UI_INTENT], now=NOW, history=history) if f.kind == "idle_gpu"}


def test_woken_soon_after_sleeping_stretches_the_idle_window_and_says_so():
    slept = {"idle_gpu:render/ui": Attempts(attempts=1, actions=_acts(("sleep_workload", 50)))}  # woken 10 min later
    assert _idle(40, {}) != {}                       # no memory: 30 minutes is enough
    assert _idle(40, slept) == {}                    # slept 50 min ago, woken 40 min ago: the window is 60 now
    d = _idle(61, {"idle_gpu:render/ui": Attempts(attempts=1, actions=_acts(("sleep_workload", 70)))})["idle_gpu:render/ui"]
    assert d["idle_after_minutes"] == 60.0 and d["hysteresis"]["factor"] == 2
    assert d["hysteresis"]["base_idle_after_minutes"] == 30.0
    twice = {"idle_gpu:render/ui": Attempts(attempts=2, actions=_acts(("sleep_workload", 300), ("sleep_workload", 70)))}
    assert _idle(61, twice) == {}                    # two sleeps today: four times the window


def test_a_wake_long_after_the_sleep_is_no_flap():
    late = {"idle_gpu:render/ui": Attempts(attempts=1, actions=_acts(("sleep_workload", 200)))}  # woken 160 min later
    d = _idle(40, late)["idle_gpu:render/ui"]
    assert d["hysteresis"] is None and d["idle_after_minutes"] == 30.0


# --- rate limits say when ------------------------------------------------------------------

def test_a_rate_limit_deny_says_when_the_limit_frees_up():
    from opsagent.policy import load_policy
    from tools import REGISTRY

    policy = load_policy(__import__("pathlib").Path(__file__).resolve().parents[1] / "policies", tool_risks=risk_table())
    made = [AuditEntry(time=NOW - timedelta(minutes=50 - i), kind="result", actor="carol", tool="scale_workload",
                       args={"namespace": "render", "name": "render-batch", "replicas": 2}, outcome="ok")
            for i in range(10)]
    call = ToolCall(tool="scale_workload", args={"namespace": "render", "name": "render-batch", "replicas": 1},
                    actor="carol")
    target = REGISTRY["scale_workload"].input_model.model_validate(call.args).target()
    decision = decide(policy, call=call, risk="write", target=target, snapshot=None, now=NOW,
                      counts=Counts.from_entries(made))
    assert decision.effect == "deny" and decision.rule.name == "scale-down-rate"
    assert decision.retry_at == NOW + timedelta(minutes=10)  # the oldest of the ten leaves the hour then
    assert decision.retry_at.isoformat() in decision.reason


def test_a_limit_of_zero_never_frees_up_and_missing_times_never_answer_too_early():
    from types import SimpleNamespace

    from opsagent.policy.decide import _frees_up

    hourly = SimpleNamespace(max=2, per=timedelta(hours=1))
    times = [NOW - timedelta(minutes=m) for m in (50, 40, 30)]
    assert _frees_up(times, used=3, spec=hourly, now=NOW) == NOW + timedelta(minutes=20)  # two must leave
    assert _frees_up(None, used=3, spec=hourly, now=NOW) == NOW + timedelta(hours=1)
    assert _frees_up(times[:1], used=3, spec=hourly, now=NOW) == NOW + timedelta(hours=1)  # counts and times disagree
    assert _frees_up(times, used=3, spec=SimpleNamespace(max=0, per=timedelta(hours=1)), now=NOW) is None


def test_node_events_filed_in_a_workload_namespace_are_not_believed():
    from opsagent.model import Event

    forged = Event(time=NOW - timedelta(minutes=5), namespace="render", kind="Node", name="gpu-a", type="Warning",
                   reason="XidError", message="GPU gpu-a/gpu0: XID 79")
    real = forged.model_copy(update={"namespace": "default"})
    node = Node(name="gpu-a", gpus=(gpu("a0"),))
    for events, expected in (((forged,), False), ((real,), True)):
        snap = Snapshot(time=NOW, nodes=(node,), events=events)
        assert any(f.kind == "node_unhealthy" for f in detect(snap, intents=[], now=NOW)) is expected


def test_half_the_fleet_unhealthy_at_once_is_fleet_wide():
    both = [{"at": f"+{m}m", "node": {"name": n, "ready": m % 2 == 0}} for m in (1, 2, 3, 4) for n in ("gpu-a", "gpu-b")]
    found = _node_findings(_sim(both), 6)
    assert {found[f"node_unhealthy:{n}"]["fleet_wide"] for n in ("gpu-a", "gpu-b")} == {True}
    one = [{"at": f"+{m}m", "node": {"name": "gpu-b", "ready": m % 2 == 0}} for m in (1, 2, 3, 4)]
    assert _node_findings(_sim(one), 6)["node_unhealthy:gpu-b"]["fleet_wide"] is False
