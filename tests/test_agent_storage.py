"""Bounded storage: oversized arguments, the history sent to the model, and checkpoint retention.

Spec: tool arguments over the gate's 16 KiB limit are kept in audit rows as
their size, SHA-256 and a 200-character prefix (and name no target), and the
chain still verifies; a stand-in of that shape is refused as too large, a
small forgery of it is refused as bad arguments. A model answer with
oversized arguments stays in the conversation with a short note in their
place, paired with its tool result. The daemon prunes the checkpoints of
runs finished longer ago than the retention to one small record of the
outcome, so the next epoch of a finding and the playbook's retry count still
work; a run waiting for a person is never pruned. One simulated day with a
hostile model grows the database by less than 5 MB.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3

import pytest

from opsagent.agent import AgentConfig
from opsagent.agent.history import kept_answer
from opsagent.audit import AuditStore
from opsagent.model import MAX_ARGS_BYTES, AuditEntry, ToolCall, bounded_json, canonical_json
from opsagent.testing.agent_world import idle_findings, tiny_world
from opsagent.testing.fake_openai import FakeOpenAI, Reply
from opsagent.testing.fake_ollama import FakeOllama, Reply as OllamaReply

BLOB = "Z" * 400_000
MODEL = "Qwen/Qwen3-8B"


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


def test_bounded_json_keeps_small_values_and_stands_in_for_big_ones():
    small = {"namespace": "ml", "name": "llm"}
    assert bounded_json(small) is small
    exact = {"x": "a" * (MAX_ARGS_BYTES - len('{"x":""}'))}
    assert len(canonical_json(exact)) == MAX_ARGS_BYTES and bounded_json(exact) is exact
    big = {"namespace": "ml", "name": "llm", "pad": BLOB}
    text = canonical_json(big)
    assert bounded_json(big) == {"_omitted": True, "_bytes": len(text), "_sha256": hashlib.sha256(text.encode()).hexdigest(),
                                 "_prefix": text[:200]}
    wide = {"pad": "é" * 9000}   # 18,000 bytes in 9,000 characters: the limit is in bytes
    assert bounded_json(wide)["_bytes"] > MAX_ARGS_BYTES
    loop: dict = {}
    loop["self"] = loop
    assert bounded_json(loop) == {"_omitted": True, "_bytes": None, "_reason": "not representable as JSON"}


def test_audit_rows_never_hold_oversized_arguments_or_data(tmp_path):
    with AuditStore(tmp_path / "a.db") as store:
        store.record(AuditEntry(time="2026-01-05T00:00:00Z", kind="proposal", actor="daemon", tool="scale_workload",
                                args={"namespace": "ml", "name": "llm", "pad": BLOB}, data={"echo": BLOB}))
        [row] = store.list(limit=1)
        assert row.args["_omitted"] is True and row.args["_bytes"] > 400_000 and len(row.args["_prefix"]) == 200
        assert row.data["_omitted"] is True
        assert (row.namespace, row.workload) == (None, None)
        assert store.verify().ok
    assert (tmp_path / "a.db").stat().st_size < 200_000


def test_the_gate_refuses_a_stand_in_as_too_large_and_a_forged_one_as_bad_arguments(world):
    stand_in = bounded_json({"namespace": "ml", "name": "llm", "replicas": 0, "pad": BLOB})
    result = world.gate.submit(ToolCall(tool="scale_workload", args=stand_in, actor="daemon"))
    assert result.status == "invalid" and f"are {stand_in['_bytes']} bytes" in result.message
    forged = {"_omitted": True, "_bytes": 12}   # claims to be small: parsed as arguments, and refused as such
    result = world.gate.submit(ToolCall(tool="scale_workload", args=forged, actor="daemon"))
    assert result.status == "invalid" and "bad arguments for scale_workload" in result.message
    assert world.tiny.workloads["ml/llm"].replicas == 2


def test_kept_answer_replaces_only_oversized_arguments():
    from langchain_core.messages import AIMessage

    answer = AIMessage(content="", id="a1", tool_calls=[
        {"name": "scale_workload", "args": {"namespace": "ml", "name": "llm", "pad": BLOB}, "id": "c1"},
        {"name": "get_workload", "args": {"namespace": "ml", "name": "llm"}, "id": "c2"}],
        additional_kwargs={"tool_calls": [{"function": {"arguments": json.dumps({"pad": BLOB})}}]})
    kept = kept_answer(answer)
    assert [c["id"] for c in kept.tool_calls] == ["c1", "c2"] and kept.id == "a1"
    assert "over the 16384-byte limit" in kept.tool_calls[0]["args"]["_refused"]
    assert kept.tool_calls[1]["args"] == {"namespace": "ml", "name": "llm"}
    assert BLOB not in json.dumps(kept.model_dump(), default=str)
    plain = AIMessage(content="", id="a2", tool_calls=[{"name": "get_workload", "args": {"name": "x"}, "id": "c3"}])
    assert kept_answer(plain) is plain


def test_the_model_is_not_sent_its_own_oversized_arguments_again(world):
    with FakeOpenAI([Reply.call("sleep_workload", namespace="ml", name="llm", why=BLOB),
                     Reply.call("sleep_workload", namespace="ml", name="llm"),
                     Reply.text("done")], models=(MODEL,)) as server:
        agent = world.agent("llm", config=AgentConfig(model=f"openai:{MODEL}", base_url=server.url))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
        second = json.dumps(server.chat_requests[1])
    assert [(a.tool, a.status) for a in report.actions] == [("sleep_workload", "invalid"), ("sleep_workload", "ok")]
    assert BLOB[:1000] not in second and "over the 16384-byte limit" in second
    assert len(second) < 40_000
    refused = report.actions[0]
    assert refused.args["_omitted"] is True and "the limit is 16384 bytes" in refused.message
    agent.close()
    conn = sqlite3.connect(world.tmp / "ops.db")
    assert conn.execute("SELECT max(length(args)) FROM audit").fetchone()[0] < 1000
    checkpoints = sqlite3.connect(world.tmp / "checkpoints.db")
    total = checkpoints.execute("SELECT sum(length(checkpoint)) + (SELECT sum(length(value)) FROM writes) "
                                "FROM checkpoints").fetchone()[0]
    assert total < 400_000   # the 400 KB argument is in no checkpoint, not even once


def _checkpoints(agent, thread_id: str) -> int:
    return len(list(agent.saver.list({"configurable": {"thread_id": thread_id}})))


def test_finished_runs_are_pruned_after_the_retention_and_the_next_epoch_still_follows(world):
    agent = world.agent("offline", config=AgentConfig(checkpoint_retention_seconds=3600))
    [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
    first = agent.handle_finding(finding)
    assert first.status == "done" and first.resolved is True
    many = _checkpoints(agent, first.run_id)
    assert many > 3
    world.clock.advance(1800)
    assert agent.prune() == 0 and _checkpoints(agent, first.run_id) == many   # within the retention: kept
    world.clock.advance(1801)
    assert agent.prune() == 1 and _checkpoints(agent, first.run_id) == 1
    assert agent.prune() == 0                                                # nothing new to prune
    kept = agent.state(first.run_id)
    assert (kept.status, kept.resolved, kept.summary) == ("done", True, first.summary)
    assert [(a.tool, a.status) for a in kept.actions] == [(a.tool, a.status) for a in first.actions]
    again = agent.handle_finding(finding)   # the same finding again: a new epoch, never the old thread id
    assert again.run_id == first.run_id + "#2"
    assert world.store.verify().ok


def _world_with(tmp_path, **effects):
    from opsagent.testing.agent_world import DEFAULT_TABLE

    return tiny_world(tmp_path, table={**DEFAULT_TABLE, **effects})


def test_a_pruned_failure_still_counts_toward_the_playbook_retry_limit(tmp_path):
    world = _world_with(tmp_path, sleep_workload="deny", scale_workload="deny")
    try:
        agent = world.agent("offline", config=AgentConfig(checkpoint_retention_seconds=0))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        playbook = world.playbooks.for_finding(finding, world.cluster.snapshot())
        limit = int(playbook.retry.max_attempts)
        assert limit >= 2
        runs = []
        for _ in range(limit):
            runs.append(agent.handle_finding(finding))
            world.clock.advance(3600)   # past the playbook's backoff
            agent.prune()
        assert [r.run_id for r in runs] == [f"finding:{finding.id}"] + [f"finding:{finding.id}#{n}" for n in range(2, limit + 1)]
        assert all(r.resolved is not True and r.denied for r in runs)
        assert all(_checkpoints(agent, r.run_id) == 1 for r in runs)
        held = agent.handle_finding(finding)   # the retry limit is reached, counted from the pruned runs
        assert "not trying again" in held.summary and held.run_id == runs[-1].run_id
        assert world.tiny.workloads["ml/llm"].replicas == 2
    finally:
        world.close()


def test_a_run_waiting_for_a_person_is_never_pruned(tmp_path):
    world = _world_with(tmp_path, sleep_workload="require_approval", scale_workload="require_approval")
    try:
        agent = world.agent("offline", config=AgentConfig(checkpoint_retention_seconds=0))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
        assert report.status == "waiting_approval"
        before = _checkpoints(agent, report.run_id)
        world.clock.advance(86_400)
        assert agent.prune() == 0
        assert _checkpoints(agent, report.run_id) == before
        assert agent.waiting() == [(report.run_id, report.pending_approvals[0])]
    finally:
        world.close()


def test_a_day_with_a_hostile_model_grows_the_database_by_less_than_5_mb(tmp_path, monkeypatch):
    from opsagent.demo import run_demo

    moves = itertools.cycle([
        ("scale_workload", {"namespace": "inference", "name": "llm", "replicas": 0, "reason": BLOB}),
        ("delete_workload", {"namespace": "inference", "name": "llm", "why": BLOB}),
        ("scale_workload", {"namespace": "kube-system", "name": "coredns", "replicas": 0}),
        ("rm_rf_cluster", {"confirm": True, "payload": BLOB}),
    ])
    sizes: list[int] = []

    def respond(body):
        sizes.append(len(json.dumps(body)))
        tool, args = next(moves)
        return OllamaReply.call(tool, **args)

    db = tmp_path / "day.db"
    with FakeOllama(responder=respond, models=("hostile:latest",)) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        monkeypatch.setenv("OPSAGENT_AGENT_LLM_COOLDOWN", "0")   # no breaker: the model is asked every run all day
        summary = run_demo(hours=24, db=db, model="hostile")
    grown = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    assert summary.llm_calls > 20 and summary.audit_verified   # the model was asked all day (each run gives up after 3 bad turns)
    assert grown < 5_000_000, grown
    assert max(sizes) < 100_000   # no prompt carries the model's own 400 KB arguments back to it
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT max(length(args)) FROM audit").fetchone()[0] < 1000


def test_a_thread_whose_checkpoints_are_gone_is_never_reused(world):
    agent = world.agent("offline")
    [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
    first = agent.handle_finding(finding)
    agent.saver.delete_thread(first.run_id)   # e.g. a crash between pruning and writing the outcome back
    again = agent.handle_finding(finding)
    assert again.run_id == first.run_id + "#2" and again.status == "done"


def test_long_text_that_comes_with_tool_calls_is_cut_in_the_history():
    from langchain_core.messages import AIMessage

    answer = AIMessage(content="think " * 10_000, id="a1",
                       tool_calls=[{"name": "get_workload", "args": {"namespace": "ml", "name": "llm"}, "id": "c1"}])
    kept = kept_answer(answer)
    assert len(kept.content) < 5_000 and "60000 bytes of text, cut" in kept.content
    assert kept.tool_calls == answer.tool_calls


def test_a_forged_stand_in_for_arguments_that_were_not_json_is_refused(world):
    result = world.gate.submit(ToolCall(tool="scale_workload", args={"_omitted": True, "_bytes": None, "_reason": "x"},
                                        actor="daemon"))
    assert result.status == "invalid" and "cannot be encoded as JSON" in result.message


def test_huge_arguments_that_are_not_json_stay_out_of_the_audit_log_too(world):
    with FakeOpenAI(default=Reply(tool_calls=[("sleep_workload", {"namespace": "ml", "name": "llm", "why": BLOB})],
                                  mode="bad_json_args"), models=(MODEL,)) as server:
        agent = world.agent("llm", config=AgentConfig(model=f"openai:{MODEL}", base_url=server.url))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
        third = json.dumps(server.chat_requests[-1])
    assert report.fell_back and len(third) < 40_000
    conn = sqlite3.connect(world.tmp / "ops.db")
    longest = conn.execute("SELECT max(length(coalesce(summary, ''))), max(length(coalesce(data, ''))), "
                           "max(length(coalesce(args, ''))) FROM audit").fetchone()
    assert max(longest) < 2_000, longest
