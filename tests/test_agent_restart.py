"""Restarts never repeat a finished action and never lose a pending approval (invariant 7).

Spec: a run that reaches an approval pauses with a LangGraph interrupt before
any mutation, in a SQLite checkpoint. Killed and restarted, the new process
finds the waiting run, resumes it once the approval is granted, and the call
runs exactly once. A process that dies right after a write reached the
cluster (before anything was recorded) does not repeat that write when the
run is picked up again: the restarted agent recovers the run at once, the
gate records the missing result from what the cluster shows, the run closes,
and the finding coming back later gets a fresh run. Time the process was
down does not count against the run's time budget. Processes are real
subprocesses, killed with SIGKILL, or (in process) a BaseException that
nothing catches, raised by the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typing import Any

import pytest

from opsagent.agent import AgentError
from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.clock import VirtualClock
from opsagent.evals import scripted
from doubles.agent_world import Approvers, idle_findings, tiny_world

REPO = Path(__file__).resolve().parents[1]


def _phase(phase: str, directory: Path, *, env: dict[str, str] | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "doubles.agent_proc", phase, str(directory)]
    path = os.pathsep.join(p for p in (str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": path, **(env or {})})
    if not wait:
        return proc
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def _writes(directory: Path) -> list[dict]:
    path = directory / "writes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_pending_approval_survives_a_kill_and_runs_once_after_restart(tmp_path):
    proc = _phase("start", tmp_path, wait=False)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    started = json.loads(line)
    proc.kill()  # SIGKILL while the run waits for a person
    proc.wait(timeout=10)
    assert started["status"] == "waiting_approval" and len(started["pending"]) == 1
    assert _writes(tmp_path) == []  # nothing before the approval

    store = AuditStore(tmp_path / "ops.db")
    queue = ApprovalQueue(store, clock=VirtualClock(), is_member=Approvers().actor_matches)
    approval = queue.get(started["pending"][0])
    assert approval.thread_id == started["run_id"] and approval.call.tool == "set_resources"
    queue.approve(approval.id, by="carol")

    code, out, err = _phase("resume", tmp_path)
    assert code == 0, err
    resumed = json.loads(out.splitlines()[-1])
    assert resumed["waiting"] == [[started["run_id"], approval.id]]
    assert resumed["status"] == "done"
    assert [(a["tool"], a["status"]) for a in resumed["actions"]] == [("set_resources", "pending_approval"), ("set_resources", "ok")]
    assert [w["method"] for w in _writes(tmp_path)] == ["set_template"]
    assert queue.get(approval.id).state == "executed"
    results = [r for r in store.list() if r.kind == "result" and r.tool == "set_resources"]
    assert sorted(r.outcome for r in results) == ["ok", "pending"]
    assert store.verify().ok

    # a second restart finds nothing waiting and runs nothing again
    code, out, err = _phase("resume", tmp_path)
    assert code != 0 and "ValueError" in err  # no waiting run to unpack
    assert len(_writes(tmp_path)) == 1
    store.close()


def test_a_write_interrupted_by_a_crash_is_not_repeated(tmp_path):
    code, _, err = _phase("act", tmp_path, env={"OPSAGENT_TEST_CRASH_AFTER_WRITE": "1"})
    assert code == 17, err
    assert [w["method"] for w in _writes(tmp_path)] == ["scale"]
    code, out, err = _phase("act", tmp_path)  # the restarted daemon sees the same finding again
    assert code == 0, err
    report = json.loads(out.splitlines()[-1])
    assert report["run_id"] == "finding:idle_gpu:ml/llm"  # the interrupted run continues, no new epoch
    # this harness's cluster lives in memory, so the restarted process sees the workload as it was before the
    # write: the recovered result says so, and the call is not run again
    first = report["actions"][0]
    assert first["status"] == "error" and "recovered after a restart" in first["message"]
    assert "does not show the change" in first["message"] and "not run again" in first["message"]
    assert [w["method"] for w in _writes(tmp_path)] == ["scale"]  # still exactly one write


def test_in_process_interrupt_reject_and_guards(tmp_path):
    world = tiny_world(tmp_path)
    world.playbooks = None  # no playbook for the finding: the model is offered every tool, set_resources too
    try:
        planner = scripted.scripted_planner(scripted.call("set_resources", namespace="ml", name="llm", gpus_per_replica=2),
                                            scripted.text("Rejected; leaving it."))
        agent = world.agent(planner)
        [finding] = idle_findings(world.cluster.snapshot())
        first = agent.handle_finding(finding)
        assert first.status == "waiting_approval"
        [approval_id] = first.pending_approvals
        assert agent.waiting() == [(first.run_id, approval_id)]
        # the same finding again does not start over or drop the interrupt
        again = agent.handle_finding(finding)
        assert again.run_id == first.run_id and again.status == "waiting_approval"
        with pytest.raises(AgentError, match="not found|no agent run"):
            agent.resume("finding:nope", approval_id=approval_id, decided_state="approved", approver="carol")
        with pytest.raises(AgentError, match="waits for approval"):
            agent.resume(first.run_id, approval_id=approval_id + 1, decided_state="approved", approver="carol")
        world.queue.reject(approval_id, by="carol", reason="not now")
        done = agent.resume(first.run_id, approval_id=approval_id, decided_state="rejected", approver="carol")
        assert done.status == "done" and done.actions[-1].status == "denied"
        assert world.cluster.writes == []
        assert agent.waiting() == []
        with pytest.raises(AgentError, match="not waiting"):
            agent.resume(first.run_id, approval_id=approval_id, decided_state="approved", approver="carol")
    finally:
        world.close()


def test_a_run_whose_approval_was_executed_elsewhere_finishes_without_running_it_again(tmp_path):
    world = tiny_world(tmp_path)
    world.playbooks = None  # no playbook for the finding: the model is offered every tool, set_resources too
    try:
        planner = scripted.scripted_planner(scripted.call("set_resources", namespace="ml", name="llm", gpus_per_replica=2),
                                            scripted.text("Done."))
        agent = world.agent(planner)
        [finding] = idle_findings(world.cluster.snapshot())
        first = agent.handle_finding(finding)
        [approval_id] = first.pending_approvals
        # a person approves and runs it from the command line, before the run resumes
        world.queue.approve(approval_id, by="carol")
        world.queue.execute(approval_id, run=lambda a: world.gate.run_approved(a, approver="carol"), actor="carol")
        assert [w[0] for w in world.cluster.writes] == ["set_template"]
        done = agent.resume(first.run_id, approval_id=approval_id, decided_state="executed", approver="carol")
        assert done.status == "done"
        assert done.actions[-1].status == "ok" and "already executed" in done.actions[-1].message
        assert [w[0] for w in world.cluster.writes] == ["set_template"]  # still once
    finally:
        world.close()


class Died(BaseException):
    """The process dies here: nothing above the cluster catches it."""


class DieAtWrite:
    """Wraps the cluster: the first write kills the process, after reaching the cluster or just before."""

    def __init__(self, inner: Any, *, reached: bool) -> None:
        self.inner, self.reached = inner, reached

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != "scale":
            return target

        def write(**kwargs: Any) -> Any:
            if self.reached:
                target(**kwargs)
            raise Died(name)

        return write


def _killed_mid_call(world, *, reached: bool):
    inner = world.gate.cluster
    world.gate.cluster = DieAtWrite(inner, reached=reached)
    [finding] = idle_findings(world.cluster.snapshot())
    with pytest.raises(Died):
        world.agent("offline").handle_finding(finding)
    world.gate.cluster = inner
    return finding


def test_a_run_killed_after_its_write_is_recovered_and_closed_at_restart(tmp_path):
    world = tiny_world(tmp_path)
    try:
        finding = _killed_mid_call(world, reached=True)
        assert [w[0] for w in world.cluster.writes] == ["scale"] and world.store.list(kind="result") == []
        world.clock.advance(12 * 3600)  # down for half a day
        agent = world.agent("offline")  # the restarted process
        [report] = agent.recover()
        assert (report.run_id, report.status, report.resolved) == ("finding:idle_gpu:ml/llm", "done", True)
        [action] = report.actions
        assert action.tool == "sleep_workload" and action.status == "ok" and "recovered after a restart" in action.message
        assert agent.recover() == []  # once per process
        [result] = world.store.list(kind="result", limit=100)
        assert result.outcome == "ok" and result.data["recovered"] is True
        assert [w[0] for w in world.cluster.writes] == ["scale"]  # not repeated
        assert world.store.verify().ok

        world.tiny.scale(ref=world.tiny.workloads["ml/llm"].ref, replicas=2)  # someone woke it; it idles again
        again = agent.handle_finding(finding)
        assert again.run_id == "finding:idle_gpu:ml/llm#2" and again.status == "done" and again.resolved is True
        assert [(a.tool, a.status) for a in again.actions] == [("sleep_workload", "ok")]
        assert len(world.cluster.writes) == 2
    finally:
        world.close()


def test_downtime_does_not_count_against_the_time_budget_of_a_recovered_run(tmp_path):
    world = tiny_world(tmp_path)
    try:
        _killed_mid_call(world, reached=False)
        world.clock.advance(12 * 3600)
        [report] = world.agent("offline").recover()
        assert report.status == "done" and "time budget" not in report.summary  # 43,200 s down, 600 s budget
        assert report.resolved is False and report.actions[0].status == "error"
        assert "does not show the change" in report.actions[0].message
        assert world.cluster.writes == []
    finally:
        world.close()
