"""Which calls a run started by a person's message holds for that person's yes (`opsagent.agent.conversation`).

A table: in a message run only reads reach the gate; writes are held, and so is
anything whose risk cannot be told. Finding runs (the daemon's) are not affected.
"""

from __future__ import annotations

import pytest

from opsagent.agent.conversation import PROPOSED, hold, is_held
from opsagent.model import Decision, RuleRef, ToolCall
from tools import REGISTRY


class TableGate:
    tools = REGISTRY

    def __init__(self, effect: str = "allow") -> None:
        self.effect = effect

    def preview(self, call: ToolCall) -> Decision:
        return Decision(effect=self.effect, rule=RuleRef(file="p.yaml", name="r"), reason="because")  # type: ignore[arg-type]


class OpaqueGate:  # shows no tool table
    pass


@pytest.mark.parametrize("gate, tool, kind, held", [
    (TableGate(), "list_workloads", "message", False),
    (TableGate(), "sleep_workload", "message", True),
    (TableGate(), "cordon_node", "message", True),
    (TableGate(), "delete_workload", "message", True),
    (TableGate(), "free_all_gpus", "message", False),   # unknown to the gate: it refuses it as invalid
    (TableGate(), "sleep_workload", "finding", False),  # the daemon's runs go to the gate as before
    (OpaqueGate(), "list_workloads", "message", False),
    (OpaqueGate(), "sleep_workload", "message", True),
    (OpaqueGate(), "free_all_gpus", "message", True),   # cannot tell what it is: held
])
def test_what_a_message_run_holds(gate, tool, kind, held):
    assert is_held(gate, ToolCall(tool=tool, args={}, actor="carol"), kind=kind) is held


def test_a_held_call_the_policy_would_deny_is_reported_denied_not_proposed():
    call = ToolCall(tool="sleep_workload", args={"namespace": "a", "name": "b"}, actor="carol")
    assert hold(TableGate("deny"), call) == ("denied", "denied by p.yaml:r: because")
    status, text = hold(TableGate("require_approval"), call)
    assert status == PROPOSED and "carol" in text and "confirm" in text
