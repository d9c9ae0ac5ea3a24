"""`opsagent ask` and `opsagent chat` from the outside: one-shot JSON, and a scripted session on stdin.

The audit database and approvals persist between one-shot commands; the
simulated cluster is fresh in every process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.audit import AuditStore
from doubles.chat_fixtures import write_example_policy
from opsagent.cli import app

runner = CliRunner()


@pytest.fixture()
def env(tmp_path):
    write_example_policy(tmp_path / "pol")
    return ["--policies", str(tmp_path / "pol"), "--db", str(tmp_path / "a.db"), "--playbooks", str(tmp_path / "none")]


def ask(args, **kw):
    return runner.invoke(app, ["ask", *args], env={"OPSAGENT_CLUSTER": "sim:demo", **kw.pop("env", {})}, **kw)


def test_ask_json_pending_then_approve_in_another_process_runs_it(env, tmp_path):
    first = ask(["scale inference/llm to 2", "--as", "carol", "-o", "json", *env])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["actor"] == "carol" and data["done"] == []
    approval_id = data["pending"][0]["approval_id"]
    assert data["pending"][0]["approvers"] == ["group:leads"]

    second = ask([f"approve {approval_id}", "-o", "json", *env], env={"OPSAGENT_ACTOR": "alice"})
    assert second.exit_code == 0, second.output
    done = json.loads(second.stdout)
    assert done["actor"] == "alice"
    assert [d["tool"] for d in done["done"]] == ["scale_workload"]
    with AuditStore(tmp_path / "a.db") as store:
        assert store.verify().ok
        actors = {r.actor for r in store.list() if r.tool == "scale_workload" and r.kind == "proposal"}
    assert actors == {"carol"}


def test_ask_refusal_exits_non_zero_and_names_the_rule(env):
    out = ask(["scale render/render-ui to 5", "--as", "alice", *env])
    assert out.exit_code == 1
    assert "no-scaling-render" in out.stdout and "refused" in out.stdout


def test_ask_bad_cluster_and_bad_policy_dir_fail_cleanly(env, tmp_path):
    out = ask(["show gpus", "--as", "carol", *env, "--cluster", "moon"])
    assert out.exit_code == 2 and "not a cluster" in out.stderr
    out = ask(["show gpus", "--as", "carol", "--policies", str(tmp_path / "missing"), "--db", str(tmp_path / "b.db")])
    assert out.exit_code == 2 and "cannot load the policy" in out.stderr


def test_scripted_chat_session_through_stdin(env, tmp_path):
    script = "show workloads in chat\nwake chat/chat-ui\nshow workloads in chat\nscale inference/llm to 3\nquit\nwake inference/llm\n"
    proc = subprocess.run([str(Path(sys.executable).parent / "opsagent"), "chat", "--as", "carol", "--cluster", "sim:demo", *env],
                          input=script, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "`chat/chat-ui` 0/0 ready" in out
    assert "done: `chat/chat-ui`: awake" in out
    assert "`chat/chat-ui` 1/1 ready" in out  # the session keeps the simulated cluster between lines
    assert "waiting for approval #1" in out and "group:leads" in out
    assert "wake inference/llm" not in out  # nothing after 'quit' runs


def test_scripted_chat_session_json_lines(env):
    out = runner.invoke(app, ["chat", "--as", "bob", "-o", "json", "--cluster", "sim:demo", *env],
                        input="show gpus\nsleep render/render-ui\n")
    assert out.exit_code == 0, out.output
    replies = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [r["command"] for r in replies] == ["show gpus", "sleep render/render-ui"]
    assert replies[1]["done"][0]["tool"] == "sleep_workload"


@pytest.mark.parametrize("machine", ["daemon", "wake-proxy"])
def test_ask_and_chat_refuse_the_machine_actors(env, tmp_path, machine):
    by_flag = ask(["scale inference/embedder to 4", "--as", machine, *env])
    by_env = ask(["scale inference/embedder to 4", *env], env={"OPSAGENT_ACTOR": machine})
    session = runner.invoke(app, ["chat", *env], input="scale inference/embedder to 4\n",
                            env={"OPSAGENT_CLUSTER": "sim:demo", "OPSAGENT_ACTOR": machine, "COLUMNS": "300"})
    for out in (by_flag, by_env, session):
        assert out.exit_code == 2, out.output
        assert f"'{machine}' is opsagent's own machine actor" in " ".join(out.output.split())
    assert not (tmp_path / "a.db").exists() or not [
        r for r in AuditStore(tmp_path / "a.db").list() if r.tool == "scale_workload"]


def test_chat_service_refuses_a_machine_actor_from_any_resolver(tmp_path):
    from opsagent.chat.service import MACHINE_ACTOR_RULE
    from opsagent.chat.wiring import build_runtime

    write_example_policy(tmp_path / "pol")
    rt = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "b.db")
    try:
        before = rt.cluster.snapshot().workload("inference/embedder").replicas
        reply = rt.service.handle("scale inference/embedder to 4", actor="daemon", channel="cli")
        assert reply.done == [] and reply.pending == []
        assert [r.rule for r in reply.refused] == [MACHINE_ACTOR_RULE]
        assert rt.cluster.snapshot().workload("inference/embedder").replicas == before
        refusals = [r for r in rt.store.list() if r.rule_name == "chat-machine-actor"]
        assert len(refusals) == 1 and refusals[0].actor == "daemon" and refusals[0].outcome == "denied"
    finally:
        rt.close()
