"""Judging a model's turns (opsagent.agent.turns): pure tables, no graph, no server.

Spec: in a finding's run, a model's call is refused before the gate when its
tool was not offered for the finding, when a write targets anything but the
finding's subject (its workload, what its details and playbook steps name,
their pods, its node), or when the same call was already refused in the run.
Names compare exactly, so look-alikes are outside (those the tools' name
patterns reject are left to the gate, which refuses them as invalid and says
why). A turn is usable when a
write ran or went to a person, unusable when calls were refused and nothing
progressed, neutral otherwise.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from opsagent.agent.turns import call_key, judge_turn, offered_tools, refusal, scope_of
from opsagent.model import Finding, Pod, Snapshot, Workload, WorkloadRef
from tools import REGISTRY

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _snapshot() -> Snapshot:
    def wl(ns: str, name: str) -> Workload:
        return Workload(ref=WorkloadRef(namespace=ns, name=name), replicas=1, ready_replicas=1, gpus_per_replica=1)

    pods = (Pod(namespace="render", name="render-ui-7f9c-x2", workload=WorkloadRef(namespace="render", name="render-ui")),
            Pod(namespace="ml", name="bystander-0", workload=WorkloadRef(namespace="ml", name="bystander")))
    return Snapshot(time=NOW, workloads=(wl("render", "render-ui"), wl("train", "finetune"), wl("ml", "bystander")),
                    pods=pods)


FINDING = Finding(kind="jobs_waiting", subject="train/finetune", summary="a job waits",
                  details={"idle_holders": [{"namespace": "render", "name": "render-ui"}], "node": "gpu-3"})
STEPS = [("sleep_workload", {"namespace": "render", "name": "render-ui"})]


class Playbook:  # the two attributes the agent reads from a playbook
    steps = [type("Step", (), {"tool": "sleep_workload"})()]
    guidance = "Sleep each idle holder; use cordon_node only if a node is broken."


def _refusal(tool: str, args: dict, refused: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
    offered = offered_tools(finding=FINDING, playbook=Playbook(), tools=REGISTRY)
    return refusal(tool, args, tools=REGISTRY, offered=offered, scope=scope_of(FINDING, _snapshot(), STEPS),
                   refused=set(refused))


@pytest.mark.parametrize("tool,args,expected", [
    ("sleep_workload", {"namespace": "render", "name": "render-ui"}, None),          # what the playbook does
    ("get_workload", {"namespace": "kube-system", "name": "coredns"}, None),         # reads may look anywhere
    ("describe_pod", {"namespace": "render", "name": "render-ui-7f9c-x2"}, None),
    ("cordon_node", {"node": "gpu-3", "reason": "x"}, None),                         # named in guidance, node in details
    ("no_such_tool", {"x": 1}, None),                                                # left to the gate (invalid)
    ("sleep_workload", {"namespace": "ml", "name": "bystander"}, "outside"),
    ("sleep_workload", {"namespace": "Render", "name": "render-ui"}, "gate"),         # case: not a valid name
    ("sleep_workload", {"namespace": "render", "name": "render\u2010ui"}, "gate"),    # a hyphen look-alike
    ("sleep_workload", {"namespace": "render", "name": "render-ui "}, "gate"),        # trailing space
    ("sleep_workload", {"namespace": "render"}, "gate"),                              # a required field missing
    ("sleep_workload", {"namespace": "render", "name": "renderui"}, "outside"),       # a valid name, not the subject
    ("sleep_workload", {"namespace": "render", "name": "render-ui-7f9c-x2"}, "outside"),  # a pod name is no workload
    ("delete_pod", {"namespace": "render", "name": "render-ui-7f9c-x2"}, "not offered"),
    ("cordon_node", {"node": "gpu-4", "reason": "x"}, "outside"),
    ("scale_workload", {"namespace": "render", "name": "render-ui", "replicas": 0}, "not offered"),
    ("delete_workload", {"namespace": "train", "name": "finetune"}, "not offered"),
    ("change_policy", {"file": "x.yaml", "content": "rules: []", "reason": "r"}, "not offered"),
])
def test_what_a_model_may_propose_in_a_finding_run(tool, args, expected):
    got = _refusal(tool, args)
    if expected == "gate":  # left to the gate, whose validation refuses it as invalid and says which field is wrong
        with pytest.raises(ValidationError):
            REGISTRY[tool].input_model.model_validate(args)
        expected = None
    assert (got is None) if expected is None else (got is not None and expected in got), got


def test_a_call_already_refused_is_refused_again_before_the_gate_even_a_read():
    args = {"namespace": "render", "name": "render-ui"}
    assert _refusal("get_workload", args, {call_key("get_workload", args)}) == "the same call was already refused in this run"
    # the same tool with other arguments is a different call; key order does not matter
    assert _refusal("get_workload", {"name": "render-ui", "namespace": "render"}, {call_key("get_workload", args)}) is not None
    assert _refusal("get_workload", {"namespace": "train", "name": "finetune"}, {call_key("get_workload", args)}) is None


def test_calls_past_the_limit_of_one_answer_are_dropped():
    from opsagent.agent.turns import MAX_CALLS_PER_TURN, dropped

    assert [dropped(i) for i in range(MAX_CALLS_PER_TURN)] == [None] * MAX_CALLS_PER_TURN
    assert dropped(MAX_CALLS_PER_TURN) == f"more than {MAX_CALLS_PER_TURN} calls in one answer"


def test_outside_a_finding_only_repeats_are_refused():
    args = {"namespace": "ml", "name": "bystander"}
    assert refusal("delete_workload", args, tools=REGISTRY, offered=None, scope=None, refused=set()) is None
    assert refusal("delete_workload", args, tools=REGISTRY, offered=None, scope=None,
                   refused={call_key("delete_workload", args)}) is not None


def _row(tool: str, status: str, message: str = "") -> dict:
    return {"tool": tool, "status": status, "message": message}


@pytest.mark.parametrize("rows,verdict", [
    ([_row("sleep_workload", "ok")], "usable"),
    ([_row("set_resources", "pending_approval")], "usable"),                       # a person decides: progress
    ([_row("scale_workload", "denied", "no rule"), _row("sleep_workload", "ok")], "usable"),
    ([_row("get_workload", "ok")], "neutral"),                                     # reading is not progress, nor harm
    ([_row("sleep_workload", "error", "API timed out")], "neutral"),               # the cluster's fault, not the model's
    ([], "neutral"),
    ([_row("get_workload", "ok"), _row("scale_workload", "denied", "no rule")], "unusable"),
    ([_row("exec_shell", "invalid", "unknown tool")], "unusable"),
    ([_row("sleep_workload", "denied", "refused before the gate: outside")], "unusable"),
    ([_row("get_workload", "invalid", "bad namespace")], "unusable"),
])
def test_judging_a_turn(rows, verdict):
    got, why = judge_turn(rows, tools=REGISTRY)
    assert got == verdict
    assert (why is not None) == (verdict == "unusable")
