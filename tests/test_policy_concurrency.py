"""Deciding from many threads at once: a condition's evaluation error belongs to that call alone.

The wake proxy and the threaded Slack server decide concurrently with the
daemon. Promise tried here: a deny rule whose condition cannot be evaluated
still applies (fail closed) even while other threads evaluate the same
compiled condition successfully at the same moment, so one thread can never
clear another's error and let its call fall through to a later allow.
"""

from __future__ import annotations

import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

from opsagent.model import Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import NO_COUNTS, decide, load_policy
from opsagent.policy.cel import compile_expr
from tools.base import Target
from tools import risk_table

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
REF = WorkloadRef(namespace="apps", name="web")

POLICY = """
scope: {namespaces: [apps]}
rules:
  - name: no-big-jumps
    tools: [scale_workload]
    when: args.replicas > target.replicas + 1
    effect: deny
    reason: one step at a time
  - {name: scale-anything-else, tools: [scale_workload], effect: allow}
"""


def test_check_returns_the_error_with_the_value_and_keeps_nothing():
    expr = compile_expr("args.replicas > 2", where="t")
    assert expr.check({"args": {"replicas": 3}}) == (True, None)
    matched, error = expr.check({"args": {}})
    assert matched is False and error
    assert expr.check({"args": {"replicas": 1}}) == (False, None)
    assert not hasattr(expr, "last_error")


def test_concurrent_decisions_never_leak_a_condition_error_into_an_allow(tmp_path: Path):
    (tmp_path / "p.yaml").write_text(textwrap.dedent(POLICY).lstrip("\n"), encoding="utf-8")
    policy = load_policy(tmp_path, tool_risks=risk_table())
    snapshot = Snapshot(time=NOW, workloads=(Workload(ref=REF, replicas=1),))
    target = Target(namespace="apps", workload=REF)
    # A string where a number belongs makes `args.replicas > ...` fail to evaluate: the deny must still apply.
    broken = ToolCall(tool="scale_workload", args={"namespace": "apps", "name": "web", "replicas": "lots"}, actor="daemon")
    fine = ToolCall(tool="scale_workload", args={"namespace": "apps", "name": "web", "replicas": 2}, actor="daemon")
    wrong: list[str] = []
    start = threading.Barrier(8)

    def worker(call: ToolCall, expected: str) -> None:
        start.wait()
        for _ in range(400):
            got = decide(policy, call=call, risk="write", target=target, snapshot=snapshot, now=NOW, counts=NO_COUNTS)
            if got.effect != expected:
                wrong.append(f"{call.args['replicas']!r}: {got.effect} by {got.rule.name}")

    threads = [threading.Thread(target=worker, args=(broken, "deny") if i % 2 else (fine, "allow")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
