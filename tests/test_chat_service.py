"""ChatService end to end on the simulated cluster, a real policy and a real SQLite audit store.

A chat command runs as the person who typed it, through the gate: the reply
says what was done, what was refused (naming the rule) and what waits for
approval (with its id and who may approve). Approvals follow the queue's rules
and an approved call runs exactly once.
"""

from __future__ import annotations

import pytest

from doubles.chat_fixtures import write_example_policy
from opsagent.chat.service import READ_ONLY_RULE
from opsagent.chat.users import Actor, UserMap
from opsagent.chat.wiring import build_runtime


@pytest.fixture()
def rt(tmp_path):
    write_example_policy(tmp_path / "pol")
    runtime = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "audit.db")
    yield runtime
    runtime.close()


def replicas(rt, ref):
    return rt.cluster.snapshot().workload(ref).replicas


def audit_rows(rt, **where):
    rows = [r.model_dump() for r in rt.store.list()]
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def test_allowed_write_runs_as_the_actor_and_is_audited(rt):
    reply = rt.service.handle("wake chat/chat-ui", actor="carol", channel="cli")
    assert [d.tool for d in reply.done] == ["wake_workload"], reply.text
    assert replicas(rt, "chat/chat-ui") >= 1
    kinds = [(r["kind"], r["actor"], r["channel"]) for r in audit_rows(rt, tool="wake_workload")]
    assert ("proposal", "carol", "cli") in kinds and ("result", "carol", "cli") in kinds
    assert "done: `chat/chat-ui`: awake" in reply.text


def test_denied_write_names_the_rule_and_changes_nothing(rt):
    before = replicas(rt, "render/render-ui")
    reply = rt.service.handle("scale render/render-ui to 3", actor="alice", channel="cli")
    assert reply.done == [] and len(reply.refused) == 1
    assert reply.refused[0].rule.endswith("chat-example.yaml:no-scaling-render")
    assert "render is scaled by its own team" in reply.text
    assert replicas(rt, "render/render-ui") == before


def test_approval_flow_requester_cannot_approve_outsider_cannot_approver_runs_once(rt):
    reply = rt.service.handle("scale inference/llm to 2", actor="carol", channel="cli")
    assert reply.done == [] and len(reply.pending) == 1
    pending = reply.pending[0]
    assert pending.approvers == ["group:leads"]
    assert f"#{pending.approval_id}" in reply.text and "group:leads" in reply.text
    assert replicas(rt, "inference/llm") == 1

    own = rt.service.handle(f"approve {pending.approval_id}", actor="carol", channel="cli")
    assert own.refused and own.refused[0].rule == "approvals:SelfApproval"
    outsider = rt.service.handle(f"approve {pending.approval_id}", actor="dave", channel="cli")
    assert outsider.refused and outsider.refused[0].rule == "approvals:NotAuthorized"
    assert replicas(rt, "inference/llm") == 1

    ok = rt.service.handle(f"approve {pending.approval_id} capacity is there", actor="alice", channel="cli")
    assert [d.tool for d in ok.done] == ["scale_workload"], ok.text
    assert replicas(rt, "inference/llm") == 2

    again = rt.service.handle(f"approve {pending.approval_id}", actor="bob", channel="cli")
    assert again.done == [] and again.refused[0].rule == "approvals:AlreadyDecided"
    results = audit_rows(rt, kind="result", tool="scale_workload", outcome="ok")
    assert len(results) == 1
    refusals = [r for r in audit_rows(rt, kind="approval", outcome="denied")]
    assert {r["actor"] for r in refusals} >= {"carol", "dave", "bob"}


def test_reject_with_reason(rt):
    reply = rt.service.handle("restart inference/llm", actor="carol", channel="cli")
    approval_id = reply.pending[0].approval_id
    out = rt.service.handle(f"reject {approval_id} because not during the demo", actor="bob", channel="cli")
    assert out.refused == [] and "rejected" in out.text
    assert rt.approvals.get(approval_id).state == "rejected"
    listed = rt.service.handle("show approvals", actor="bob", channel="cli")
    assert "no approvals waiting" in listed.text


