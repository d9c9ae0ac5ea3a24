"""The daemon as a real process: SIGKILL mid-run and restart repeats nothing, SIGTERM exits 0, one leader per lock.

The kill lands right after a write reached the (journaled) cluster and before
its result was recorded. After the restart every write the cluster journaled
has exactly one `result` record in the audit log, the interrupted run is
closed, and when its finding comes back hours later it gets a fresh, clean run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from opsagent.audit import AuditStore
from opsagent.audit.query import AuditFilter

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "tests" / "daemon_harness.py"
CLI = [sys.executable, "-m", "opsagent"]


def harness(directory: Path, cycles: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HARNESS), str(directory), str(cycles), *extra],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def writes(directory: Path) -> list[dict]:
    path = directory / "writes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def results_per_written_workload(directory: Path) -> tuple[Counter, Counter]:
    """(writes the cluster journaled, ok results of writing tools in the audit log), per namespace/name."""
    written = Counter(f"{w['kwargs']['ref']['namespace']}/{w['kwargs']['ref']['name']}" for w in writes(directory))
    with AuditStore(directory / "ops.db") as store:
        rows = store.list(AuditFilter(kind="result", outcome="ok", limit=100_000))
    recorded = Counter(f"{r.args['namespace']}/{r.args['name']}" for r in rows if r.risk in ("write", "architectural"))
    return written, recorded


def test_sigkill_mid_run_then_restart_repeats_no_action_and_keeps_the_pending_approval(tmp_path: Path) -> None:
    killed = harness(tmp_path, 40, "--kill-after-writes", "1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [(w["method"], w["kwargs"]["ref"]["name"]) for w in writes(tmp_path)] == [("scale", "render-ui")]
    with AuditStore(tmp_path / "ops.db") as store:
        pending = [r for r in store.list(AuditFilter(kind="approval", limit=1000)) if r.outcome == "pending"]
    assert [r.tool for r in pending] == ["set_gpu_placement"]

    restarted = harness(tmp_path, 10)      # replays the cluster, continues to 01:20
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    scales = [w for w in writes(tmp_path) if w["method"] == "scale" and w["kwargs"]["ref"]["name"] == "render-ui"]
    assert len(scales) == 1                 # the killed run's write was not repeated
    written, recorded = results_per_written_workload(tmp_path)
    assert written == recorded and written["render/render-ui"] == 1  # and its result is recorded, once
    with AuditStore(tmp_path / "ops.db") as store:
        approvals = store.list(AuditFilter(kind="approval", limit=1000))
        assert sum(1 for r in approvals if r.outcome == "pending" and r.tool == "set_gpu_placement") == 1
        assert store.verify().ok
    from opsagent.approvals import ApprovalQueue
    from opsagent.clock import VirtualClock

    queue = ApprovalQueue(tmp_path / "ops.db", clock=VirtualClock(), is_member=lambda actor, name: True)
    placement = next(a for a in queue.list() if a.call.tool == "set_gpu_placement")
    assert placement.state == "pending"    # survived the kill and the restart
    queue.approve(placement.id, by="alice")
    queue.close()

    for _ in range(2):                      # executes once, and a further restart runs it not again
        again = harness(tmp_path, 1)
        assert again.returncode == 0, again.stderr[-2000:]
    templates = [w for w in writes(tmp_path) if w["method"] == "set_template"]
    assert len(templates) == 1
    written, recorded = results_per_written_workload(tmp_path)
    assert written == recorded
    with AuditStore(tmp_path / "ops.db") as store:
        done = [r for r in store.list(AuditFilter(kind="result", tool="set_gpu_placement", limit=1000)) if r.outcome == "ok"]
        assert len(done) == 1


def test_a_run_killed_between_write_and_result_is_closed_and_its_returning_finding_runs_clean(tmp_path: Path) -> None:
    killed = harness(tmp_path, 40, "--kill-after-writes", "1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # down, restarted: 160 cycles of 5 minutes reach 13:55, after render-ui went idle again at about 13:00
    restarted = harness(tmp_path, 160)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    runs = [json.loads(line) for line in restarted.stdout.splitlines() if line.startswith("{")]
    render = [r for r in runs if r["run"].startswith("finding:idle_gpu:render/render-ui")]
    assert render == [  # the interrupted run is closed at once (its write recovered), the return is a new run
        {"run": "finding:idle_gpu:render/render-ui", "status": "done", "actions": [["sleep_workload", "ok"]]},
        {"run": "finding:idle_gpu:render/render-ui#2", "status": "done", "actions": [["sleep_workload", "ok"]]},
    ]
    render_scales = [w["kwargs"]["replicas"] for w in writes(tmp_path) if w["kwargs"]["ref"]["name"] == "render-ui"]
    assert render_scales == [0, 1, 0]  # slept (killed), woken on traffic, slept again: nothing repeated
    written, recorded = results_per_written_workload(tmp_path)
    assert written == recorded          # one ok result per journaled write
    with AuditStore(tmp_path / "ops.db") as store:
        first = store.list(AuditFilter(run_id="finding:idle_gpu:render/render-ui", limit=100))
        [result] = [r for r in first if r.kind == "result"]
        assert result.outcome == "ok" and result.data["recovered"] is True
        assert "run done: Resolved idle_gpu:render/render-ui." in [r.summary for r in first]
        assert not [r for r in store.list(AuditFilter(kind="run", limit=100_000)) if "budget" in (r.summary or "")]
        assert store.verify().ok


def wait_for(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def start_daemon(db: Path, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "daemon", "--cluster", "sim:demo", "--db", str(db), "--interval", "60",
                             "--policies", str(REPO / "policies"), "--playbooks", str(REPO / "playbooks"), *extra],
                            stdout=subprocess.DEVNULL, stderr=log.open("w"), cwd=REPO)


def test_sigterm_finishes_the_step_and_exits_zero(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    proc = start_daemon(tmp_path / "ops.db", log, "--sim-speed", "0")
    try:
        assert wait_for(lambda: "cycle at" in log.read_text()), log.read_text()[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "SIGTERM received" in text and "stopped cleanly" in text
    with AuditStore(tmp_path / "ops.db") as store:
        assert store.verify().ok


def test_two_daemons_on_one_lock_only_one_acts(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_daemon(db, first_log, "--sim-speed", "600")        # a cycle every 0.1 s of wall time
    try:
        assert wait_for(lambda: "cycle at" in first_log.read_text())
        second = start_daemon(db, second_log, "--sim-speed", "600")
        try:
            assert wait_for(lambda: "standby" in second_log.read_text()), second_log.read_text()[-2000:]
            time.sleep(0.5)
            assert "cycle at" not in second_log.read_text()
            once = subprocess.run([*CLI, "daemon", "--once", "--cluster", "sim:demo", "--db", str(db), "--policies", str(REPO / "policies"),
                                   "--playbooks", str(REPO / "playbooks")], capture_output=True, text=True, timeout=60, cwd=REPO)
            assert once.returncode == 3 and "not the leader" in once.stderr
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=30) == 0
            assert wait_for(lambda: "cycle at" in second_log.read_text()), second_log.read_text()[-2000:]  # takes over
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()
    assert "leader (lock file" in second_log.read_text()
