"""The reconcile daemon end to end on the simulator: one cycle, many cycles, approvals, steady state, LLM loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.audit.query import AuditFilter
from opsagent.daemon import Daemon, DaemonOptions, Reconciler
from opsagent.runtime import build_agent, make_detect
from opsagent.runtime import open_runtime

REPO = Path(__file__).resolve().parents[1]

STEADY = """
name: steady
start: 2026-01-05T09:00:00Z
duration: 4h
nodes:
  - name: gpu-a
    gpus:
      - {model: NVIDIA-L40S, memory_mib: 46068, count: 2, link: 16, switch: "0", numa: 0}
workloads:
  - namespace: inference
    name: embedder
    image: registry.internal/inference/embedder:2.3.0
    replicas: 1
    gpus: 1
    capacity_rps: 40
    traffic:
      points: {"00:00": 20}
"""


def options(tmp_path: Path, **kw) -> DaemonOptions:
    base = dict(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db", interval=300, sim_speed=0)
    base.update(kw)
    return DaemonOptions(**base)


def ok_results(daemon: Daemon, tool: str) -> list:
    return [r for r in daemon.runtime.audit.list(AuditFilter(kind="result", tool=tool, limit=10_000)) if r.outcome == "ok"]


def test_once_runs_one_cycle_and_leaves_the_architectural_change_waiting(tmp_path: Path) -> None:
    daemon = Daemon(options(tmp_path, once=True))
    assert daemon.run(install_signals=False) == 0
    pending = daemon.runtime.approvals.list("pending")
    assert [(a.call.tool, a.call.args["name"]) for a in pending] == [("set_gpu_placement", "llm")]
    assert daemon.metrics.value("opsagent_cycles_total", result="ok") == 1
    assert daemon.runtime.clock.now().isoformat().startswith("2026-01-05T00:05")


def test_a_day_of_cycles_frees_gpus_resumes_approvals_and_never_reruns_a_waiting_finding(tmp_path: Path) -> None:
    reports = []
    daemon = Daemon(options(tmp_path, cycles=150), on_cycle=reports.append)   # 12.5 simulated hours
    daemon.run(install_signals=False)
    sleeps = [(r.args["namespace"], r.args["name"]) for r in ok_results(daemon, "sleep_workload")]
    assert ("render", "render-ui") in sleeps
    # the topology change was asked once and never again while it waits for a platform lead
    placements = [a for a in daemon.runtime.approvals.list() if a.call.tool == "set_gpu_placement"]
    assert len(placements) == 1
    assert any("topology_mismatch:inference/llm" in r.skipped_waiting for r in reports)
    assert placements[0].state == "pending"
    snapshot = daemon.runtime.observe()
    assert snapshot.workload("render/render-ui").replicas in (0, 1)


def _waiting_placement(tmp_path: Path):
    daemon = Daemon(options(tmp_path, cycles=13))   # to 01:05: the placement change waits for a lead
    daemon.run(install_signals=False)
    queue = daemon.runtime.approvals
    return queue, next(a for a in queue.list("pending") if a.call.tool == "set_gpu_placement")


def _resume(tmp_path: Path):
    again = Daemon(options(tmp_path, cycles=3))
    reports = []
    again.on_cycle = reports.append
    again.run(install_signals=False)
    return again, {run.run_id: run for r in reports for run in r.resumed}


def test_an_approved_call_resumes_its_run_and_runs_exactly_once(tmp_path: Path) -> None:
    queue, placement = _waiting_placement(tmp_path)
    queue.approve(placement.id, by="alice")
    again, resumed = _resume(tmp_path)
    assert resumed["finding:topology_mismatch:inference/llm"].actions[-1].status == "ok"
    assert len(ok_results(again, "set_gpu_placement")) == 1
    assert queue.get(placement.id).state == "executed"
    _, resumed_again = _resume(tmp_path)   # a further restart runs nothing again
    assert "finding:topology_mismatch:inference/llm" not in resumed_again
    assert len(ok_results(again, "set_gpu_placement")) == 1


def test_a_rejected_call_ends_its_run_and_is_not_asked_again(tmp_path: Path) -> None:
    queue, placement = _waiting_placement(tmp_path)
    queue.reject(placement.id, by="alice", reason="not this week")
    again, resumed = _resume(tmp_path)
    rejected = resumed["finding:topology_mismatch:inference/llm"]
    assert rejected.status != "waiting_approval" and "rejected" in rejected.actions[-1].message
    assert ok_results(again, "set_gpu_placement") == []
    assert queue.list("pending") == []   # the rejected finding is not asked again


def test_steady_cluster_costs_no_action_and_no_llm_call(tmp_path: Path) -> None:
    scenario = tmp_path / "steady.yaml"
    scenario.write_text(STEADY)
    runtime = open_runtime(cluster=f"sim:{scenario}", policies=REPO / "policies", db=tmp_path / "ops.db")
    calls = []

    class CountingPlanner:
        name = "counting"

        def plan(self, inp):  # would be the LLM: must never be asked
            calls.append(inp)
            raise AssertionError("planner called on a steady cluster")

    detect = make_detect(runtime)
    agent = build_agent(runtime, db=tmp_path / "ops.db", playbooks=REPO / "playbooks", model=None, planner=CountingPlanner(),
                        detect_fn=detect)
    reconciler = Reconciler(runtime, agent, detect=detect)
    for _ in range(24):
        runtime.sim.advance(300)
        report = reconciler.cycle()
        assert report.findings == [] and report.actions == [] and report.llm_calls == 0
    assert calls == []
    assert runtime.audit.count() == 0


def test_losing_the_llm_falls_back_to_the_offline_planner_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")   # nothing listens there
    monkeypatch.setenv("OPSAGENT_AGENT_TIMEOUT", "1")
    caplog.set_level("WARNING", logger="opsagent.daemon")
    daemon = Daemon(options(tmp_path, cycles=7, model="qwen3:8b"))   # to 00:35: render-ui goes idle at 00:30
    assert daemon.run(install_signals=False) == 0
    assert daemon.metrics.total("opsagent_llm_fallbacks_total") >= 1
    assert any("fell back to the offline planner" in m for m in caplog.messages)
    assert any("does not answer" in m for m in caplog.messages)
    assert [r.args["name"] for r in ok_results(daemon, "sleep_workload")] == ["render-ui"]
    fallback = [r for r in daemon.runtime.audit.list(AuditFilter(limit=10_000)) if "offline planner" in (r.summary or "")]
    assert fallback


def test_a_call_approved_and_run_elsewhere_is_not_run_again_by_the_waiting_run(tmp_path: Path) -> None:
    queue, placement = _waiting_placement(tmp_path)
    queue.approve(placement.id, by="alice")
    again = Daemon(options(tmp_path, cycles=1))
    # what `opsagent approvals approve` does by default: run it at once through the gate
    result = queue.execute(placement.id, run=lambda a: again.runtime.gate.run_approved(a, approver="alice"), actor="alice")
    assert result.status == "ok" and queue.get(placement.id).state == "executed"
    reports = []
    again.on_cycle = reports.append
    again.run(install_signals=False)
    resumed = [run for r in reports for run in r.resumed if run.run_id == "finding:topology_mismatch:inference/llm"]
    assert len(resumed) == 1 and resumed[0].status != "waiting_approval"
    assert len(ok_results(again, "set_gpu_placement")) == 1
