"""A decision about one workload reads that workload, not the whole cluster, and decides the same.

Spec for `ReadsWorkloads.snapshot_of` (simulator, kube adapter over its watched
cache, the utilisation watch) and for the gate's use of it:
- the narrowed snapshot shows each named workload, its pods, its GPUs held, its
  quiet time, its autoscaler and the CEL facts exactly as the full snapshot does,
  across the demo day and the scenarios with autoscalers and disruption budgets;
- the policy's decision on the narrowed snapshot equals its decision on the full
  one for every workload, for the daemon's and a person's wake, sleep, scale,
  restart and undo calls, at several moments of the day (scope, intents, bounds,
  autoscaler ownership and rate limits all take part);
- on the kube adapter a narrowed snapshot asks the API server nothing once watching;
- the gate's decision and the tool that follows read the narrowed view (no full
  snapshot for a call on one workload), and a workload the cluster lacks still
  gets the full snapshot's "no workload" message naming the ones that exist;
- the daemon's internal API checks a wake's workload by looking it up, not by
  listing every workload.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from opsagent.cluster.sim import SimCluster, builtin_scenario
from opsagent.cluster.utilwatch import UtilisationWatch
from opsagent.evals import load_eval_scenario
from opsagent.model import Snapshot, ToolCall, WorkloadRef
from opsagent.policy import decide
from opsagent.policy.facts import Facts
from opsagent.policy.limits import NO_COUNTS
from opsagent.runtime import idle_threshold, open_policy, open_runtime, workloads_present
from tools import get_tool

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

CALLS = (
    ("wake_workload", {}, "wake-proxy", "wake-proxy"),
    ("wake_workload", {}, "daemon", "daemon"),
    ("sleep_workload", {}, "daemon", "daemon"),
    ("scale_workload", {"replicas": 2}, "daemon", "daemon"),
    ("scale_workload", {"replicas": 0}, "carol", "cli"),
    ("restart_rollout", {}, "daemon", "daemon"),
    ("undo_rollout", {}, "daemon", "daemon"),
)


def _facts_of(snapshot: Snapshot, ref: WorkloadRef, now: datetime, policy) -> dict:
    workload = snapshot.workload(ref)
    call = ToolCall(tool="wake_workload", args={"namespace": ref.namespace, "name": ref.name}, actor="daemon")
    facts = Facts(policy, call=call, risk="routine", target=get_tool("wake_workload").input_model.model_validate(call.args).target(),
                  snapshot=snapshot, now=now)
    return {
        "workload": workload, "pods": snapshot.pods_of(ref), "gpus_held": snapshot.gpus_held_by(ref),
        "quiet_since": snapshot.quiet_since(workload) if workload else None, "autoscaler": snapshot.autoscaler_of(ref),
        "cel": facts.context(),
    }


def _decisions(snapshot: Snapshot, ref: WorkloadRef, now: datetime, policy) -> list:
    out = []
    for tool_name, extra, actor, channel in CALLS:
        tool = get_tool(tool_name)
        args = {"namespace": ref.namespace, "name": ref.name, **extra}
        call = ToolCall(tool=tool_name, args=args, actor=actor, channel=channel)
        target = tool.input_model.model_validate(args).target()
        out.append(decide(policy, call=call, risk=tool.risk, target=target, snapshot=snapshot, now=now, counts=NO_COUNTS))
    return out


def _sims(*more: str) -> list[tuple[str, SimCluster]]:
    sims = [("demo", SimCluster(builtin_scenario("demo")))]
    for name in ("render-ui-idle-under-keda", "embedder-hpa-without-metrics", "gpu-b-drain-blocked-by-budget", *more):
        loaded = load_eval_scenario(REPO / "evals" / "scenarios" / f"{name}.yaml", repo=REPO)
        sims.append((name, SimCluster(loaded.sim, seed=loaded.spec.seed)))
    return sims


@pytest.fixture(scope="module")
def policy():
    return open_policy(REPO / "policies")


@pytest.mark.parametrize("hours", [0.0, 3.5, 9.0, 15.0])
def test_simulator_narrow_view_shows_the_same_facts_and_decides_the_same(policy, hours):
    compared = 0
    for _name, sim in _sims():
        sim.advance(hours * 3600)
        watch = UtilisationWatch(sim, idle_threshold(policy))
        full = watch.snapshot()
        now = sim.now
        for workload in full.workloads:
            narrow = watch.snapshot_of([workload.ref])
            assert [w.key for w in narrow.workloads] == [workload.key]
            assert len(narrow.pods) <= len(full.pods)
            assert _facts_of(narrow, workload.ref, now, policy) == _facts_of(full, workload.ref, now, policy), workload.key
            assert _decisions(narrow, workload.ref, now, policy) == _decisions(full, workload.ref, now, policy), workload.key
            compared += 1
    assert compared >= 8


def test_a_narrow_view_of_a_missing_workload_is_empty_and_keeps_the_others_low_gpu_memory(policy):
    sim = SimCluster(builtin_scenario("demo"))
    sim.advance(6 * 3600)
    watch = UtilisationWatch(sim, idle_threshold(policy))
    full = watch.snapshot()
    remembered = {w.key: w.low_gpu_since for w in full.workloads if w.low_gpu_since}
    assert watch.snapshot_of([WorkloadRef(namespace="nowhere", name="nothing")]).workloads == ()
    some = full.workloads[0]
    watch.snapshot_of([some.ref])
    again = watch.snapshot()
    assert {w.key: w.low_gpu_since for w in again.workloads if w.low_gpu_since} == remembered


def test_kube_narrow_view_from_the_cache_shows_the_same_facts_and_asks_the_server_nothing(policy):
    from kube_harness import Emulator
    from test_kube_read import NOW, seed_cluster

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    with Emulator() as emu:
        seed_cluster(emu)
        emu.seed({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                  "metadata": {"name": "dice-roller", "namespace": "default"},
                  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dice-roller"},
                           "minReplicas": 1, "maxReplicas": 4}})
        kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))
        kube.start_watching()
        try:
            full = kube.snapshot()
            seen = len(emu.requests())
            assert len(full.workloads) >= 3
            for workload in full.workloads:
                narrow = kube.snapshot_of([workload.ref])
                assert [w.key for w in narrow.workloads] == [workload.key]
                assert _facts_of(narrow, workload.ref, NOW, policy) == _facts_of(full, workload.ref, NOW, policy)
                assert _decisions(narrow, workload.ref, NOW, policy) == _decisions(full, workload.ref, NOW, policy)
            assert full.autoscaler_of("default/dice-roller") is not None
            assert any(full.gpus_held_by(w.ref) for w in full.workloads)   # GPU ids handed out per node are compared too
            later = [r for r in emu.requests()[seen:] if r["params"].get("watch") != "true"]
            assert later == []
        finally:
            kube.stop_watching()


class _Counting:
    """The simulator, counting full snapshots and narrowed ones."""

    def __init__(self, sim: SimCluster) -> None:
        self._sim = sim
        self.full = 0
        self.narrow = 0

    def snapshot(self) -> Snapshot:
        self.full += 1
        return self._sim.snapshot()

    def snapshot_of(self, refs) -> Snapshot:
        self.narrow += 1
        return self._sim.snapshot_of(refs)

    def __getattr__(self, name):
        return getattr(self._sim, name)


def test_the_gate_decides_and_acts_on_one_workload_without_a_full_snapshot(tmp_path):
    sim = SimCluster(builtin_scenario("demo"))
    sim.advance(3600)
    counting = _Counting(sim)
    rt = open_runtime(cluster_obj=counting, clock=sim.clock, policies=REPO / "policies", db=tmp_path / "a.db")
    awake = next(w for w in sim.snapshot().workloads if w.replicas > 0)
    result = rt.gate.submit(ToolCall(tool="sleep_workload", args={"namespace": awake.ref.namespace, "name": awake.ref.name},
                                     actor="carol", channel="cli"))
    assert result.decision is not None
    assert counting.full == 0 and counting.narrow >= 1
    missing = rt.gate.submit(ToolCall(tool="scale_workload", args={"namespace": awake.ref.namespace, "name": "nope", "replicas": 1},
                                      actor="carol", channel="cli"))
    assert counting.full >= 1   # a workload the cluster lacks: the whole snapshot, so the answer can name the others
    if missing.status == "error":
        assert awake.ref.name in missing.message


def test_workloads_present_looks_up_only_the_named_workloads():
    sim = SimCluster(builtin_scenario("demo"))
    counting = _Counting(sim)
    key = sim.snapshot().workloads[0].key
    assert workloads_present(counting, [key, "ghost/none"]) == {key}
    assert counting.full == 0 and counting.narrow == 1
    assert workloads_present(counting, ["not a key"]) is None


def test_daemon_internal_api_refuses_a_wake_for_a_workload_it_looks_up_and_cannot_find(tmp_path):
    from opsagent.daemon.internal import InternalApi

    sim = SimCluster(builtin_scenario("demo"))
    counting = _Counting(sim)
    rt = open_runtime(cluster_obj=counting, clock=sim.clock, policies=REPO / "policies", db=tmp_path / "b.db")
    token = "t" * 32
    api = InternalApi(token=token, gate=rt.gate, activity=None, present=lambda keys: workloads_present(counting, keys))
    status, body = api.handle("POST", "/v1/wake", {"Authorization": f"Bearer {token}"},
                              b'{"namespace": "ghost", "name": "none"}')
    assert status == 404 and "ghost/none" in body["error"]
    assert counting.full == 0


def test_narrow_time_is_the_simulator_clock():
    sim = SimCluster(builtin_scenario("demo"))
    view = sim.snapshot_of([sim.snapshot().workloads[0].ref])
    assert view.time == sim.now and view.time.tzinfo is not None
    assert view.time >= datetime(2000, 1, 1, tzinfo=timezone.utc)


def test_a_finding_about_one_workload_is_planned_verified_and_prompted_on_its_workload_alone(policy):
    """Detection, the playbook's view and the model's prompt read the same on the narrowed view (WORKLOAD_KINDS)."""
    from opsagent.agent.prompts import describe, subjects_for
    from opsagent.detect import WORKLOAD_KINDS, detect, workload_subject
    from opsagent.playbooks.context import playbook_context

    checked = set()
    for _name, sim in _sims("chat-ui-cold-wake"):
        for _ in range(12):
            sim.advance(3600)
            full = sim.snapshot()
            now = sim.now
            for finding in detect(full, intents=policy.intent_book, now=now):
                ref = workload_subject(finding)
                assert (ref is not None) == (finding.kind in WORKLOAD_KINDS)
                if ref is None:
                    continue
                narrow = sim.snapshot_of([ref])
                again = [f for f in detect(narrow, intents=policy.intent_book, now=now) if f.id == finding.id]
                assert again == [finding]
                assert playbook_context(finding, narrow) == playbook_context(finding, full)
                workloads = subjects_for(full, finding=finding, message=None)
                assert describe(narrow, subjects_for(narrow, finding=finding, message=None)) == describe(full, workloads)
                checked.add(finding.kind)
    assert {"idle_gpu", "rollout_failed", "wake_requested"} <= checked


def test_an_acting_cycle_reads_the_whole_cluster_once_to_detect_and_judges_each_finding_on_its_workload(tmp_path):
    """Twenty idle workloads in a cluster of many: one cycle sleeps them all; full snapshots do not grow with them."""
    sys.path.insert(0, str(REPO / "evals" / "bench"))
    from acting_cycle import IDLE, SimCounting, policies, scenario

    from opsagent.daemon import Daemon, DaemonOptions

    sim = SimCluster(scenario(200))
    sim.advance(3600)
    counting = SimCounting(sim)
    db = tmp_path / "ops.db"
    rt = open_runtime(cluster_obj=counting, clock=sim.clock, policies=policies(), db=db)
    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, sim_speed=0), runtime=rt)
    report = daemon.reconciler.cycle()
    slept = [a for a in report.actions if a.tool == "sleep_workload" and a.status == "ok"]
    assert len(slept) == IDLE
    assert counting.full <= 2   # detection at the start; once more when the queue is empty at the end
    assert counting.narrow >= IDLE
    assert all(sim.snapshot().workload(f"{a.args['namespace']}/{a.args['name']}").replicas == 0 for a in slept)
    quiet = daemon.reconciler.cycle()
    assert quiet.runs == [] and quiet.findings == []


def test_the_wake_proxy_looks_at_the_one_workload_it_is_asked_about(tmp_path):
    import threading

    from opsagent.wake import GateWaker

    sim = SimCluster(builtin_scenario("demo"))
    chat = WorkloadRef(namespace="chat", name="chat-ui")
    sim.scale(ref=chat, replicas=0)
    sim.advance(600)
    counting = _Counting(sim)
    rt = open_runtime(cluster_obj=counting, clock=sim.clock, policies=REPO / "policies", db=tmp_path / "w.db")
    waker = GateWaker(gate=rt.gate, observe=rt.observe, clock=rt.clock, lock=threading.Lock(),
                      look=rt.cluster.snapshot_of)
    awake = next(w.ref for w in sim.snapshot().workloads if w.replicas > 0 and w.ref != chat)
    assert waker.check_ready(awake) is True and waker.cached_ready(awake) is True
    assert waker.check_ready(chat) is False and not waker.is_missing(chat)
    ghost = WorkloadRef(namespace="chat", name="nothing-here")
    assert waker.check_ready(ghost) is False and waker.is_missing(ghost)
    result = waker.wake(chat, timeout=600)
    assert result.status == "ready", result.message
    assert waker.cached_ready(chat) is True
    assert counting.full == 0   # readiness, the decision, the scale and the wait all read the one workload
