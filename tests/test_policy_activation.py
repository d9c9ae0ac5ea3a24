"""CEL conditions see only the fields they read, and that never changes a decision.

`Expr` hands the runtime each map variable cut down to the fields the
expression reads (a smaller conversion). These tests compare decisions made
that way with decisions made on the whole context, over randomised calls and
snapshots against the shipped policies, and pin down when a variable must be
passed whole.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsagent.model import Pod, RolloutState, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import NO_COUNTS, decide, load_policy
from opsagent.policy.cel import Expr, compile_expr, fields_read
from tools import REGISTRY
from tools.base import Target

POLICIES = Path(__file__).resolve().parent.parent / "policies"
POLICY = load_policy(POLICIES, tool_risks={n: t.risk for n, t in REGISTRY.items()})
NOW = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)  # a Saturday night: the time-bound rules apply
NAMES = {"render": ("render-ui", "render-batch"), "inference": ("llm", "embedder"), "chat": ("chat-ui",),
         "training": ("finetune",), "team-a": ("svc",), "apps": ("web",)}
REFS = [WorkloadRef(namespace=ns, name=n) for ns, names in NAMES.items() for n in names]
DAEMON_TOOLS = ["sleep_workload", "wake_workload", "scale_workload", "restart_rollout", "undo_rollout", "delete_pod"]
MAYBE_MINUTES = st.one_of(st.none(), st.integers(min_value=0, max_value=300))


@st.composite
def workloads(draw, ref: WorkloadRef) -> Workload:
    idle, low = draw(MAYBE_MINUTES), draw(MAYBE_MINUTES)
    annotations = draw(st.sampled_from([{}, {"opsagent.dev/idle-after": "20m", "opsagent.dev/max-replicas": "3"},
                                        {"opsagent.dev/protected": "true"}]))
    return Workload(
        ref=ref, replicas=draw(st.integers(0, 4)), gpus_per_replica=draw(st.integers(0, 2)),
        annotations=annotations,
        request_rate=draw(st.sampled_from([None, 0.0, 2.5])), gpu_utilization=draw(st.sampled_from([None, 0.5, 70.0])),
        last_request_at=None if idle is None else NOW - timedelta(minutes=idle),
        low_gpu_since=None if low is None else NOW - timedelta(minutes=low),
        rollout=RolloutState(status=draw(st.sampled_from(["complete", "failed", "progressing"]))),
    )


@st.composite
def snapshots(draw, named: WorkloadRef) -> Snapshot:
    """A snapshot that usually holds the workload the call names, and any others."""
    present = draw(st.lists(st.sampled_from(REFS), unique=True, min_size=0, max_size=len(REFS)))
    if named not in present and draw(st.integers(0, 9)) > 0:
        present.append(named)
    found = tuple(draw(workloads(ref)) for ref in present)
    pods = tuple(
        Pod(namespace=w.ref.namespace, name=f"{w.ref.name}-0", workload=w.ref, phase="Running",
            reason=draw(st.sampled_from([None, "CrashLoopBackOff", "ImagePullBackOff"])), restarts=draw(st.integers(0, 6)))
        for w in found
    )
    return Snapshot(time=NOW, workloads=found, pods=pods)


@st.composite
def calls(draw) -> tuple[ToolCall, str, Target]:
    routine = draw(st.booleans())  # half the calls are the daemon's own routine, which the CEL rules decide
    tool = draw(st.sampled_from(DAEMON_TOOLS if routine else sorted(REGISTRY)))
    ref = draw(st.sampled_from(REFS))
    actor = draw(st.sampled_from(["daemon", "daemon", "wake-proxy"] if routine else ["daemon", "wake-proxy", "alice", "erin", "mallory"]))
    channel = {"daemon": "daemon", "wake-proxy": "wake-proxy"}.get(actor) or draw(st.sampled_from(["cli", "slack"]))
    args: dict = {"namespace": ref.namespace, "name": ref.name}
    target = Target(namespace=ref.namespace, workload=ref)
    if tool in ("scale_workload", "wake_workload") and draw(st.booleans()):
        args["replicas"] = draw(st.integers(0, 5))
    if tool in ("delete_pod", "describe_pod"):
        args["name"] = draw(st.sampled_from([f"{ref.name}-0", "gone-0"]))
        target = Target(namespace=ref.namespace)
    return ToolCall(tool=tool, args=args, actor=actor, channel=channel), REGISTRY[tool].risk, target


def _decide(call, risk, target, snapshot):
    return decide(POLICY, call=call, risk=risk, target=target, snapshot=snapshot, now=NOW, counts=NO_COUNTS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decisions_are_the_same_as_on_the_whole_context(data, monkeypatch_module):
    call = data.draw(calls())
    snapshot = data.draw(snapshots(WorkloadRef(namespace=call[0].args["namespace"], name=call[0].args["name"].removesuffix("-0"))))
    narrowed = _decide(*call, snapshot)
    with monkeypatch_module.context() as m:
        m.setattr(Expr, "activation", lambda self, context: context)
        whole = _decide(*call, snapshot.model_copy())
    assert narrowed == whole


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as m:
        yield m


def test_fields_read_names_every_field_and_gives_up_on_whole_uses():
    assert fields_read("has(target.pod) && target.pod.restarts >= 3 && target\n  .replicas > 0", "target") == {"pod", "replicas"}
    assert fields_read("args.replicas <= 2", "intent") == frozenset()
    assert fields_read("size(target) > 2", "target") is None
    assert fields_read('target["replicas"] > 0', "target") is None
    assert fields_read("[1, 2].all(target, target > 0)", "target") is None
    assert fields_read("args.target_x > 0", "target") == frozenset()


@pytest.mark.parametrize("source, context", [
    ("has(target.pod) && target.pod.restarts >= 3", {"target": {"replicas": 1, "pod": {"restarts": 4}}}),
    ("has(target.pod)", {"target": {"replicas": 1}}),
    ("target.missing > 1", {"target": {"replicas": 1}}),
    ("size(target) == 2", {"target": {"replicas": 1, "name": "x"}}),
    ("has(intent.idle) && !intent.protected", {"intent": {"idle": {"after": 60.0}, "protected": False, "wake": {}}}),
])
def test_narrowed_and_whole_evaluation_agree(source, context):
    expr = compile_expr(source, where="test")
    whole = expr._program.execute
    try:
        expected = (whole(context), None)
    except Exception as exc:  # noqa: BLE001 - the runtime's own error for the whole context
        expected = (None, type(exc).__name__)
    try:
        got = (expr.evaluate(context), None)
    except Exception as exc:  # noqa: BLE001
        got = (None, type(exc.__cause__).__name__)
    assert got == expected
