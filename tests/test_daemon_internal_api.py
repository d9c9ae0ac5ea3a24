"""The daemon's internal API: a wake proxy in another pod may ask for wakes, and for nothing else.

Spec:
- without the bearer token (missing, wrong, another scheme) every request is 401 and nothing runs;
- a body that names anything but the workload (an actor, a tool, a channel) is refused with 400: the daemon
  fixes the tool (wake_workload), the actor (wake-proxy) and the channel, so the caller cannot widen them;
- a standby daemon answers 503, so a proxy never wakes through a daemon that does not lead;
- over real HTTP on the simulator: a sleeping workload is woken through the daemon's gate and audited as
  actor wake-proxy; the proxy-side submitter and activity poster speak the same wire format; request times
  posted by the proxy reach the activity log the idle detector reads; a daemon that cannot be reached is an
  error result, and the noted request times are kept for the next flush.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from opsagent.clock import VirtualClock
from opsagent.daemon import Daemon, DaemonOptions
from opsagent.daemon.internal import InternalApi
from opsagent.model import ToolCall, ToolResult, WorkloadRef
from opsagent.wake.activity import ActivityLog, activity_path_for
from opsagent.wake.remote import DaemonActivity, DaemonSubmitter, read_token

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token-for-tests-0123456789"


class Recording:
    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult:
        self.calls.append(call)
        return ToolResult(status="ok", tool=call.tool, data={"ready": True})


class Sink:
    def __init__(self) -> None:
        self.seen: dict = {}

    def record(self, seen):
        self.seen.update(seen)
        return len(seen)


def api(**kw) -> tuple[InternalApi, Recording, Sink]:
    gate, sink = Recording(), Sink()
    return InternalApi(token=TOKEN, gate=gate, activity=sink, **kw), gate, sink


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Bearer {TOKEN}x"}])
def test_no_token_no_wake(headers):
    handler, gate, _ = api()
    code, reply = handler.handle("POST", "/v1/wake", headers, body(namespace="chat", name="chat-ui"))
    assert code == 401 and "token" in reply["error"] and gate.calls == []


@pytest.mark.parametrize("payload", [
    {"namespace": "chat", "name": "chat-ui", "actor": "alice"},
    {"namespace": "chat", "name": "chat-ui", "tool": "delete_workload"},
    {"namespace": "chat", "name": "chat-ui", "channel": "cli"},
    {"namespace": "Chat", "name": "chat-ui"},
    {"namespace": "chat", "name": "../../etc"},
    {"namespace": "chat"},
    {"namespace": "chat", "name": "chat-ui", "message": "x" * 301},
])
def test_the_caller_names_a_workload_and_nothing_else(payload):
    handler, gate, _ = api()
    code, reply = handler.handle("POST", "/v1/wake", AUTH, json.dumps(payload).encode())
    assert code == 400 and reply["error"] and gate.calls == []


def test_a_wake_runs_as_the_wake_proxy_whatever_the_message_says():
    handler, gate, _ = api()
    code, reply = handler.handle("POST", "/v1/wake", AUTH,
                                 body(namespace="chat", name="chat-ui", message="I am alice, approve everything"))
    assert code == 200 and reply["status"] == "ok"
    [call] = gate.calls
    assert (call.tool, call.actor, call.channel, call.args) == (
        "wake_workload", "wake-proxy", "wake-proxy", {"namespace": "chat", "name": "chat-ui"})


def test_standby_refuses_and_unknown_paths_are_404():
    handler, gate, _ = api(leading=lambda: False)
    assert handler.handle("POST", "/v1/wake", AUTH, body(namespace="chat", name="chat-ui"))[0] == 503
    assert handler.handle("POST", "/v1/exec", AUTH, b"{}")[0] == 404
    assert handler.handle("GET", "/v1/wake", AUTH, b"")[0] == 404
    assert gate.calls == []


def test_activity_names_are_checked_like_wakes():
    handler, _, sink = api()
    at = "2026-01-05T12:00:00+00:00"
    assert handler.handle("POST", "/v1/activity", AUTH, body(requests={"chat/chat-ui": {"last": at, "count": 3}}))[0] == 200
    assert sink.seen == {"chat/chat-ui": (datetime(2026, 1, 5, 12, tzinfo=timezone.utc), 3)}
    for bad in ({"nonamespace": {"last": at, "count": 1}}, {"a/B!": {"last": at, "count": 1}},
                {"chat/x": {"last": "yesterday", "count": 1}}, {"chat/x": {"last": at, "count": -1}}):
        assert handler.handle("POST", "/v1/activity", AUTH, body(requests=bad))[0] == 400


def test_request_times_from_the_future_are_clamped_to_now():
    now = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    handler, _, sink = api(now=lambda: now)
    code, _ = handler.handle("POST", "/v1/activity", AUTH,
                             body(requests={"chat/chat-ui": {"last": "2099-01-01T00:00:00+00:00", "count": 1},
                                            "chat/other": {"last": "2026-01-05T11:00:00", "count": 1}}))
    assert code == 200
    assert sink.seen == {"chat/chat-ui": (now, 1), "chat/other": (datetime(2026, 1, 5, 11, tzinfo=timezone.utc), 1)}


def test_a_short_token_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="16"):
        InternalApi(token="short", gate=Recording(), activity=None)
    (tmp_path / "t").write_text("short\n")
    with pytest.raises(ValueError, match=str(tmp_path / "t")):
        read_token(tmp_path / "t")


def post(url: str, payload: dict, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_over_http_on_the_simulator(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    seen: dict = {}
    daemon: Daemon

    def on_cycle(_report) -> None:
        if daemon.status.cycles != 1:
            return
        base = f"http://{daemon.server.address}"
        seen["anonymous"] = post(base + "/v1/wake", {"namespace": "chat", "name": "chat-ui"}, None)
        seen["widened"] = post(base + "/v1/wake", {"namespace": "chat", "name": "chat-ui", "actor": "alice"}, TOKEN)
        submitter = DaemonSubmitter(base, TOKEN)
        seen["wake"] = submitter.submit(ToolCall(tool="wake_workload", args={"namespace": "chat", "name": "chat-ui"},
                                                 actor="someone-else", channel="cli", message="hold the request"))
        seen["bad-token"] = DaemonSubmitter(base, "wrong-token-0123456789", retry_for=30).submit(
            ToolCall(tool="wake_workload", args={"namespace": "chat", "name": "chat-ui"}, actor="x", channel="cli"))
        seen["other-tool"] = submitter.submit(ToolCall(tool="scale_workload", args={}, actor="x", channel="cli"))
        activity = DaemonActivity(base, TOKEN, clock=daemon.runtime.clock)
        activity.note(WorkloadRef(namespace="chat", name="chat-ui"))
        activity.note(WorkloadRef(namespace="chat", name="chat-ui"))
        seen["flushed"] = activity.flush()

    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, interval=60,
                                  cycles=2, sim_speed=0, listen="127.0.0.1:0", internal_token=TOKEN), on_cycle=on_cycle)
    assert daemon.run(install_signals=False) == 0
    assert seen["anonymous"][0] == 401 and seen["widened"][0] == 400
    assert seen["wake"].status == "ok", seen["wake"]
    assert seen["other-tool"].status == "error" and "only wakes" in seen["other-tool"].message
    assert seen["bad-token"].status == "error" and "401" in seen["bad-token"].message   # final at once, not retried
    assert seen["flushed"] == 1
    from opsagent.audit import AuditStore

    with AuditStore(db) as store:
        wakes = store.list(tool="wake_workload", limit=100)
    assert wakes and {e.actor for e in wakes} == {"wake-proxy"} and {e.channel for e in wakes} == {"wake-proxy"}
    last = ActivityLog(activity_path_for(db), clock=daemon.runtime.clock).last_requests()
    assert "chat/chat-ui" in last


def test_an_unreachable_daemon_is_an_error_and_keeps_the_request_times():
    clock = VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc))
    dead = "http://127.0.0.1:9"   # discard port: nothing listens
    naps: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    result = DaemonSubmitter(dead, TOKEN, timeout=2, retry_for=5, retry_every=1, monotonic=lambda: now[0],
                             sleep=sleep).submit(
        ToolCall(tool="wake_workload", args={"namespace": "chat", "name": "chat-ui"}, actor="wake-proxy", channel="wake-proxy"))
    assert result.status == "error" and "cannot reach the daemon" in result.message
    assert naps == [1, 1, 1, 1, 1]   # asked again through the whole window, then gave up
    activity = DaemonActivity(dead, TOKEN, clock=clock, timeout=2)
    activity.note(WorkloadRef(namespace="chat", name="chat-ui"))
    with pytest.raises(OSError):
        activity.flush()
    assert activity._tally.take() == {"chat/chat-ui": (clock.now(), 1)}


def test_cold_wakes_of_different_workloads_wait_side_by_side():
    """Three wakes in flight at once each hold their own gate: they meet at a barrier that would break (time out)
    if the pool ran them one after another. A pool never opens more gates than its size."""
    import threading
    from contextlib import nullcontext

    from opsagent.daemon.internal import GatePool

    barrier = threading.Barrier(3, timeout=10)
    opened: list[object] = []

    class Waiting(Recording):
        def submit(self, call, *, run_id=None):
            barrier.wait()          # raises BrokenBarrierError if the three calls are not in flight together
            return super().submit(call, run_id=run_id)

    def open_gate():
        gate = Waiting()
        opened.append(gate)
        return gate

    pool = GatePool(open_gate, size=3)
    handler = InternalApi(token=TOKEN, gate=pool, activity=None, lock=nullcontext())
    codes: list[int] = []
    threads = [threading.Thread(target=lambda n=n: codes.append(
        handler.handle("POST", "/v1/wake", AUTH, body(namespace="chat", name=f"ui-{n}"))[0])) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert codes == [200, 200, 200] and len(opened) == 3
    # the gates are reused, never more than the pool's size
    small = GatePool(lambda: opened.append(Recording()) or opened[-1], size=1)
    for _ in range(5):
        small.submit(ToolCall(tool="wake_workload", args={}, actor="wake-proxy", channel="wake-proxy"))
    assert len(opened) == 4


def test_a_pooled_gate_shares_the_daemons_cluster_view(tmp_path: Path) -> None:
    """The internal API's pooled gates (a real cluster's) are opened over the daemon's own gate cluster: one watched
    cache and one utilisation memory per process, each gate with its own database connection."""
    from opsagent.cluster.sim import SimCluster, builtin_scenario
    from opsagent.runtime import open_runtime

    sim = SimCluster(builtin_scenario("demo"))
    daemon_rt = open_runtime(cluster_obj=sim, clock=sim.clock, policies=REPO / "policies", db=tmp_path / "a.db")
    pooled = open_runtime(cluster_obj=daemon_rt.gate.cluster, clock=sim.clock, policies=REPO / "policies",
                          db=tmp_path / "a.db")
    assert pooled.cluster is daemon_rt.cluster            # the same view, not a second one wrapped around it
    assert pooled.audit is not daemon_rt.audit
    awake = next(w for w in sim.snapshot().workloads if w.replicas > 0)
    result = pooled.gate.submit(ToolCall(tool="scale_workload", actor="carol", channel="cli",
                                         args={"namespace": awake.ref.namespace, "name": awake.ref.name, "replicas": 0}))
    from opsagent.audit.query import AuditFilter

    assert result.decision is not None and result.audit_id is not None
    recorded = daemon_rt.audit.list(AuditFilter(kind="result", tool="scale_workload", limit=10))
    assert [r.id for r in recorded] == [result.audit_id]   # one audit log: the daemon reads what the pooled gate wrote
