"""The shipped policies (policies/*.yaml), as a table: one row per call that must be
allowed, refused, or sent to a person, with the rule and a word of the reason expected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from opsagent.model import Pod, RolloutState, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import NO_COUNTS, decide, load_policy
from opsagent.policy.lint import lint
from tools import REGISTRY
from tools.base import Target

POLICIES = Path(__file__).resolve().parent.parent / "policies"
MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
SUNDAY_NIGHT = datetime(2026, 1, 11, 23, 0, tzinfo=timezone.utc)


def _wl(ns: str, name: str, **kw) -> Workload:
    return Workload(ref=WorkloadRef(namespace=ns, name=name), **kw)


SNAPSHOT = Snapshot(time=MONDAY_NOON, workloads=(
    _wl("render", "render-ui", replicas=1, gpus_per_replica=1, last_request_at=MONDAY_NOON - timedelta(minutes=45), request_rate=0.0, gpu_utilization=10.0),
    _wl("render", "render-batch", replicas=1, gpus_per_replica=1, last_request_at=MONDAY_NOON - timedelta(minutes=45)),
    _wl("inference", "llm", replicas=1, gpus_per_replica=2, last_request_at=MONDAY_NOON - timedelta(minutes=5), request_rate=3.0),
    _wl("inference", "embedder", replicas=1, gpus_per_replica=1, rollout=RolloutState(status="failed", reason="ProgressDeadlineExceeded", revision=4)),
    _wl("chat", "chat-ui", replicas=0, gpus_per_replica=1),
    _wl("training", "finetune", replicas=1, gpus_per_replica=2, last_request_at=MONDAY_NOON - timedelta(hours=5)),
))
# A rollout still "progressing" whose new pods crash-loop, and a GPU workload that never had a request.
CRASHING = Snapshot(
    time=MONDAY_NOON,
    workloads=(
        _wl("inference", "embedder", replicas=1, gpus_per_replica=1, revision=5,
            rollout=RolloutState(status="progressing", reason="ReplicaSetUpdated", revision=5)),
        _wl("render", "render-ui", replicas=1, gpus_per_replica=1, request_rate=0.0),
    ),
    pods=(
        Pod(namespace="inference", name="embedder-new", workload=WorkloadRef(namespace="inference", name="embedder"),
            phase="Running", reason="CrashLoopBackOff", revision=5, restarts=4, gpu_ids=("g1",)),
        Pod(namespace="render", name="render-ui-0", workload=WorkloadRef(namespace="render", name="render-ui"),
            phase="Running", ready=True, gpu_ids=("g2",), started_at=MONDAY_NOON - timedelta(minutes=50)),
    ),
)
BUSY = Snapshot(time=MONDAY_NOON, workloads=(
    _wl("render", "render-ui", replicas=1, gpus_per_replica=1, last_request_at=MONDAY_NOON - timedelta(minutes=3), request_rate=2.0, gpu_utilization=40.0),
))
# Requests keep coming (health checks) but the GPU sits near 0%: idle only once it has been low for the window.
COLD_JUST_NOW = Snapshot(time=MONDAY_NOON, workloads=(
    _wl("render", "render-ui", replicas=1, gpus_per_replica=1, last_request_at=MONDAY_NOON, request_rate=0.5,
        gpu_utilization=0.5, low_gpu_since=MONDAY_NOON - timedelta(minutes=2)),
))
COLD_ALL_WINDOW = Snapshot(time=MONDAY_NOON, workloads=(
    _wl("render", "render-ui", replicas=1, gpus_per_replica=1, last_request_at=MONDAY_NOON, request_rate=0.5,
        gpu_utilization=0.5, low_gpu_since=MONDAY_NOON - timedelta(minutes=31)),
))

# Pods for delete_pod: crash-looping long enough, only just, healthy, and one whose workload's
# annotations declare it protected (no policy intent covers namespace ml).
_EMB, _BATCH = WorkloadRef(namespace="inference", name="embedder"), WorkloadRef(namespace="ml", name="batch-embed")
PODS = Snapshot(
    time=MONDAY_NOON,
    workloads=(
        _wl("inference", "embedder", replicas=2, gpus_per_replica=1, revision=4),
        _wl("ml", "batch-embed", replicas=1, annotations={"opsagent.dev/protected": "true"}),
    ),
    pods=(
        Pod(namespace="inference", name="embedder-a", workload=_EMB, phase="Running", reason="CrashLoopBackOff", restarts=5, revision=4),
        Pod(namespace="inference", name="embedder-b", workload=_EMB, phase="Running", reason="CrashLoopBackOff", restarts=1, revision=4),
        Pod(namespace="inference", name="embedder-c", workload=_EMB, phase="Running", ready=True, revision=4),
        Pod(namespace="ml", name="batch-embed-0", workload=_BATCH, phase="Running", reason="CrashLoopBackOff", restarts=9),
    ),
)

# (tool, args, actor, channel, snapshot, now, expected effect, expected rule, word in reason)
D, W = "daemon", "wake-proxy"
ROWS = [
    # the stories of the design
    ("sleep_workload", {"namespace": "render", "name": "render-ui"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "allow", "daemon-sleeps-idle-workloads", "idle"),
    ("set_gpu_placement", {"namespace": "inference", "name": "llm", "min_link_width": 16}, "alice", "slack", SNAPSHOT, MONDAY_NOON, "require_approval", "architecture-needs-a-lead", "lead"),
    ("restart_rollout", {"namespace": "kube-system", "name": "coredns"}, "carol", "cli", None, MONDAY_NOON, "deny", "out-of-scope", "scope"),
    ("get_workload", {"namespace": "kube-system", "name": "coredns"}, "alice", "cli", None, MONDAY_NOON, "deny", "out-of-scope", "scope"),
    # reads
    ("get_workload", {"namespace": "render", "name": "render-ui"}, "anyone", "slack", SNAPSHOT, MONDAY_NOON, "allow", "read-anything", "looking"),
    ("gpu_inventory", {}, D, "daemon", SNAPSHOT, MONDAY_NOON, "allow", "read-anything", "looking"),
    # daemon toil inside intents
    ("sleep_workload", {"namespace": "render", "name": "render-ui"}, D, "daemon", BUSY, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("sleep_workload", {"namespace": "render", "name": "render-ui"}, D, "daemon", COLD_JUST_NOW, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("sleep_workload", {"namespace": "render", "name": "render-ui"}, D, "daemon", COLD_ALL_WINDOW, MONDAY_NOON, "allow", "daemon-sleeps-idle-workloads", "idle"),
    ("sleep_workload", {"namespace": "render", "name": "render-batch"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("sleep_workload", {"namespace": "training", "name": "finetune"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "deny", "daemon-leaves-training-alone", "training"),
    ("wake_workload", {"namespace": "chat", "name": "chat-ui"}, W, "wake-proxy", SNAPSHOT, MONDAY_NOON, "allow", "wake-on-demand", "woken"),
    ("wake_workload", {"namespace": "inference", "name": "embedder"}, W, "wake-proxy", SNAPSHOT, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("scale_workload", {"namespace": "chat", "name": "chat-ui", "replicas": 3}, D, "daemon", SNAPSHOT, MONDAY_NOON, "allow", "daemon-scales-within-bounds", "bounds"),
    # outside the intent's bounds (0..3): refused for everyone, naming the intent, whatever a rule says
    ("scale_workload", {"namespace": "chat", "name": "chat-ui", "replicas": 4}, D, "daemon", SNAPSHOT, MONDAY_NOON, "deny", "outside-intent-bounds", "chat-ui-wakes-on-request"),
    ("restart_rollout", {"namespace": "inference", "name": "embedder"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "allow", "daemon-retries-failed-rollouts", "failed"),
    ("undo_rollout", {"namespace": "inference", "name": "embedder"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "allow", "daemon-retries-failed-rollouts", "rollback"),
    ("restart_rollout", {"namespace": "inference", "name": "llm"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("restart_rollout", {"namespace": "inference", "name": "embedder"}, D, "daemon", CRASHING, MONDAY_NOON, "allow", "daemon-retries-failed-rollouts", "cannot start"),
    # never had a request: quiet since its GPU pod started 50 minutes ago (> 30 min idle rule)
    ("sleep_workload", {"namespace": "render", "name": "render-ui"}, D, "daemon", CRASHING, MONDAY_NOON, "allow", "daemon-sleeps-idle-workloads", "idle"),
    # pods: the daemon deletes only a pod that exists and has crash-looped at least three times
    ("delete_pod", {"namespace": "inference", "name": "embedder-a"}, D, "daemon", PODS, MONDAY_NOON, "allow", "daemon-deletes-crashlooping-pods", "crash-looped"),
    ("delete_pod", {"namespace": "inference", "name": "embedder-b"}, D, "daemon", PODS, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("delete_pod", {"namespace": "inference", "name": "embedder-c"}, D, "daemon", PODS, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("delete_pod", {"namespace": "inference", "name": "embedder-gone"}, D, "daemon", PODS, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("delete_pod", {"namespace": "inference", "name": "embedder-a"}, D, "daemon", None, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("delete_pod", {"namespace": "ml", "name": "batch-embed-0"}, D, "daemon", PODS, MONDAY_NOON, "require_approval", "other-writes-need-oncall", "on-call"),
    ("delete_pod", {"namespace": "training", "name": "finetune-0"}, D, "daemon", PODS, MONDAY_NOON, "deny", "daemon-leaves-training-alone", "training"),
    # people
    ("scale_workload", {"namespace": "render", "name": "render-ui", "replicas": 2}, "erin", "slack", SNAPSHOT, MONDAY_NOON, "allow", "render-team-runs-render", "render team"),
    ("scale_workload", {"namespace": "render", "name": "render-ui", "replicas": 5}, "erin", "slack", SNAPSHOT, MONDAY_NOON, "deny", "outside-intent-bounds", "set_replica_bounds"),
    ("scale_workload", {"namespace": "render", "name": "render-ui", "replicas": 5}, "carol", "slack", SNAPSHOT, MONDAY_NOON, "deny", "outside-intent-bounds", "0..2"),
    ("scale_workload", {"namespace": "render", "name": "render-ui", "replicas": "5"}, "carol", "slack", SNAPSHOT, MONDAY_NOON, "deny", "outside-intent-bounds", "0..2"),
    ("scale_workload", {"namespace": "render", "name": "render-ui", "replicas": 0}, "carol", "slack", SNAPSHOT, MONDAY_NOON, "allow", "oncall-may-operate", "on-call"),
    ("scale_workload", {"namespace": "inference", "name": "embedder", "replicas": 0}, "carol", "slack", SNAPSHOT, MONDAY_NOON, "deny", "outside-intent-bounds", "embedder-rollouts"),
    # inside the LLM's weekday prewarm window a person's sleep would be undone by the daemon's wake
    ("sleep_workload", {"namespace": "inference", "name": "llm"}, "carol", "slack", SNAPSHOT, MONDAY_NOON, "deny", "outside-intent-bounds", "prewarm"),
    ("sleep_workload", {"namespace": "inference", "name": "llm"}, "carol", "slack", SNAPSHOT, SUNDAY_NIGHT, "allow", "oncall-may-operate", "on-call"),
    ("cordon_node", {"node": "gpu-a"}, "carol", "cli", SNAPSHOT, MONDAY_NOON, "allow", "oncall-may-operate", "on-call"),
    ("cordon_node", {"node": "gpu-a"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "require_approval", "node-changes-need-a-person", "node-level"),
    ("uncordon_node", {"node": "gpu-a"}, D, "daemon", SNAPSHOT, MONDAY_NOON, "require_approval", "node-changes-need-a-person", "node-level"),
    ("undo_rollout", {"namespace": "inference", "name": "llm"}, "carol", "slack", SNAPSHOT, SUNDAY_NIGHT, "require_approval", "weekend-night-rollbacks-need-a-lead", "weekend"),
    ("undo_rollout", {"namespace": "inference", "name": "llm"}, "carol", "slack", SNAPSHOT, MONDAY_NOON, "allow", "oncall-may-operate", "on-call"),
    ("delete_workload", {"namespace": "chat", "name": "chat-ui"}, "carol", "cli", SNAPSHOT, MONDAY_NOON, "require_approval", "architecture-needs-a-lead", "lead"),
    ("change_policy", {}, "alice", "cli", None, MONDAY_NOON, "require_approval", "architecture-needs-a-lead", "lead"),
]


@pytest.fixture(scope="module")
def policy():
    return load_policy(POLICIES, tool_risks={n: t.risk for n, t in REGISTRY.items()})


def _target(tool: str, args: dict) -> Target:
    try:
        return REGISTRY[tool].input_model.model_validate(args).target()
    except Exception:  # tools whose arguments this table abbreviates
        return Target(namespace=args.get("namespace"))


@pytest.mark.parametrize("tool,args,actor,channel,snapshot,now,effect,rule,word", ROWS,
                         ids=[f"{r[0]}-{r[1].get('name', '')}-{r[2]}-{r[7]}" for r in ROWS])
def test_shipped_policy_table(policy, tool, args, actor, channel, snapshot, now, effect, rule, word):
    call = ToolCall(tool=tool, args=args, actor=actor, channel=channel)
    decision = decide(policy, call=call, risk=REGISTRY[tool].risk, target=_target(tool, args), snapshot=snapshot, now=now, counts=NO_COUNTS)
    assert (decision.effect, decision.rule.name) == (effect, rule), decision.reason
    assert word in decision.reason
    if effect == "require_approval":
        assert decision.approvers and decision.expires_after_seconds


def test_shipped_policies_lint_clean():
    report = lint(POLICIES, tool_risks={n: t.risk for n, t in REGISTRY.items()})
    assert report.ok, [str(p) for p in report.problems]
    assert not report.warnings, [str(p) for p in report.warnings]


def test_shipped_lookups(policy):
    assert policy.mode == "enforce"
    assert policy.approval_ttl_seconds == 3600
    assert policy.max_workloads_per_run == 10
    assert policy.actor_matches("alice", "group:platform-leads")
    assert not policy.actor_matches("carol", "group:platform-leads")
    assert policy.actor_matches("carol", "*") and policy.actor_matches("daemon", "daemon")
    assert policy.in_scope("render", {}) and not policy.in_scope("kube-system", {})
    llm = SNAPSHOT.workload("inference/llm")
    intent = policy.intent_for(llm)
    assert intent is not None and intent.placement.min_link_width == 16 and intent.placement.coherent
    assert policy.intent_for(SNAPSHOT.workload("training/finetune")).protected


def test_summary_is_short_and_names_the_three_outcomes(policy):
    text = policy.summary()
    assert "You may do alone" in text and "Needs a person" in text and "Denied" in text
    assert "sleep_workload" in text and "group:platform-leads" in text
    assert len(text) < 4000


def test_the_policy_is_handed_every_tool_of_the_catalogue_with_its_risk():
    """The policy layer cannot import tools and keeps no list of them: the runtime hands it the catalogue's table."""
    from opsagent.runtime import open_policy

    assert open_policy(POLICIES).tool_risks == {name: tool.risk for name, tool in REGISTRY.items()}


def test_a_pod_call_sees_the_pod_and_its_workload_intent(policy):
    from opsagent.policy.explain import explain

    call = ToolCall(tool="delete_pod", args={"namespace": "inference", "name": "embedder-a"}, actor="daemon", channel="daemon")
    result = explain(policy, call=call, risk="write", target=Target(namespace="inference"), snapshot=PODS, now=MONDAY_NOON)
    assert result.target["pod"] == {"namespace": "inference", "name": "embedder-a", "phase": "Running",
                                    "reason": "CrashLoopBackOff", "restarts": 5, "ready": False, "node": None,
                                    "gpus": 0, "revision": 4, "workload": "inference/embedder"}
    assert result.target["name"] == "embedder" and result.intent["name"] == "embedder-rollouts"
    missing = call.model_copy(update={"args": {"namespace": "inference", "name": "embedder-gone"}})
    result = explain(policy, call=missing, risk="write", target=Target(namespace="inference"), snapshot=PODS, now=MONDAY_NOON)
    assert "pod" not in result.target
    why = {c.rule: c.why_not for c in result.skipped}["daemon-deletes-crashlooping-pods"]
    assert why.startswith("condition is false")
