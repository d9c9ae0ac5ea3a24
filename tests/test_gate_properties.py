"""Property tests of the gate: invariants 1, 2, 3 and 5 of the design, under hostile input.

Random policies (through the real loader and decide(), including ones whose
risk table misfiles architectural tools as writes), random decisions from a
stand-in that may misbehave, and random tool calls: unknown tools, wrong
types, extra fields, out-of-bounds replicas, protected namespaces, quotes and
CEL fragments in strings, huge and deeply nested arguments. For every call:

1. nothing reaches the cluster unless that call's decision was allow;
2. an architectural tool never reaches the cluster through submit();
3. an allow always names a real policy rule (no built-in ever allows), and a
   policy without an allowing rule allows nothing;
5. hostile arguments are refused before a decision, or decided like any call;
and the log shows proposal → decision → result (or proposal → invalid result).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from doubles.recorder import MemoryRecorder
from opsagent.gate import Gate
from opsagent.model import Approval, Decision, RuleRef, ToolCall
from opsagent.policy import PolicyError, load_policy
from tools import REGISTRY, risk_table
from gate_doubles import bare_policy
from doubles.cluster import RecordingCluster, TinyCluster

TOOL_RISKS = risk_table()

NAMES = sorted(REGISTRY)
ACTORS = ["daemon", "daemon", "alice", "alice", "carol", "wake-proxy", "bob", "mallory", "", "group:leads", "*", "alice\n", "' or 1=1"]
CHANNELS = ["daemon", "cli", "slack", "wake-proxy", "eval", "api"]
HOSTILE = ["kube-system", 'llm" || true || "', "x" * 300, "../../etc/passwd", "inference/llm", "Inference", "",
           "🙂", "${{7*7}}", -1, 1001, 10**12, 1.5, True, None, [], {}, {"$ne": 1}, "0 || true"]
CEL_WHENS = [None, "args.replicas <= 2", "has(args.replicas)", 'actor == "alice"', "target.replicas > 0", "hour >= 0",
             'args.name.startsWith("l")', "weekday < 7 && has(intent.replicas)"]
TOOL_PATTERNS = ["*", "scale_*", "set_*", "*_workload", "*_node", *NAMES]


class Sink:
    """An approval sink that keeps requests in memory."""

    def __init__(self) -> None:
        self.requested: list[Approval] = []

    def request(self, *, call: ToolCall, decision: Decision, run_id: str | None) -> Approval:
        now = call_clock.now()
        approval = Approval(id=len(self.requested) + 1, call=call, args_hash=call.args_hash(), requested_by=call.actor,
                            approvers=decision.approvers, rule=decision.rule, created_at=now, expires_at=now + timedelta(hours=1))
        self.requested.append(approval)
        return approval


call_clock = TinyCluster().clock


def tiny() -> TinyCluster:
    cluster = TinyCluster(clock=call_clock)
    cluster.add_node("gpu-node", gpus=8)
    cluster.add_node("gpu-node-2", gpus=4, link_width=8)
    cluster.add_workload("inference", "llm", replicas=1, gpus=2)
    cluster.add_workload("render", "render-ui", replicas=1, gpus=1, request_rate=0.0)
    cluster.add_workload("kube-system", "coredns", replicas=2, gpus=0)
    return cluster


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=30), st.sampled_from(HOSTILE[:10]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                          max_leaves=12)


@st.composite
def tool_calls(draw) -> ToolCall:
    kind = draw(st.sampled_from(["example"] * 6 + ["mutated", "mutated", "random", "unknown", "huge", "deep"]))
    tool = draw(st.sampled_from(NAMES))
    args: dict[str, Any] = dict(draw(st.sampled_from(REGISTRY[tool].examples)))
    if "namespace" in args and "name" in args and tool not in ("create_workload", "change_policy"):
        args["namespace"], args["name"] = draw(st.sampled_from([("inference", "llm"), ("render", "render-ui"), ("kube-system", "coredns")]))
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            field = draw(st.sampled_from([*args, "extra_field", "replicas", "namespace"]))
            if draw(st.booleans()) and field in args:
                del args[field]
            else:
                args[field] = draw(st.sampled_from(HOSTILE))
    elif kind == "random":
        args = draw(st.dictionaries(st.text(max_size=12), json_value, max_size=5))
    elif kind == "unknown":
        tool = draw(st.one_of(st.text(max_size=40), st.sampled_from(["scale_workloads", "kubectl", "exec", "SCALE_WORKLOAD", "scale_workload "])))
    elif kind == "huge":
        args["padding"] = "A" * draw(st.integers(16_000, 40_000))
    elif kind == "deep":
        nested: Any = 1
        for _ in range(draw(st.integers(50, 3000))):
            nested = [nested]
        args["nested"] = nested
    return ToolCall(tool=tool, args=args, actor=draw(st.sampled_from(ACTORS)), channel=draw(st.sampled_from(CHANNELS)))


def check_call(gate: Gate, cluster: RecordingCluster, recorder: MemoryRecorder, call: ToolCall, run_id: str) -> Any:
    """Submit one call; check the per-call invariants; return its decision (or None)."""
    entries_before, writes_before = len(recorder.entries), len(cluster.writes)
    result = gate.submit(call, run_id=run_id)
    entries = recorder.entries[entries_before:]
    writes = cluster.writes[writes_before:]
    kinds = [e.kind for e in entries]
    tool = REGISTRY.get(call.tool)
    if result.status == "invalid":
        assert kinds == ["proposal", "result"] and entries[1].outcome == "invalid"
        assert writes == []
        return None
    assert tool is not None
    assert kinds == ["proposal", "decision", "result"], kinds
    decision = entries[1]
    assert all(e.idempotency_key and e.run_id == run_id for e in entries)
    if writes:  # invariant 1
        assert decision.decision == "allow" and result.decision is not None and result.decision.effect == "allow"
    if tool.risk == "architectural":  # invariant 2
        assert writes == [] and result.status in ("denied", "pending_approval", "error")
        assert decision.decision != "allow"
    if tool.risk == "read":
        assert writes == []
    if decision.decision == "allow":  # invariant 3: only a rule allows
        assert decision.rule_file != "<builtin>"
    else:
        assert result.status in ("denied", "pending_approval", "error")
    return result.decision


# --- random decisions from a stand-in that may misbehave --------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(calls=st.lists(tool_calls(), min_size=1, max_size=6), effects=st.lists(st.sampled_from(["allow", "deny", "require_approval", "boom", "junk"]), min_size=6, max_size=6))
def test_invariants_hold_whatever_decide_says(calls, effects):
    picks = iter(effects)

    def decide(policy, *, call, risk, target, snapshot, now, counts):
        effect = next(picks, "allow")
        if effect == "boom":
            raise RuntimeError("decide crashed")
        if effect == "junk":
            return {"effect": "allow"}
        return Decision(effect=effect, rule=RuleRef(file="random.yaml", name=effect), reason="random", approvers=("alice",))

    cluster, recorder = RecordingCluster(tiny()), MemoryRecorder()
    gate = Gate(policy=bare_policy(), cluster=cluster, clock=call_clock, recorder=recorder, approvals=Sink(), decide=decide, poll_seconds=5)
    for call in calls:
        decision = check_call(gate, cluster, recorder, call, "prop")
        event(f"decision: {decision.effect if decision else 'invalid'}")
    event("some call reached the cluster" if cluster.writes else "no call reached the cluster")


# --- random policies through the real loader and decide() --------------------


@st.composite
def policies(draw) -> tuple[dict[str, Any], dict[str, str] | None]:
    misfile = draw(st.booleans())
    rules = []
    for i in range(draw(st.integers(0, 6))):
        effect = draw(st.sampled_from(["allow", "deny", "require_approval"]))
        broad = draw(st.sampled_from([True, False, False]))
        tools = ["*"] if broad else draw(st.lists(st.sampled_from(TOOL_PATTERNS), min_size=1, max_size=3))
        rule: dict[str, Any] = {"name": f"r{i}", "effect": effect, "tools": tools}
        if effect == "allow" and not misfile:
            rule["risk"] = draw(st.lists(st.sampled_from(["read", "write"]), min_size=1, max_size=2, unique=True))
        if not broad and draw(st.booleans()):
            rule["actors"] = draw(st.lists(st.sampled_from(["daemon", "alice", "carol", "*", "group:leads"]), min_size=1, max_size=3))
        if not broad and draw(st.booleans()):
            rule["namespaces"] = draw(st.lists(st.sampled_from(["inference", "render", "kube-system", "team-*"]), min_size=1, max_size=2))
        when = None if broad else draw(st.sampled_from(CEL_WHENS))
        if when:
            rule["when"] = when
        if effect == "require_approval":
            rule["approvers"] = ["group:leads"]
        rules.append(rule)
    doc: dict[str, Any] = {"groups": {"leads": ["alice", "bob"]}, "rules": rules}
    if draw(st.booleans()):
        doc["scope"] = {"namespaces": ["*"], "exclude_namespaces": ["kube-system"]}
    if draw(st.booleans()):
        doc["max_workloads_per_run"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        doc["mode"] = "dry-run"
    # A misfiled risk table calls every architectural tool a write, so "allow writes" would cover them.
    risks = {name: ("write" if risk == "architectural" else risk) for name, risk in TOOL_RISKS.items()} if misfile else TOOL_RISKS
    return doc, risks


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=policies(), calls=st.lists(tool_calls(), min_size=1, max_size=6))
def test_invariants_hold_under_random_policies(spec, calls):
    doc, risks = spec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            policy = load_policy(path, tool_risks=risks)
        except PolicyError:
            event("policy refused by the loader")
            return  # the loader refused it (e.g. an allow that covers architectural tools): nothing to run
    allowing = {r["name"] for r in doc["rules"] if r["effect"] == "allow"}
    cluster, recorder = RecordingCluster(tiny()), MemoryRecorder()
    gate = Gate(policy=policy, cluster=cluster, clock=call_clock, recorder=recorder, approvals=Sink(), poll_seconds=5)
    for call in calls:
        decision = check_call(gate, cluster, recorder, call, "prop")
        if decision is not None and decision.effect == "allow":
            assert decision.rule.name in allowing  # invariant 3: default deny, only a named allow rule allows
        event(f"decision: {decision.effect if decision else 'invalid'}")
        if doc.get("mode") == "dry-run":
            assert all(kwargs.get("dry_run") is True for _, kwargs in cluster.writes)


def test_a_policy_that_misfiles_architectural_tools_still_cannot_run_them():
    doc = {"rules": [{"name": "allow-everything", "tools": ["*"], "effect": "allow"}]}
    risks = {name: ("write" if risk == "architectural" else risk) for name, risk in TOOL_RISKS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(yaml.safe_dump(doc))
        policy = load_policy(path, tool_risks=risks)
    cluster, recorder = RecordingCluster(tiny()), MemoryRecorder()
    sink = Sink()
    gate = Gate(policy=policy, cluster=cluster, clock=call_clock, recorder=recorder, approvals=sink)
    for name, tool in REGISTRY.items():
        if tool.risk == "architectural":
            result = gate.submit(ToolCall(tool=name, args=dict(tool.examples[0]), actor="daemon", channel="daemon"))
            assert result.status in ("pending_approval", "invalid"), (name, result.message)
    assert cluster.writes == [] and sink.requested
