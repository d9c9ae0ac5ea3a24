"""Approvals under attack: one approved call, two processes that each hold the run waiting for it.

The Slack app (its own process beside the daemon) resumes the waiting run as soon as a person approves, and
runs the approved call; a wake or a drain may take minutes. Meanwhile the daemon's cycle sees the same run
still waiting on an approved request. Real daemon, agent, gate, approval queue and simulator.
"""

from __future__ import annotations

from pathlib import Path

from opsagent.audit.query import AuditFilter
from opsagent.daemon import Daemon, DaemonOptions

REPO = Path(__file__).resolve().parents[1]
THREAD = "finding:topology_mismatch:inference/llm"


def options(tmp_path: Path, **kw) -> DaemonOptions:
    return DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db", interval=300,
                         sim_speed=0, **kw)


def test_a_run_whose_approved_call_another_process_is_running_is_left_to_it(tmp_path: Path) -> None:
    first = Daemon(options(tmp_path, cycles=13))   # to 01:05: the placement change waits for a lead
    first.run(install_signals=False)
    queue = first.runtime.approvals
    placement = next(a for a in queue.list("pending") if a.call.tool == "set_gpu_placement")
    queue.approve(placement.id, by="alice")
    daemon = Daemon(options(tmp_path, cycles=1))
    reports: list = []
    daemon.on_cycle = reports.append
    elsewhere = Daemon(options(tmp_path, cycles=1))   # the other process, running the approved call

    def run_while_the_daemon_cycles(approval):
        daemon.run(install_signals=False)             # the daemon's cycle meets the claim held right now
        return elsewhere.runtime.gate.run_approved(approval, approver="alice")

    result = queue.execute(placement.id, run=run_while_the_daemon_cycles, actor="alice")
    assert result.status == "ok"
    premature = [run for r in reports for run in r.resumed if run.run_id == THREAD]
    assert premature == [], [(run.status, [a.message for a in run.actions][-1:]) for run in premature]
    later: list = []
    again = Daemon(options(tmp_path, cycles=1))
    again.on_cycle = later.append
    again.run(install_signals=False)
    [resumed] = [run for r in later for run in r.resumed if run.run_id == THREAD]
    assert resumed.status != "waiting_approval"
    done = [r for r in again.runtime.audit.list(AuditFilter(kind="result", tool="set_gpu_placement", limit=100))
            if r.outcome == "ok"]
    assert len(done) == 1


def test_a_run_another_process_is_carrying_on_is_not_carried_on_twice(tmp_path: Path) -> None:
    """After the approved call, the process that resumed the run goes on with it (verify, maybe more calls). The
    daemon's cycle must not take the same run up from its checkpoint as if its process had died."""
    first = Daemon(options(tmp_path, cycles=13))
    first.run(install_signals=False)
    queue = first.runtime.approvals
    placement = next(a for a in queue.list("pending") if a.call.tool == "set_gpu_placement")
    queue.approve(placement.id, by="alice")
    slack = Daemon(options(tmp_path, cycles=1))      # stands for the Slack app's agent over the same database
    daemon = Daemon(options(tmp_path, cycles=1))
    reports: list = []
    daemon.on_cycle = reports.append
    observe = slack.agent.deps.observe
    cycled: list = []

    def observe_while_the_daemon_cycles():
        if not cycled:
            cycled.append(True)
            daemon.run(install_signals=False)         # the daemon's cycle meets the run mid-way
        return observe()

    slack.agent.deps.observe = observe_while_the_daemon_cycles
    run = slack.agent.resume(THREAD, approval_id=placement.id, decided_state="approved", approver="alice",
                             approval=queue.get(placement.id), channel="slack")
    assert cycled and run.status != "waiting_approval"
    seen = [r for rep in reports for r in rep.runs + rep.resumed if r.run_id == THREAD]
    assert seen and all("another process is carrying this run on" in r.summary for r in seen), \
        [(r.status, r.summary) for r in seen]
    assert run.status == "done" and "another process" not in run.summary
    done = [r for r in daemon.runtime.audit.list(AuditFilter(kind="result", tool="set_gpu_placement", limit=100))
            if r.outcome == "ok"]
    assert len(done) == 1
