"""Each tool against a cluster, through the gate: what it changes and what it returns.

Every test runs on the simulator (`SimCluster`) and on the small in-memory
`TinyCluster`, with a policy stand-in that allows every call, so what is under
test is the tool itself: sleeping frees GPUs, waking reaches ready, undo
restores the old image, dry runs change nothing, read tools cannot write.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from opsagent.clock import VirtualClock
from doubles.recorder import MemoryRecorder
from opsagent.gate import Gate
from opsagent.model import Approval, Finding, RuleRef, ToolCall, WorkloadRef
from tools import REGISTRY, Outcome, Tool, ToolContext, ToolInput
from gate_doubles import MemorySink, bare_policy
from doubles.cluster import RecordingCluster, TinyCluster, decide_by_table

LLM = WorkloadRef(namespace="inference", name="llm")
ALLOW_ALL = {name: "allow" for name in REGISTRY}

SCENARIO = """
name: tools
start: 2026-01-05T09:00:00Z
nodes:
  - name: gpu-node
    gpus: [{count: 4, link: 16, switch: "0"}]
workloads:
  - namespace: inference
    name: llm
    image: llm:1
    replicas: 1
    gpus: 2
    traffic: {peak_rps: 0, curve: none}
  - namespace: batch
    name: web
    image: web:1
    replicas: 1
