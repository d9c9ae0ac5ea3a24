"""decide() against small inline policies: first match wins, default deny, scope,
architectural tools never automatic (also for random rule sets), CEL conditions over
the target's state, rate limits, blast radius and dry-run."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsagent.model import AuditEntry, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import NO_COUNTS, Counts, decide, load_policy
from opsagent.policy.explain import explain
from opsagent.policy.policy import CompiledRule, Policy
from opsagent.policy.schema import Rule
from tools import risk_table
from tools.base import Target

TOOL_RISKS = risk_table()

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
REF = WorkloadRef(namespace="apps", name="web")
TARGET = Target(namespace="apps", workload=REF)


def policy_from(tmp_path: Path, text: str) -> Policy:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_policy(tmp_path, tool_risks=risk_table())


def call(tool: str, actor: str = "daemon", channel: str = "daemon", **args) -> ToolCall:
    return ToolCall(tool=tool, args={"namespace": "apps", "name": "web", **args}, actor=actor, channel=channel)


def snap(**fields) -> Snapshot:
    return Snapshot(time=NOW, workloads=(Workload(ref=REF, **fields),))


BASE = """
scope: {namespaces: [apps]}
groups: {leads: [alice], oncall: [carol]}
default_approvers: [group:leads]
rules:
  - {name: reads, risk: read, effect: allow, reason: reads are fine}
  - {name: no-deletes, tools: [delete_pod], effect: deny, reason: pods stay}
  - name: sleep-when-idle
    tools: [sleep_workload]
    actors: [daemon]
    when: target.idle_minutes != null && target.idle_minutes >= 30.0
    effect: allow
  - name: scale-small
    tools: [scale_workload]
    actors: [daemon, group:oncall]
    labels: {tier: web}
    when: args.replicas <= 3
    effect: allow
  - {name: writes-need-oncall, risk: write, effect: require_approval, approvers: [group:oncall], expires_after: 15m}
  - {name: arch, risk: architectural, effect: require_approval}
limits:
  - {name: scale-rate, tools: [scale_workload, sleep_workload], max: 2, per: 1h, by: namespace}
