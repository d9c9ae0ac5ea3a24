"""The daemon's internal API under attack: what a wake that arrives while the daemon leads may still do once
it no longer does. Real daemon, gates, policy and simulator."""

from __future__ import annotations

import json
from pathlib import Path

from opsagent.daemon import Daemon, DaemonOptions

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Lost:
    """A leader whose Lease was taken after the daemon last said it leads."""

    where = "test"
    on_lost = None

    def still_leading(self) -> bool:
        return False

    def release(self) -> None:
        return None


def test_a_wake_from_the_gate_pool_writes_nothing_once_leadership_is_lost(tmp_path: Path) -> None:
    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                                  interval=60, cycles=1, sim_speed=0, internal_token=TOKEN), leader=Lost())
    daemon.runtime.sim = None        # take the real-cluster wiring: wakes run on gates from the pool
    api = daemon._internal_api()
    assert api is not None
    with daemon.status.lock:
        daemon.status.leader = True  # what the last cycle saw; the Lease went since
    daemon._guarded = True           # as while run() loops
    code, reply = api.handle("POST", "/v1/wake", AUTH, json.dumps({"namespace": "chat", "name": "chat-ui"}).encode())
    refused_at_the_door = code == 503 and "standby" in reply.get("error", "")
    refused_by_the_gate = code == 200 and reply["status"] == "error" and reply["data"]["error"] == "NotLeader"
    assert refused_at_the_door or refused_by_the_gate, reply


def test_headers_trickled_a_byte_at_a_time_do_not_hold_a_thread() -> None:
    """Each read of a header may take up to the socket's timeout; a client that sends a byte just inside it, for
    ever, must still be cut off once `request_seconds` have passed, before it is authenticated or answered."""
    import socket

    from opsagent.daemon.http import HealthServer, Status
    from opsagent.daemon.internal import InternalApi
    from opsagent.daemon.metrics import Metrics

    class NoGate:
        def submit(self, call, *, run_id=None):
            raise AssertionError("nothing reaches the gate")

    api = InternalApi(token=TOKEN, gate=NoGate(), activity=None)
    server = HealthServer("127.0.0.1:0", status=Status(), metrics=Metrics(), internal=api, request_seconds=0.5).start()
    host, port = server.address.rsplit(":", 1)
    try:
        client = socket.create_connection((host, int(port)))
        client.sendall(b"POST /v1/wake HTTP/1.1\r\nHost: daemon\r\nX-Slow: ")
        client.settimeout(0.2)
        answer: bytes | None = None
        for _ in range(200):   # 0.2 s apart: each well inside the socket's timeout, 40 s in all at most
            try:
                client.sendall(b"a")
                answer = client.recv(200)
                break
            except socket.timeout:
                continue
            except OSError:
                answer = b""
                break
        assert answer == b"", f"the connection stayed open through every trickled byte, or answered: {answer!r}"
    finally:
        client.close()
        server.stop()


def test_whoever_sees_a_lost_lease_first_makes_readyz_say_so(tmp_path: Path) -> None:
    """The renewer clears its flag before its callback runs; a reader in between must not see /readyz say ready."""

    class Between(Lost):
        lost_reason = "lost the Lease ops/leader: renewal failed: etcdserver: request timed out"

    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                                  interval=60, cycles=1, sim_speed=0), leader=Between())
    with daemon.status.lock:
        daemon.status.leader, daemon.status.last_ok = True, True
    daemon.metrics.set("opsagent_leader", 1)
    daemon._guarded = True
    assert daemon.still_leading() is False
    ready, detail = daemon.status.ready()
    assert not ready and "etcdserver" in detail, detail
    assert daemon.metrics.value("opsagent_leader") == 0