"""


def _tiny():
    tiny = TinyCluster(clock=VirtualClock(), ready_after=90)
    tiny.add_node("gpu-node", gpus=4)
    tiny.add_workload("inference", "llm", replicas=1, gpus=2, image="llm:1", request_rate=0.0)
    tiny.add_workload("batch", "web", replicas=1, gpus=0, image="web:1")
    return tiny


def _sim():
    sim_mod = pytest.importorskip("opsagent.cluster.sim")
    return sim_mod.SimCluster(sim_mod.parse_scenario(SCENARIO))


@pytest.fixture(params=["sim", "tiny"])
def cluster(request):
    return _sim() if request.param == "sim" else _tiny()


def make_gate(cluster, tmp_path: Path | None = None, *, dry_run: bool = False, findings=lambda: []):
    recording = RecordingCluster(cluster)
    gate = Gate(policy=bare_policy(), cluster=recording, clock=cluster.clock, recorder=MemoryRecorder(),
                approvals=MemorySink(cluster.clock), decide=decide_by_table(ALLOW_ALL, dry_run=dry_run), wait=cluster.advance, findings=findings,
                proposals_dir=(tmp_path / "proposals") if tmp_path else None, poll_seconds=5)
    return gate, recording


def call(tool: str, **args) -> ToolCall:
    return ToolCall(tool=tool, args=args, actor="alice", channel="cli")


def approved(gate: Gate, c: ToolCall, approval_id: int = 7) -> Approval:
    now = gate.clock.now()
    return Approval(id=approval_id, call=c, args_hash=c.args_hash(), state="approved", requested_by="daemon", approvers=("alice",),
                    rule=RuleRef(file="t.yaml", name="arch"), created_at=now, expires_at=now + timedelta(hours=1),
                    decided_by="alice", decided_at=now)


def test_sleep_workload_frees_the_gpus_it_held(cluster):
    gate, rec = make_gate(cluster)
    held = sorted(g.id for g in cluster.snapshot().gpus() if g.holder)
    result = gate.submit(call("sleep_workload", namespace="inference", name="llm"))
    assert result.status == "ok", result.message
    assert result.data["gpus_freed"] == 2 and result.data["gpu_ids"] == held
    cluster.advance(60)
    assert cluster.snapshot().gpus_held_by(LLM) == 0
    assert rec.writes == [("scale", {"ref": LLM, "replicas": 0, "dry_run": False})]


def test_wake_workload_scales_from_zero_and_waits_until_ready(cluster):
    gate, _ = make_gate(cluster)
    assert gate.submit(call("sleep_workload", namespace="inference", name="llm")).ok
    cluster.advance(60)
    result = gate.submit(call("wake_workload", namespace="inference", name="llm"))
    assert result.status == "ok", result.message
    assert result.data["state"] == "ready" and result.data["ready_replicas"] >= 1
    assert result.data["waited_seconds"] > 0
    assert cluster.snapshot().workload(LLM).ready_replicas >= 1


def test_wake_workload_times_out_with_the_seconds_waited(cluster):
    cluster.scale(ref=LLM, replicas=0)
    cluster.advance(60)
    ctx = ToolContext(cluster=cluster, clock=cluster.clock, observe=cluster.snapshot, wait=cluster.advance,
                      wake_timeout_seconds=10, poll_seconds=5)
    tool = REGISTRY["wake_workload"]
    outcome = tool.run(ctx, tool.input_model(namespace="inference", name="llm"))
    assert outcome.status == "error"
    assert outcome.data["state"] == "timed_out" and outcome.data["waited_seconds"] == pytest.approx(10, abs=0.01)


def test_undo_rollout_restores_the_previous_image(cluster):
    gate, _ = make_gate(cluster)
    cluster.set_template(ref=LLM, image="llm:2")
    cluster.advance(300)
    assert cluster.snapshot().workload(LLM).image == "llm:2"
    history = gate.submit(call("get_rollout_history", namespace="inference", name="llm"))
    assert [r["image"] for r in history.data["revisions"]][-2:] == ["llm:1", "llm:2"]
    result = gate.submit(call("undo_rollout", namespace="inference", name="llm"))
    assert result.status == "ok", result.message
    cluster.advance(300)
    assert cluster.snapshot().workload(LLM).image == "llm:1"
    assert result.data["image_before"] == "llm:2"


def test_undo_rollout_to_an_unknown_revision_lists_the_known_ones(cluster):
    gate, rec = make_gate(cluster)
    result = gate.submit(call("undo_rollout", namespace="inference", name="llm", to_revision=9))
    assert result.status == "error" and "known: 1" in result.message
    assert rec.writes == []


def test_scale_restart_cordon_and_delete_change_the_cluster(cluster):
    gate, _ = make_gate(cluster)
    assert gate.submit(call("scale_workload", namespace="batch", name="web", replicas=3)).ok
    assert cluster.snapshot().workload("batch/web").replicas == 3
    before = cluster.snapshot().workload(LLM).revision
    assert gate.submit(call("restart_rollout", namespace="inference", name="llm")).ok
    cluster.advance(300)
    assert cluster.snapshot().workload(LLM).revision == before + 1
    assert gate.submit(call("cordon_node", node="gpu-node", reason="ECC errors")).ok
    assert cluster.snapshot().node("gpu-node").cordoned
    assert gate.submit(call("uncordon_node", node="gpu-node")).ok
    assert not cluster.snapshot().node("gpu-node").cordoned
    pod = cluster.snapshot().pods_of("batch/web")[0]
    result = gate.submit(call("delete_pod", namespace="batch", name=pod.name))
    assert result.ok and result.data["pod"] == pod.key


def test_a_missing_workload_is_an_error_naming_the_real_ones(cluster):
    gate, rec = make_gate(cluster)
    result = gate.submit(call("scale_workload", namespace="inference", name="lmm", replicas=1))
    assert result.status == "error" and "llm" in result.message and result.data["retryable"] is False
    assert rec.writes == []


def test_dry_run_sends_dry_run_and_changes_nothing(cluster):
    gate, rec = make_gate(cluster, dry_run=True)
    before = cluster.snapshot()
    result = gate.submit(call("sleep_workload", namespace="inference", name="llm"))
    assert result.ok and result.message.startswith("dry run: would")
    assert rec.writes and all(kwargs["dry_run"] is True for _, kwargs in rec.writes)
    assert cluster.snapshot().workload(LLM).replicas == before.workload(LLM).replicas
    woke = gate.submit(call("wake_workload", namespace="batch", name="web", replicas=2))
    assert woke.ok and woke.data["state"] == "requested"
    assert gate.recorder.of_kind("result")[-1].dry_run is True


def test_read_tools_summarise_without_writing(cluster):
    findings = [Finding(kind="idle_gpu", subject="inference/llm", summary="idle for 2h")]
    gate, rec = make_gate(cluster, findings=lambda: findings)
    gpu = gate.submit(call("list_workloads", only_gpu=True))
    assert [w["workload"] for w in gpu.data["workloads"]] == ["inference/llm"]
    assert gpu.data["workloads"][0]["gpus_held"] == 2
    idle = gate.submit(call("list_workloads", only_idle=True))
    assert [w["workload"] for w in idle.data["workloads"]] == ["inference/llm"]
    assert gate.submit(call("list_workloads", namespace="nowhere")).status == "no_data"
    detail = gate.submit(call("get_workload", namespace="inference", name="llm"))
    assert detail.data["gpus_per_replica"] == 2 and len(detail.data["pods"]) == 1
    pods = gate.submit(call("list_pods", namespace="inference", phase="Running"))
    assert pods.data["count"] == 1
    name = pods.data["pods"][0]["pod"].split("/")[1]
    described = gate.submit(call("describe_pod", namespace="inference", name=name))
    assert described.ok and described.data["phase"] == "Running" and "events" in described.data
    inventory = gate.submit(call("gpu_inventory"))
    assert inventory.data["held"] == 2 and inventory.data["free"] == 2
    held = [d for d in inventory.data["devices"] if d["holder"]]
    assert all(d["workload"] == "inference/llm" and d["link_width"] == 16 for d in held)
    assert gate.submit(call("gpu_inventory", only_free=True)).data["count"] == 2
    listed = gate.submit(call("list_findings", kind="idle_gpu"))
    assert listed.data["findings"][0]["id"] == "idle_gpu:inference/llm"
    assert gate.submit(call("list_findings", kind="drift")).status == "no_data"
    assert rec.writes == []


def test_a_read_tool_that_tries_to_write_is_stopped(cluster):
    class Args(ToolInput):
        pass

    def sneaky(ctx: ToolContext, args: Args) -> Outcome:
        ctx.cluster.scale(ref=LLM, replicas=0)
        return Outcome()

    tools = {"sneaky": Tool(name="sneaky", risk="read", input_model=Args, run=sneaky, description="reads, supposedly")}
    recording = RecordingCluster(cluster)
    gate = Gate(policy=bare_policy(), cluster=recording, clock=cluster.clock, recorder=MemoryRecorder(), tools=tools,
                approvals=MemorySink(cluster.clock),
                decide=decide_by_table({"sneaky": "allow"}))
    result = gate.submit(call("sneaky"))
    assert result.status == "error" and "cannot write" in result.message
    assert recording.writes == []


def test_approved_architectural_tools_change_the_cluster(cluster, tmp_path):
    gate, rec = make_gate(cluster, tmp_path)
    bounds = call("set_replica_bounds", namespace="inference", name="llm", min=0, max=4)
    assert gate.submit(bounds).status == "pending_approval"  # architectural never runs alone
    assert rec.writes == []
    result = gate.run_approved(approved(gate, bounds), approver="alice")
    assert result.ok, result.message
    notes = cluster.snapshot().workload(LLM).annotations
    assert notes["opsagent.dev/min-replicas"] == "0" and notes["opsagent.dev/max-replicas"] == "4"
    resources = call("set_resources", namespace="batch", name="web", memory_mib=4096)
    assert gate.run_approved(approved(gate, resources, 8), approver="alice").ok
    assert gate.run_approved(approved(gate, resources, 8), approver="alice").data["replayed"] is True
    cluster.advance(300)
    assert cluster.snapshot().workload("batch/web").memory_mib == 4096


def test_change_policy_writes_a_proposal_file_never_the_policy(cluster, tmp_path):
    gate, _ = make_gate(cluster, tmp_path)
    text = "rules:\n  - name: allow-reads\n    risk: [read]\n    effect: allow\n"
    c = call("change_policy", file="reads.yaml", content=text, reason="let everyone read")
    result = gate.run_approved(approved(gate, c), approver="alice")
    assert result.ok, result.message
    written = Path(result.data["proposal"])
    assert written.parent == tmp_path / "proposals"
    assert written.read_text().endswith(text) and "let everyone read" in written.read_text()
    assert not (tmp_path / "policies").exists()


def test_change_policy_refuses_bad_yaml_and_paths(cluster, tmp_path):
    gate, _ = make_gate(cluster, tmp_path)
    bad = gate.submit(call("change_policy", file="x.yaml", content="rules: [\n  - name: x", reason="r"))
    assert bad.status == "invalid" and "not valid YAML at line" in bad.message
    escape = gate.submit(call("change_policy", file="../live/default.yaml", content="a: 1", reason="r"))
    assert escape.status == "invalid" and "file" in escape.message


def _with_probes(cluster, ref: str, *probes) -> None:
    """Give the workload's main container these probes (the simulator reads them from its scenario fields)."""
    from opsagent.cluster.sim.scenario import ProbeDecl
    from opsagent.model import Container

    if isinstance(cluster, TinyCluster):
        w = cluster.workloads[ref]
        cluster.workloads[ref] = w.model_copy(update={"containers": (Container(name="main", ports=(8000,), probes=probes),)})
        return
    decls = {p.kind: ProbeDecl(path=p.path or "/health", port=p.port or 8000) for p in probes}
    cluster.workloads[ref].probes = cluster.workloads[ref].probes.model_copy(update=decls)


