"""A detection pass resolves each workload's intent once, with the same answers as the policy's book."""

from __future__ import annotations

from pathlib import Path

from opsagent.model import Workload, WorkloadRef
from opsagent.policy import load_policy
from opsagent.policy import resolve as resolve_module
from tools import REGISTRY

POLICY = load_policy(Path(__file__).resolve().parent.parent / "policies", tool_risks={n: t.risk for n, t in REGISTRY.items()})


def _workloads() -> list[Workload]:
    return [
        Workload(ref=WorkloadRef(namespace="render", name="render-ui"), replicas=1),
        Workload(ref=WorkloadRef(namespace="render", name="render-ui"), replicas=1,
                 annotations={"opsagent.dev/protected": "true"}),
        Workload(ref=WorkloadRef(namespace="team-a", name="svc"), replicas=2,
                 annotations={"opsagent.dev/idle-after": "5m", "opsagent.dev/max-replicas": "9"}),
        Workload(ref=WorkloadRef(namespace="apps", name="web"), replicas=1),
    ]


def test_one_pass_gives_the_books_answers_and_resolves_each_workload_once(monkeypatch):
    workloads = _workloads()
    expected = [POLICY.intent_book.resolve(w) for w in workloads]
    calls = []
    real = resolve_module.IntentBook.resolve
    monkeypatch.setattr(resolve_module.IntentBook, "resolve", lambda self, w: calls.append(w) or real(self, w))
    one = POLICY.intent_book.for_one_pass()
    for _ in range(4):  # four detectors ask
        assert [one.resolve(w) for w in workloads] == expected
    assert len(calls) == len(workloads)
    assert expected[1].intent.protected and not expected[0].intent.protected  # an equal-looking workload is not confused


def test_a_new_pass_starts_empty():
    workloads = _workloads()
    first = POLICY.intent_book.for_one_pass()
    first.resolve(workloads[0])
    assert POLICY.intent_book.for_one_pass()._seen == {}
