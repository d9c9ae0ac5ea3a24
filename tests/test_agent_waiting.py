"""Which runs wait for a person is answered from the approval queue's own records and the
checkpointer's public state API, never from LangGraph's private tables: the answer must be
the same set of runs LangGraph's own record of interrupts shows."""

from __future__ import annotations

import sqlite3

from doubles.agent_world import tiny_world
from opsagent.evals import scripted
from opsagent.model import Finding


def _interrupted_per_langgraph(agent, path) -> list[tuple[str, int]]:
    """The oracle: LangGraph's interrupt writes, filtered to the runs still paused."""
    db = sqlite3.connect(path)
    try:
        threads = [t for (t,) in db.execute("SELECT DISTINCT thread_id FROM writes WHERE channel = '__interrupt__' "
                                             "ORDER BY thread_id")]
    finally:
        db.close()
    out = []
    for thread_id in threads:
        snap = agent.graph.get_state({"configurable": {"thread_id": thread_id}})
        if snap.interrupts:
            out.append((thread_id, int(snap.values["pending_approval"])))
    return out


def _idle(subject: str) -> Finding:
    return Finding(kind="idle_gpu", subject=subject, summary=f"{subject} holds GPUs with no traffic",
                   details={"gpus_held": 1})


def test_waiting_runs_match_langgraphs_record_of_interrupts(tmp_path):
    world = tiny_world(tmp_path)
    world.playbooks = None  # the model is offered every tool, set_resources (architectural) too
    try:
        planner = scripted.scripted_planner(
            scripted.call("set_resources", namespace="ml", name="llm", gpus_per_replica=2),
            scripted.call("set_resources", namespace="ml", name="chat", gpus_per_replica=2),
            scripted.text("Rejected; leaving it."),
            scripted.text("Nothing to do here."),
        )
        agent = world.agent(planner)
        assert agent.waiting() == [] == _interrupted_per_langgraph(agent, tmp_path / "checkpoints.db")

        llm = agent.handle_finding(_idle("ml/llm"))
        chat = agent.handle_finding(_idle("ml/chat"))
        assert llm.status == chat.status == "waiting_approval"
        both = sorted([(llm.run_id, llm.pending_approvals[0]), (chat.run_id, chat.pending_approvals[0])])
        assert agent.waiting() == both == _interrupted_per_langgraph(agent, tmp_path / "checkpoints.db")

        # one run is settled and finishes; a run that never asked anyone does not appear
        world.queue.reject(llm.pending_approvals[0], by="carol", reason="not now")
        done = agent.resume(llm.run_id, approval_id=llm.pending_approvals[0], decided_state="rejected", approver="carol")
        assert done.status == "done"
        quiet = agent.handle_finding(_idle("kube-system/coredns"))
        assert quiet.status != "waiting_approval"
        left = [(chat.run_id, chat.pending_approvals[0])]
        assert agent.waiting() == left == _interrupted_per_langgraph(agent, tmp_path / "checkpoints.db")

        # a new process over the same files finds the same run
        again = world.agent(planner)
        assert again.waiting() == left
    finally:
        world.close()
