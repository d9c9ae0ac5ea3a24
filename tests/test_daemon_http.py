"""/healthz, /readyz and /metrics over real HTTP on loopback, while the daemon runs and while it stands by.

Also: what the cluster adapter could not see (the snapshot's notes, e.g. no
Prometheus) is logged once per distinct note as a warning and listed on /readyz.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from opsagent.daemon import Daemon, DaemonOptions
from opsagent.daemon.http import HealthServer, Status
from opsagent.daemon.leader import FileLeader, lock_path_for
from opsagent.daemon.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+-]+)$')


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def parse_metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"not Prometheus text: {line!r}"
        values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def test_endpoints_while_the_daemon_leads(tmp_path: Path) -> None:
    seen: dict[str, tuple[int, str]] = {}
    daemon: Daemon

    def on_cycle(report) -> None:
        if daemon.status.cycles == 8:      # 00:40: render-ui was put to sleep at 00:30
            base = f"http://{daemon.server.address}"
            for path in ("/healthz", "/readyz", "/metrics", "/nope"):
                seen[path] = get(base + path)

    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                                  interval=300, cycles=9, sim_speed=0, listen="127.0.0.1:0"), on_cycle=on_cycle)
    assert daemon.run(install_signals=False) == 0
    assert seen["/healthz"][0] == 200 and json.loads(seen["/healthz"][1])["ok"] is True
    assert seen["/readyz"][0] == 200 and "leader" in json.loads(seen["/readyz"][1])["detail"]
    assert seen["/nope"][0] == 404
    code, text = seen["/metrics"]
    assert code == 200
    metrics = parse_metrics(text)
    assert metrics['opsagent_cycles_total{result="ok"}'] == 8
    assert metrics['opsagent_actions_total{outcome="ok",tool="sleep_workload"}'] == 1
    assert metrics['opsagent_actions_total{outcome="pending_approval",tool="set_gpu_placement"}'] == 1
    assert metrics["opsagent_approvals_pending"] == 1
    assert metrics["opsagent_leader"] == 1
    assert metrics["opsagent_llm_calls_total"] == 0
    assert metrics["opsagent_gpus_allocated"] >= 3
    assert 'opsagent_findings_open{kind="topology_mismatch"}' in metrics
    assert metrics["opsagent_cycle_duration_seconds"] >= 0
    # the audit head after cycle 7 is on /metrics, and it is a true anchor of the log the daemon went on writing
    [(label, one)] = [(k, v) for k, v in metrics.items() if k.startswith("opsagent_audit_head_info")]
    rows, head_hash = int(metrics["opsagent_audit_head_rows"]), re.fullmatch(r'.*\{hash="([0-9a-f]{64})"\}', label).group(1)
    from opsagent.audit import AuditHead, AuditStore

    with AuditStore(tmp_path / "ops.db") as store:
        assert one == 1 and 0 < rows <= store.count()
        assert store.verify(anchor=AuditHead(rows=rows, hash=head_hash)).ok


def test_readyz_says_standby_while_another_daemon_holds_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    other = FileLeader(lock_path_for(db), identity="other")
    assert other.try_acquire()
    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, interval=60,
                                  cycles=1, sim_speed=600, listen="127.0.0.1:0"))
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while daemon.server is None and time.monotonic() < deadline:
            time.sleep(0.02)
        base = f"http://{daemon.server.address}"
        code, body = 0, ""
        while time.monotonic() < deadline:
            code, body = get(base + "/readyz")
            if "standby" in body:
                break
            time.sleep(0.02)
        assert code == 503 and "standby" in json.loads(body)["detail"]
        assert get(base + "/healthz")[0] == 200          # alive, just not leading
        assert daemon.status.cycles == 0
    finally:
        other.release()                                   # the standby takes over and runs its cycle
        thread.join(timeout=30)
    assert not thread.is_alive() and daemon.status.cycles == 1


def test_healthz_fails_when_a_cycle_is_stuck() -> None:
    now = [1000.0]
    status = Status(stuck_after=60)
    server = HealthServer("127.0.0.1:0", status=status, metrics=Metrics(), monotonic=lambda: now[0]).start()
    try:
        base = f"http://{server.address}"
        assert get(base + "/healthz")[0] == 200
        status.cycle_started = 900.0                      # running for 100 s, limit 60 s
        code, body = get(base + "/healthz")
        assert code == 503 and "running for 100s" in body
        assert get(base + "/readyz")[0] == 503            # not leader
    finally:
        server.stop()


def test_snapshot_notes_are_logged_once_and_listed_on_readyz(tmp_path: Path, caplog) -> None:
    import logging

    from kube_harness import Emulator
    from test_daemon_lease import kube_daemon
    from test_kube_rbac import serve_lease_replace

    from opsagent.cluster.kube.read import NO_METRICS_NOTE

    seen: list[tuple[int, dict]] = []

    def on_cycle(report) -> None:
        code, body = get(f"http://{daemon.server.address}/readyz")
        seen.append((code, json.loads(body)))

    with Emulator() as emu, caplog.at_level(logging.WARNING, logger="opsagent.daemon"):
        serve_lease_replace(emu, "ops-team", "opsagent-leader")
        daemon = kube_daemon(emu, tmp_path, cycles=3, listen="127.0.0.1:0", on_cycle=on_cycle)
        assert daemon.run(install_signals=False) == 0
    assert len(seen) == 3
    for code, body in seen:
        assert code == 200 and NO_METRICS_NOTE in body["notes"]
    warned = [r.getMessage() for r in caplog.records if NO_METRICS_NOTE in r.getMessage()]
    assert warned == [f"cluster view incomplete: {NO_METRICS_NOTE}"]   # three snapshots, one warning