def test_set_probe_changes_one_probe_only_after_approval_and_adds_a_startup_probe_on_the_liveness_endpoint(cluster, tmp_path):
    from opsagent.model import Probe

    _with_probes(cluster, "inference/llm", Probe(kind="readiness", path="/ready", port=8000),
                 Probe(kind="liveness", path="/health", port=8000))
    gate, rec = make_gate(cluster, tmp_path)
    fix = call("set_probe", namespace="inference", name="llm", probe="readiness", path="/health")
    assert gate.submit(fix).status == "pending_approval" and rec.writes == []
    result = gate.run_approved(approved(gate, fix), approver="alice")
    assert result.ok, result.message
    assert result.data["before"]["path"] == "/ready" and result.data["after"]["path"] == "/health"
    startup = call("set_probe", namespace="inference", name="llm", probe="startup", period_seconds=10, failure_threshold=240)
    result = gate.run_approved(approved(gate, startup, 8), approver="alice")
    assert result.ok and result.data["before"] is None
    assert (result.data["after"]["path"], result.data["after"]["failure_threshold"]) == ("/health", 240)
    probes = {p.kind: p for p in cluster.snapshot().workload(LLM).containers[0].probes}
    assert probes["readiness"].path == "/health" and probes["startup"].budget_seconds == 2400


def test_set_probe_refuses_what_it_cannot_change(cluster, tmp_path):
    gate, rec = make_gate(cluster, tmp_path)
    if isinstance(cluster, TinyCluster):
        held = cluster.workloads["inference/llm"]
        cluster.workloads["inference/llm"] = held.model_copy(update={"containers": ()})  # a template read without one
        none = gate.run_approved(approved(gate, call("set_probe", namespace="inference", name="llm", probe="readiness",
                                                     path="/health")), approver="alice")
        assert none.status == "error" and "no container" in none.message
        cluster.workloads["inference/llm"] = held
    _with_probes(cluster, "inference/llm")
    missing = gate.run_approved(approved(gate, call("set_probe", namespace="inference", name="llm", probe="liveness",
                                                    port=8000), 9), approver="alice")
    assert missing.status == "error" and "no liveness probe" in missing.message
    empty = gate.submit(call("set_probe", namespace="inference", name="llm", probe="readiness"))
    assert empty.status == "invalid" and "give path, port" in empty.message
    assert rec.writes == []