max_workloads_per_run: 2
"""


def test_first_matching_rule_decides_with_its_reason(tmp_path):
    policy = policy_from(tmp_path, BASE)
    d = decide(policy, call=call("get_workload"), risk="read", target=TARGET, snapshot=None, now=NOW, counts=NO_COUNTS)
    assert (d.effect, d.rule.name, d.reason) == ("allow", "reads", "reads are fine")
    assert d.rule.file.endswith("p.yaml")
    d = decide(policy, call=call("delete_pod"), risk="write", target=TARGET, snapshot=None, now=NOW, counts=NO_COUNTS)
    assert (d.effect, d.rule.name) == ("deny", "no-deletes")


def test_conditions_read_the_target_state(tmp_path):
    policy = policy_from(tmp_path, BASE)
    idle = snap(replicas=1, last_request_at=NOW - timedelta(minutes=31))
    busy = snap(replicas=1, last_request_at=NOW - timedelta(minutes=2))
    never = snap(replicas=1)
    assert decide(policy, call=call("sleep_workload"), risk="write", target=TARGET, snapshot=idle, now=NOW).effect == "allow"
    for state in (busy, never, None):
        d = decide(policy, call=call("sleep_workload"), risk="write", target=TARGET, snapshot=state, now=NOW)
        assert (d.effect, d.rule.name) == ("require_approval", "writes-need-oncall")
        assert d.approvers == ("group:oncall",) and d.expires_after_seconds == 900


def test_labels_and_args_and_group_actors(tmp_path):
    policy = policy_from(tmp_path, BASE)
    labelled = snap(labels={"tier": "web"})
    unlabelled = snap(labels={"tier": "batch"})
    ok = decide(policy, call=call("scale_workload", actor="carol", channel="slack", replicas=3), risk="write", target=TARGET, snapshot=labelled, now=NOW)
    assert (ok.effect, ok.rule.name) == ("allow", "scale-small")
    for c, s in [
        (call("scale_workload", actor="carol", replicas=4), labelled),
        (call("scale_workload", actor="carol", replicas=2), unlabelled),
        (call("scale_workload", actor="mallory", replicas=2), labelled),
    ]:
        assert decide(policy, call=c, risk="write", target=TARGET, snapshot=s, now=NOW).rule.name == "writes-need-oncall"


def test_default_deny_names_the_call(tmp_path):
    policy = policy_from(tmp_path, """
        scope: {namespaces: [apps]}
        rules: [{name: reads, risk: read, effect: allow}]
        """)
    d = decide(policy, call=call("scale_workload", replicas=1), risk="write", target=TARGET, snapshot=None, now=NOW)
    assert d.effect == "deny" and d.rule.file == "<builtin>" and d.rule.name == "default-deny"
    assert "no rule allows scale_workload by daemon on apps/web" == d.reason


def test_out_of_scope_is_denied_before_any_rule(tmp_path):
    policy = policy_from(tmp_path, BASE)
    other = Target(namespace="kube-system", workload=WorkloadRef(namespace="kube-system", name="coredns"))
    d = decide(policy, call=call("get_workload"), risk="read", target=other, snapshot=None, now=NOW)
    assert (d.effect, d.rule.name) == ("deny", "out-of-scope") and "kube-system/coredns" in d.reason
    # a cluster-scoped call (no namespace) is governed
    d = decide(policy, call=ToolCall(tool="gpu_inventory", actor="daemon"), risk="read", target=Target(), snapshot=None, now=NOW)
    assert d.effect == "allow"


def test_scope_labels_need_the_workload(tmp_path):
    policy = policy_from(tmp_path, """
        scope: {namespaces: [apps], labels: {managed: "yes"}}
        rules: [{name: reads, risk: read, effect: allow}]
        """)
    yes = snap(labels={"managed": "yes"})
    no = snap(labels={})
    assert decide(policy, call=call("get_workload"), risk="read", target=TARGET, snapshot=yes, now=NOW).effect == "allow"
    assert decide(policy, call=call("get_workload"), risk="read", target=TARGET, snapshot=no, now=NOW).rule.name == "out-of-scope"


def test_architectural_calls_go_to_a_person(tmp_path):
    policy = policy_from(tmp_path, BASE)
    d = decide(policy, call=call("set_resources"), risk="architectural", target=TARGET, snapshot=None, now=NOW)
    assert (d.effect, d.approvers, d.expires_after_seconds) == ("require_approval", ("group:leads",), 3600)
    # a caller that under-reports the risk of a known architectural tool gains nothing
    d = decide(policy, call=call("set_resources"), risk="read", target=TARGET, snapshot=None, now=NOW)
    assert d.effect == "require_approval"


def _policy_with(rules: list[Rule]) -> Policy:
    from opsagent.policy.policy import FileScope
    from opsagent.policy.schema import Scope

    compiled = tuple(CompiledRule(r, file="mem.yaml", index=i, scopes=(), when=None, groups={}) for i, r in enumerate(rules))
    return Policy(files=("mem.yaml",), scopes=(FileScope("mem.yaml", Scope()),), groups={}, intents=(), rules=compiled, limits=(),
                  mode="enforce", approval_ttl=timedelta(hours=1), max_workloads_per_run=None, default_approvers=(),
                  tool_risks=TOOL_RISKS)


RULES = st.builds(
    Rule,
    name=st.sampled_from(["a", "b", "c"]),
    tools=st.lists(st.sampled_from(["*", "set_*", "scale_workload", "create_workload", "get_*", "delete_*"]), min_size=1, max_size=3).map(tuple),
    risk=st.lists(st.sampled_from(["read", "write", "architectural"]), max_size=2).map(tuple),
    actors=st.sampled_from([("*",), ("daemon",), ("alice",)]),
    effect=st.sampled_from(["allow", "deny", "require_approval"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(RULES, max_size=6), tool=st.sampled_from(sorted(TOOL_RISKS)),
       actor=st.sampled_from(["daemon", "alice", "bob"]), claimed=st.sampled_from(["read", "write", "architectural"]))
def test_decide_never_allows_an_architectural_tool(rules, tool, actor, claimed):
    """Even with rules the loader would refuse (lint skipped), no architectural call is allowed."""
    policy = _policy_with(rules)
    d = decide(policy, call=call(tool, actor=actor), risk=claimed, target=TARGET, snapshot=None, now=NOW)
    if TOOL_RISKS[tool] == "architectural" or claimed == "architectural":
        assert d.effect != "allow"


def _results(n: int, tool: str = "scale_workload", namespace: str = "apps", age: timedelta = timedelta(minutes=5)) -> list[AuditEntry]:
    return [AuditEntry(time=NOW - age, kind="result", actor="daemon", tool=tool, args={"namespace": namespace, "name": f"w{i}"}, outcome="ok")
            for i in range(n)]


def test_rate_limit_turns_an_allow_into_a_deny(tmp_path):
    policy = policy_from(tmp_path, BASE)
    c = call("scale_workload", replicas=1)
    labelled = snap(labels={"tier": "web"})
    assert decide(policy, call=c, risk="write", target=TARGET, snapshot=labelled, now=NOW, counts=Counts.from_entries(_results(1))).effect == "allow"
    d = decide(policy, call=c, risk="write", target=TARGET, snapshot=labelled, now=NOW, counts=Counts.from_entries(_results(2)))
    assert (d.effect, d.rule.name) == ("deny", "scale-rate")
    assert "2 of at most 2 calls per 1h in namespace apps" in d.reason
    # older than the window, other namespaces, failed calls: not counted
    stale = _results(5, age=timedelta(hours=2)) + _results(5, namespace="other")
    stale += [e.model_copy(update={"outcome": "error"}) for e in _results(5)]
    assert decide(policy, call=c, risk="write", target=TARGET, snapshot=labelled, now=NOW, counts=Counts.from_entries(stale)).effect == "allow"
    # the sleep tool shares the limit
    mixed = _results(1) + _results(1, tool="sleep_workload")
    assert decide(policy, call=c, risk="write", target=TARGET, snapshot=labelled, now=NOW, counts=Counts.from_entries(mixed)).effect == "deny"


def test_blast_radius_caps_distinct_workloads_per_run(tmp_path):
    policy = policy_from(tmp_path, BASE)
    c = call("scale_workload", replicas=1)
    labelled = snap(labels={"tier": "web"})
    full = Counts.from_entries([], run_workloads={"apps/a", "apps/b"})
    d = decide(policy, call=c, risk="write", target=TARGET, snapshot=labelled, now=NOW, counts=full)
    assert (d.effect, d.rule.name) == ("deny", "max-workloads-per-run")
    again = Counts.from_entries([], run_workloads={"apps/a", "apps/web"})
    assert decide(policy, call=c, risk="write", target=TARGET, snapshot=labelled, now=NOW, counts=again).effect == "allow"
    assert decide(policy, call=call("get_workload"), risk="read", target=TARGET, snapshot=None, now=NOW, counts=full).effect == "allow"


def test_recorder_counts_sum_over_the_limit_tools(tmp_path):
    from opsagent.policy import counts_from_recorder

    seen = []

    class Recorder:
        def count_recent(self, *, tool, namespace, actor, since, outcome="ok"):
            seen.append((tool, namespace, actor, since))
            return 1

    policy = policy_from(tmp_path, BASE)
    counts = counts_from_recorder(Recorder(), known_tools=sorted(TOOL_RISKS))
    d = decide(policy, call=call("scale_workload", replicas=1), risk="write", target=TARGET, snapshot=snap(labels={"tier": "web"}), now=NOW, counts=counts)
    assert d.rule.name == "scale-rate"  # 1 + 1 reaches max 2
    assert sorted(t for t, *_ in seen) == ["scale_workload", "sleep_workload"]
    assert all(ns == "apps" and actor is None and since == NOW - timedelta(hours=1) for _, ns, actor, since in seen)


def test_dry_run_mode_marks_every_decision(tmp_path):
    policy = policy_from(tmp_path, BASE + "mode: dry-run\n")
    d = decide(policy, call=call("get_workload"), risk="read", target=TARGET, snapshot=None, now=NOW)
    assert d.effect == "allow" and d.dry_run
    assert decide(policy, call=call("delete_pod"), risk="write", target=TARGET, snapshot=None, now=NOW).dry_run


def test_time_conditions_use_utc_hour_and_weekday(tmp_path):
    policy = policy_from(tmp_path, """
        scope: {namespaces: [apps]}
        rules:
          - {name: office, tools: [wake_workload], when: 'weekday < 5 && hour >= 8 && hour < 18', effect: allow}
        """)
    monday_9 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    saturday_9 = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)
    monday_9_in_tokyo = monday_9.astimezone(timezone(timedelta(hours=9)))
    assert decide(policy, call=call("wake_workload"), risk="write", target=TARGET, snapshot=None, now=monday_9).effect == "allow"
    assert decide(policy, call=call("wake_workload"), risk="write", target=TARGET, snapshot=None, now=monday_9_in_tokyo).effect == "allow"
    assert decide(policy, call=call("wake_workload"), risk="write", target=TARGET, snapshot=None, now=saturday_9).effect == "deny"


def test_intent_in_conditions(tmp_path):
    policy = policy_from(tmp_path, """
        scope: {namespaces: [apps]}
        intents:
          - {name: web, selector: {namespace: apps, names: [web]}, replicas: {min: 1, max: 4}, idle: {after: 30m}}
        rules:
          - name: bounded
            tools: [scale_workload]
            when: args.replicas >= intent.replicas.min && args.replicas <= intent.replicas.max && intent.idle.after == 1800.0
            effect: allow
        """)
    s = snap(replicas=2)
    assert decide(policy, call=call("scale_workload", replicas=4), risk="write", target=TARGET, snapshot=s, now=NOW).effect == "allow"
    assert decide(policy, call=call("scale_workload", replicas=5), risk="write", target=TARGET, snapshot=s, now=NOW).effect == "deny"
    # no snapshot: no intent, the condition cannot hold
    assert decide(policy, call=call("scale_workload", replicas=2), risk="write", target=TARGET, snapshot=None, now=NOW).effect == "deny"


def test_explain_says_why_each_earlier_rule_did_not_match(tmp_path):
    policy = policy_from(tmp_path, BASE)
    result = explain(policy, call=call("scale_workload", actor="carol", replicas=9), risk="write", target=TARGET,
                     snapshot=snap(labels={"tier": "web"}), now=NOW)
    assert result.decision.rule.name == "writes-need-oncall"
    why = {c.rule: c.why_not for c in result.skipped}
    assert why["reads"] == "risk write is not in ['read']"
    assert why["no-deletes"].startswith("tool scale_workload is not in")
    assert why["scale-small"] == "condition is false: args.replicas <= 3"
    assert result.skipped[0].line == 5  # the line of `- {name: reads, ...}` in BASE
    result = explain(policy, call=call("sleep_workload"), risk="write", target=TARGET, snapshot=snap(), now=NOW)
    why = {c.rule: c.why_not for c in result.skipped}
    assert why["sleep-when-idle"].startswith("condition is false")
    result = explain(policy, call=call("scale_workload", actor="carol", replicas=1), risk="write", target=TARGET, snapshot=None, now=NOW)
    assert {c.rule: c.why_not for c in result.skipped}["scale-small"] == "the rule needs target labels but there is no snapshot"


def test_a_condition_that_cannot_be_evaluated_fails_closed(tmp_path):
    policy = policy_from(tmp_path, """
        scope: {namespaces: [apps]}
        groups: {leads: [alice]}
        rules:
          - {name: no-big-gpu, tools: [scale_workload], when: 'target.gpus_per_replica > 4', effect: deny, reason: too big}
          - {name: leads-approve-busy, tools: [wake_workload], when: 'target.request_rate > 1.0', effect: require_approval, approvers: [alice]}
          - {name: allow-if-idle, tools: [scale_workload, wake_workload], when: 'target.idle_minutes > 10.0', effect: allow}
          - {name: allow-rest, tools: [scale_workload, wake_workload], effect: allow}
        """)
    # no snapshot: target is an empty map, so every condition errors
    d = decide(policy, call=call("scale_workload", replicas=1), risk="write", target=TARGET, snapshot=None, now=NOW)
    assert (d.effect, d.rule.name) == ("deny", "no-big-gpu") and "could not be evaluated" in d.reason
    d = decide(policy, call=call("wake_workload"), risk="write", target=TARGET, snapshot=None, now=NOW)
    assert (d.effect, d.rule.name) == ("require_approval", "leads-approve-busy")
    # with the state known, conditions are simply true or false
    small = snap(gpus_per_replica=1, request_rate=0.0)
    d = decide(policy, call=call("scale_workload", replicas=1), risk="write", target=TARGET, snapshot=small, now=NOW)
    assert (d.effect, d.rule.name) == ("allow", "allow-rest")  # idle_minutes is null: allow-if-idle does not match
    assert "could not be evaluated" not in d.reason


def test_a_confirm_rule_marks_its_write_decisions_and_never_a_read(tmp_path):
    policy = policy_from(tmp_path, """
        scope: {namespaces: [apps]}
        rules:
          - {name: everything-confirmed, risk: [read, write], actors: [carol], effect: allow, confirm: true}
          - {name: others-ask, risk: write, effect: require_approval, approvers: [alice], confirm: true}
        """)
    table = [  # (tool, risk, actor) -> (effect, confirm)
        (("sleep_workload", "write", "carol"), ("allow", True)),
        (("get_workload", "read", "carol"), ("allow", False)),
        (("scale_workload", "write", "dave"), ("require_approval", True)),
        (("sleep_workload", "write", "daemon"), ("require_approval", True)),
    ]
    for (tool, risk, actor), expected in table:
        d = decide(policy, call=call(tool, actor=actor, channel="cli"), risk=risk, target=TARGET, snapshot=snap(),
                   now=NOW, counts=NO_COUNTS)
        assert (d.effect, d.confirm) == expected, (tool, actor)
    shown = explain(policy, call=call("sleep_workload", actor="carol", channel="cli"), risk="write", target=TARGET,
                    snapshot=snap(), now=NOW).lines()
    assert any(line.startswith("confirm:") for line in shown), shown
