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
    assert code == 200 and reply["status"] == "error" and reply["data"]["error"] == "NotLeader", reply