def test_read_only_actor_reads_but_write_and_approve_are_refused_and_audited(tmp_path):
    write_example_policy(tmp_path / "pol")
    users = UserMap(users={"U1": "alice"})
    rt = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "a.db", actor_resolver=users.resolve)
    try:
        shown = rt.service.handle("show gpus", actor="U999", channel="slack")
        assert shown.refused == [] and "GPU(s)" in shown.text
        refused = rt.service.handle("wake chat/chat-ui", actor="U999", channel="slack")
        assert refused.refused[0].rule == READ_ONLY_RULE
        assert replicas(rt, "chat/chat-ui") == 0
        rows = audit_rows(rt, actor="slack:U999", outcome="denied")
        assert rows and rows[0]["rule_name"] == "chat-read-only" and rows[0]["tool"] == "wake_workload"
        pending = rt.service.handle("scale inference/llm to 2", actor="U1", channel="slack").pending[0]
        nope = rt.service.handle(f"approve {pending.approval_id}", actor="U999", channel="slack")
        assert nope.refused[0].rule == READ_ONLY_RULE
        assert rt.approvals.get(pending.approval_id).state == "pending"
    finally:
        rt.close()


def test_why_describes_the_workload_and_its_pods(rt):
    reply = rt.service.handle("why is inference/llm pending?", actor="carol", channel="cli")
    assert reply.understood and reply.command == "why is inference/llm pending"
    assert "inference/llm: 1/1 ready" in reply.text
    assert "pod `inference/llm-" in reply.text


def test_show_workloads_and_help_and_not_understood(rt):
    out = rt.service.handle("show workloads in inference", actor="carol", channel="cli")
    assert "`inference/llm`" in out.text and "`render/render-ui`" not in out.text
    helped = rt.service.handle("help", actor="carol", channel="cli")
    assert "scale NS/NAME to N" in helped.text
    lost = rt.service.handle("make it faster", actor="carol", channel="cli")
    assert not lost.understood and "Commands that work" in lost.text and lost.done == []


def test_agent_gets_free_text_but_not_from_read_only_actors(tmp_path):
    write_example_policy(tmp_path / "pol")
    calls = []

    class Agent:
        def handle_message(self, text, *, actor, channel):
            calls.append((text, actor, channel))
            return type("Report", (), {"summary": "looked into it", "results": [], "run_id": "r1"})()

    rt = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "a.db", model="m",
                       agent_factory=lambda **kw: Agent())
    try:
        reply = rt.service.handle("is the cluster healthy?", actor="carol", channel="cli")
        assert calls == [("is the cluster healthy?", "carol", "cli")]
        assert reply.command == "agent" and "looked into it" in reply.text
        rt.service.resolve = lambda a: Actor(name=a, read_only=True)
        rt.service.handle("is the cluster healthy?", actor="x", channel="slack")
        assert len(calls) == 1
    finally:
        rt.close()


def test_a_write_the_model_proposes_waits_for_the_asker_then_for_a_lead_and_runs_once(tmp_path):
    from opsagent.agent import Agent
    from opsagent.evals.scripted import call, scripted_planner, text

    write_example_policy(tmp_path / "pol")

    def factory(**kw):
        planner = scripted_planner(call("scale_workload", namespace="inference", name="llm", replicas=2),
                                   text("I proposed scaling llm to 2"))
        return Agent(gate=kw["gate"], policy=kw["policy"], playbooks=None, observe=kw["cluster"].snapshot,
                     detect_fn=lambda snap: [], planner=planner, checkpoint_path=kw["db"], recorder=kw["store"],
                     clock=kw["clock"], approvals=kw["approvals"])

    rt = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "a.db", model="scripted",
                       agent_factory=factory)
    try:
        asked = rt.service.handle("inference/llm needs more capacity for the launch", actor="carol", channel="slack")
        assert asked.command == "agent" and asked.pending == [] and len(asked.proposed) == 1, asked.text
        assert asked.proposed[0].named and rt.approvals.list() == []
        number = asked.proposed[0].confirmation_id
        confirmed = rt.service.handle(f"confirm {number}", actor="carol", channel="slack")
        assert len(confirmed.pending) == 1, confirmed.text  # the policy still decides: a lead must approve
        approval = rt.approvals.get(confirmed.pending[0].approval_id)
        assert approval.requested_by == "carol" and replicas(rt, "inference/llm") == 1
        done = rt.service.handle(f"approve {approval.id}", actor="alice", channel="slack")
        assert [d.tool for d in done.done] == ["scale_workload"], done.text
        assert replicas(rt, "inference/llm") == 2
        assert rt.approvals.get(approval.id).state == "executed"
    finally:
        rt.close()
