"""Every shipped playbook, chosen for its finding on the simulator and run to the outcome it promises.

Spec: for each playbook in playbooks/*.yaml there is a small simulated
cluster, governed by the shipped policy, in which that playbook is the one
chosen for a finding. Run by the offline planner, and again by the LLM
planner over a scripted model that answers with the playbook's next step:

- an acting playbook resolves its finding with the write it names: its
  verify check holds and the finding is gone. An architectural step waits
  for a person, and nothing changes until a platform lead approves it;
- a read-only playbook (protected, escalate, diagnose) looks, changes
  nothing and ends unresolved; the finding stays open, and the next
  reconcile hands it to a person in a report naming it instead of trying
  again;
- a wait playbook starts no run and asks no model.

A playbook without a case here fails the suite, so a new playbook comes with
its proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

import pytest
from sim_harness import Stage, failing, node, rollout_to, stage, workload

from opsagent.agent import Agent, RunReport
from opsagent.cluster.sim import SimCluster
from opsagent.detect import Attempts
from opsagent.detect.common import Seen
from opsagent.evals.planners import PlaybookModelPlanner
from opsagent.model import Finding
from opsagent.playbooks import Playbook, load_playbooks, target_context, verify
from tools import get_tool

REPO = Path(__file__).resolve().parents[1]
PLAYBOOKS = load_playbooks(REPO / "playbooks")

Outcome = Literal["resolves", "resolves_after_approval", "hands_off", "waits"]


@dataclass(frozen=True)
class Case:
    finding: str                      # the id of the finding the playbook answers
    outcome: Outcome
    scenario: dict[str, Any]
    minutes: float = 5                # simulated time before the agent looks
    write: str | None = None          # the tool an acting playbook changes the cluster with
    history: dict[str, Attempts] = field(default_factory=dict)  # what the daemon remembers acting on
    prepare: Callable[[SimCluster], None] | None = None


def _fault_stays_in_running_pods(ref: str) -> Callable[[SimCluster], None]:
    """The crash comes from state in the running pods (a bad cache, a wedged device), not the template.

    The simulator ties a crash to a revision; clearing it on the revision once
    the pods loop leaves those pods broken and lets their replacements start
    cleanly: the case deleting a pod is meant for.
    """
    def prepare(sim: SimCluster) -> None:
        sim.workloads[ref].current().fail_mode = None

    return prepare


EMBEDDER, TRAINER, LLM = "inference/embedder", "training/trainer", "inference/llm"
ONE_NODE = [node((2, 16, "0"))]
CRASH_ON_START = [{"revision": 1, "mode": "crash"}]  # the first revision's pods crash from the start


def _bad_release(ref: str, mode: str) -> dict[str, Any]:
    """`ref` runs 1.0 and gets 2.0 a minute in; 2.0 fails in `mode`."""
    return {"nodes": ONE_NODE, "timeline": [rollout_to(ref, "2.0")],
            "workloads": [workload(ref, gpus=1, failures=failing(ref, "2.0", mode))]}


CASES: dict[str, Case] = {
    "idle-gpu-sleep": Case(
        "idle_gpu:render/render-ui", "resolves", write="sleep_workload", minutes=40,
        scenario={"nodes": ONE_NODE, "workloads": [workload("render/render-ui", gpus=1)]}),
    "wake-prewarm": Case(
        f"wake_requested:{LLM}", "resolves", write="wake_workload", minutes=10,
        scenario={"start": "2026-01-05T07:55:00Z", "nodes": ONE_NODE,  # Monday; the window opens at 08:00
                  "workloads": [workload(LLM, gpus=2, replicas=0, tensor_parallel=True)]}),
    "wake-on-request": Case(
        "wake_requested:chat/chat-ui", "resolves", write="wake_workload", minutes=2,
        scenario={"nodes": ONE_NODE, "workloads": [workload("chat/chat-ui", gpus=1, replicas=0)],
                  "timeline": [{"at": "+1m", "requests": {"workload": "chat/chat-ui", "count": 3}}]}),
    "drift-replicas": Case(
        f"drift:{EMBEDDER}", "resolves", write="scale_workload",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, replicas=6)]}),  # intent: 1..4
    "drift-placement": Case(
        f"drift:{LLM}", "resolves_after_approval", write="set_gpu_placement",
        # not tensor-parallel, so placement is drift's; the first free pair is on x4 links
        scenario={"nodes": [node((2, 4, "1"), (2, 16, "0"))], "workloads": [workload(LLM, gpus=2)]}),
    "topology-coherent-placement": Case(
        f"topology_mismatch:{LLM}", "resolves_after_approval", write="set_gpu_placement",
        # the first free pair is one x16 and one x4 card behind different switches
        scenario={"nodes": [node((1, 16, "0"), (1, 4, "1"), (2, 16, "0"))],
                  "workloads": [workload(LLM, gpus=2, tensor_parallel=True)]}),
    "jobs-waiting-free-idle": Case(
        "jobs_waiting:cluster", "resolves", write="sleep_workload", minutes=40,
        scenario={"nodes": ONE_NODE, "workloads": [workload("render/render-ui", gpus=1)],
                  "jobs": [{"namespace": "training", "name": "finetune", "gpus": 2, "duration": "4h", "at": "+1m"}]}),
    "unschedulable-diagnose": Case(
        f"unschedulable_gpu:{EMBEDDER}", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=4)]}),  # 4 GPUs wanted, 2 exist
    "rollout-protected": Case(
        f"rollout_failed:{TRAINER}", "hands_off", minutes=4, scenario=_bad_release(TRAINER, "crash")),
    "rollout-wait": Case(  # 90 s after the release: the first retry waits 2 minutes
        f"rollout_failed:{EMBEDDER}", "waits", minutes=2.5, scenario=_bad_release(EMBEDDER, "crash")),
    "rollout-retry": Case(
        f"rollout_failed:{EMBEDDER}", "resolves", write="restart_rollout", minutes=4,
        scenario=_bad_release(EMBEDDER, "transient")),
    "rollout-rollback": Case(
        f"rollout_failed:{EMBEDDER}", "resolves", write="undo_rollout", minutes=4,
        history={f"rollout_failed:{EMBEDDER}": Attempts(attempts=3)},  # three restarts did not help
        scenario=_bad_release(EMBEDDER, "crash")),
    "rollout-escalate": Case(
        f"rollout_failed:{EMBEDDER}", "hands_off", minutes=4,
        history={f"rollout_failed:{EMBEDDER}": Attempts(attempts=4)},  # the restarts and the one rollback
        scenario=_bad_release(EMBEDDER, "crash")),
    "crashloop-protected": Case(
        f"crashloop:{TRAINER}", "hands_off", minutes=4,
        scenario={"nodes": ONE_NODE, "workloads": [workload(TRAINER, gpus=1, failures=CRASH_ON_START)]}),
    "crashloop-delete-once": Case(
        f"crashloop:{EMBEDDER}", "resolves", write="delete_pod", minutes=4,
        prepare=_fault_stays_in_running_pods(EMBEDDER),
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, failures=CRASH_ON_START)]}),
    "crashloop-escalate": Case(
        f"crashloop:{EMBEDDER}", "hands_off", minutes=4,
        history={f"crashloop:{EMBEDDER}": Attempts(attempts=1)},  # the pod was deleted once already
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, failures=CRASH_ON_START)]}),
    "spec-conflict-propose-placement": Case(
        f"spec_conflict:{LLM}", "resolves_after_approval", write="set_gpu_placement",
        # the template asks for x32 links (no GPU has them); the intent declares x16
        scenario={"nodes": ONE_NODE, "workloads": [
            workload(LLM, gpus=2, gpu_requirement={"min_link_width": 32, "coherent": True})]}),
    "spec-conflict-report": Case(
        f"spec_conflict:{EMBEDDER}", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=4)]}),  # 4 per replica, 2 on the node
    "node-unhealthy-cordon": Case(
        "node_unhealthy:gpu-b", "resolves_after_approval", write="cordon_node", minutes=6,
        scenario={"nodes": [node((2, 16, "0")), node((2, 16, "0"), name="gpu-b")],
                  "workloads": [workload("render/render-ui", gpus=1)],
                  "timeline": [{"at": f"+{m}m", "node": {"name": "gpu-b", "ready": m % 2 == 0}} for m in (1, 2, 3, 4)]}),
    "node-unhealthy-fleet-wide": Case(
        "node_unhealthy:gpu-b", "hands_off", minutes=6,
        scenario={"nodes": [node((2, 16, "0")), node((2, 16, "0"), name="gpu-b")],
                  "workloads": [workload("render/render-ui", gpus=1)],
                  "timeline": [{"at": f"+{m}m", "node": {"name": n, "ready": m % 2 == 0}}
                               for m in (1, 2, 3, 4) for n in ("gpu-a", "gpu-b")]}),
    "node-left-cordoned-uncordon": Case(
        "node_left_cordoned:gpu-b", "resolves_after_approval", write="uncordon_node",
        scenario={"nodes": [node((1, 16, "0")), {**node((2, 16, "0"), name="gpu-b"), "cordoned": True}],
                  "workloads": [workload("render/render-ui", gpus=1, replicas=2)]}),
    "node-awaits-repair-hand-over": Case(
        # the agent saw XID 79 on gpu-b two hours ago (boot id as the sim starts); it has not rebooted since
        "node_awaits_repair:gpu-b", "hands_off",
        scenario={"nodes": [node((1, 16, "0")), {**node((2, 16, "0"), name="gpu-b"), "cordoned": True}],
                  "workloads": [workload("render/render-ui", gpus=1, replicas=2)]},
        history={"node_unhealthy:gpu-b": Attempts(seen=(Seen(at=datetime(2026, 1, 5, 7, tzinfo=timezone.utc), details={
            "xid_errors": [{"xid": 79}], "boot_id": "gpu-b-boot-0"}),))}),
    "node-maintenance-drain": Case(
        "node_needs_drain:gpu-b", "resolves_after_approval", write="drain_node", minutes=3,
        scenario={"nodes": [node((2, 16, "0"), name="gpu-b"), node((2, 16, "0"))],
                  "workloads": [workload("render/render-ui", gpus=1)],
                  "disruption_budgets": [{"namespace": "render", "name": "render-ui", "max_unavailable": 1,
                                          "selector": {}}],
                  "timeline": [{"at": "+1m", "node": {"name": "gpu-b", "cordon": True}},
                               {"at": "+1m", "node": {"name": "gpu-b", "condition": {"type": "GpuXidError"}}}]}),
    "node-maintenance-blocked-hand-over": Case(
        "node_needs_drain:gpu-b", "hands_off", minutes=3,
        scenario={"nodes": [node((2, 16, "0"), name="gpu-b"), node((2, 16, "0"))],
                  "workloads": [workload("render/render-ui", gpus=1, labels={"app": "render-ui"})],
                  "disruption_budgets": [{"namespace": "render", "name": "render-ui", "min_available": 1,
                                          "selector": {"app": "render-ui"}}],
                  "timeline": [{"at": "+1m", "node": {"name": "gpu-b", "cordon": True}},
                               {"at": "+1m", "node": {"name": "gpu-b", "condition": {"type": "GpuXidError"}}}]}),
    "autoscaler-stuck-hand-over": Case(
        f"autoscaler_stuck:{EMBEDDER}", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, traffic={"peak_rps": 30, "curve": "flat"})],
                  "autoscalers": [{"workload": EMBEDDER, "min_replicas": 1, "max_replicas": 2,
                                   "failure": "missing_metrics"}]}),
    "image-pull-roll-back": Case(
        f"image_pull_failed:{EMBEDDER}", "resolves", write="set_image", minutes=4,
        scenario=_bad_release(EMBEDDER, "bad_image")),
    "image-pull-hand-over": Case(
        f"image_pull_failed:{EMBEDDER}", "hands_off", minutes=4,
        scenario=_bad_release(EMBEDDER, "pull_unauthorized")),
    "oom-propose-memory-limit": Case(
        f"out_of_memory:{EMBEDDER}", "resolves_after_approval", write="set_resources",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, memory_mib=8192, memory_use_mib=11000)]}),
    "gpu-oom-propose-more-gpus": Case(
        f"out_of_memory:{EMBEDDER}", "resolves_after_approval", write="set_resources",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, tensor_parallel=True, gpu_memory_mib=100000)]}),
    "oom-report": Case(
        f"out_of_memory:{EMBEDDER}", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, gpu_memory_mib=100000)]}),
    "not-ready-propose-probe": Case(
        f"not_ready:{EMBEDDER}", "resolves_after_approval", write="set_probe",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, probes={
            "readiness": {"path": "/ready"}, "liveness": {"path": "/health", "initial_delay": "120s"}})]}),
    "not-ready-report": Case(
        f"not_ready:{EMBEDDER}", "hands_off", minutes=25,
        scenario={"start_warm": False, "nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, cold_start={"model_load": "10h"},
                                                            probes={"readiness": {"path": "/health"}})]}),
    "config-missing-hand-over": Case(
        f"config_missing:{EMBEDDER}", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, needs={"secrets": ["hf-token"]})]}),
    "volume-pending-hand-over": Case(
        "volume_pending:inference/model-cache", "hands_off", minutes=10,
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, needs={"volume_claims": ["model-cache"]})],
                  "volume_claims": [{"namespace": "inference", "name": "model-cache", "storage_class": "fast-nvme",
                                     "failure": "storage_class_missing"}]}),
    "quota-exceeded-hand-over": Case(
        f"quota_exceeded:{EMBEDDER}", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, replicas=2)],
                  "quotas": [{"namespace": "inference", "name": "gpu-quota", "gpus": 1}]}),
    "service-without-endpoints-hand-over": Case(
        "service_without_endpoints:inference/embedder", "hands_off",
        scenario={"nodes": ONE_NODE, "workloads": [workload(EMBEDDER, gpus=1, labels={"app": "embedder"})],
                  "services": [{"namespace": "inference", "name": "embedder", "selector": {"app": "embeder"},
                                "ports": [{"port": 80, "target_port": 8080}]}]}),
}


def test_every_case_is_a_shipped_playbook():
    assert set(CASES) <= {p.name for p in PLAYBOOKS}, set(CASES) - {p.name for p in PLAYBOOKS}


@pytest.mark.parametrize("planner", ["offline", "llm"])
@pytest.mark.parametrize("name", [p.name for p in PLAYBOOKS])
def test_playbook_does_what_it_promises_on_the_simulator(name, planner, tmp_path):
    case = CASES.get(name)
    assert case is not None, f"playbook {name} has no simulator case: add one to CASES in {Path(__file__).name}"
    st = stage(tmp_path, case.scenario, minutes=case.minutes, history=case.history, prepare=case.prepare)
    try:
        finding = st.finding(case.finding)
        assert finding is not None, [f.id for f in st.detect(st.sim.snapshot())]
        chosen = PLAYBOOKS.for_finding(finding, st.sim.snapshot())
        assert chosen is not None and chosen.name == name, (getattr(chosen, "name", None), finding.details)
        agent = st.agent("offline" if planner == "offline" else PlaybookModelPlanner())
        try:
            report = agent.handle_finding(finding)
            OUTCOMES[case.outcome](case, st, agent, report, chosen, finding)
            if case.outcome != "waits":
                _ran_with(planner, report)
        finally:
            agent.close()
        assert st.world.store.verify().ok
    finally:
        st.close()


def _ran_with(planner: str, report: RunReport) -> None:
    if planner == "offline":
        assert report.planner == "offline" and report.llm_calls == 0
    else:
        assert report.planner == "llm:scripted" and report.llm_calls > 0 and not report.fell_back, report


def _resolves(case: Case, st: Stage, agent: Agent, report: RunReport, chosen: Playbook, finding: Finding) -> None:
    assert report.status == "done" and report.resolved is True, report
    assert [a.tool for a in report.actions if a.status == "ok" and _is_write(a.tool)] == [case.write], report.actions
    assert st.writes(), "the playbook's write never reached the cluster"
    assert st.finding(case.finding) is None, "the finding is still reported"
    snapshot = st.sim.snapshot()
    assert verify(chosen, finding=finding, target=target_context(finding, snapshot), finding_open=False)


def _resolves_after_approval(case: Case, st: Stage, agent: Agent, report: RunReport, chosen: Playbook,
                             finding: Finding) -> None:
    assert report.status == "waiting_approval" and report.pending_approvals, report
    assert st.writes() == [], "an architectural change reached the cluster before a person approved it"
    [approval] = [st.world.queue.get(i) for i in report.pending_approvals]
    assert approval.call.tool == case.write and "group:platform-leads" in approval.approvers
    [report] = st.world.approve_waiting(agent)
    people = {"alice", "bob", "carol", "dave"} if case.write in ("cordon_node", "uncordon_node") else {"alice", "bob"}
    assert st.world.queue.get(approval.id).decided_by in people
    _resolves(case, st, agent, report, chosen, finding)


def _hands_off(case: Case, st: Stage, agent: Agent, report: RunReport, *_: Any) -> None:
    assert report.status == "done" and report.resolved is False, report
    assert report.actions and all(a.status == "ok" and not _is_write(a.tool) for a in report.actions), report.actions
    assert st.writes() == [], "a read-only playbook changed the cluster"
    still = st.finding(case.finding)
    assert still is not None, "the finding went away by itself; the case proves nothing"
    # the next reconcile does not try again: it names the finding and leaves it to a person
    asked = _llm_calls(st)
    again = agent.handle_finding(still)
    assert again.actions == [] and _llm_calls(st) == asked and st.writes() == []
    assert case.finding in again.summary and "a person should look" in again.summary, again.summary
    handed = [r for r in st.world.store.list(limit=1000)
              if r.kind == "run" and r.finding_id == case.finding and "a person should look" in (r.summary or "")]
    assert len(handed) == 1


def _waits(case: Case, st: Stage, agent: Agent, report: RunReport, *_: Any) -> None:
    assert report.actions == [] and report.llm_calls == 0 and "waiting" in report.summary, report
    assert st.writes() == []
    assert not [r for r in st.world.store.list(limit=1000) if r.kind == "run"], "a run started"
    assert st.finding(case.finding) is not None


def _llm_calls(st: Stage) -> int:
    return sum(1 for r in st.world.store.list(limit=1000) if r.kind == "run" and (r.summary or "").startswith("llm call"))


OUTCOMES = {"resolves": _resolves, "resolves_after_approval": _resolves_after_approval,
            "hands_off": _hands_off, "waits": _waits}


def _is_write(tool: str) -> bool:
    spec = get_tool(tool)
    return spec is not None and spec.risk != "read"
