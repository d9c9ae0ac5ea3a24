"""The wake proxy, end to end over loopback HTTP, with the real gate, policy, audit log and simulator.

- A request for a workload at zero is held across the simulated cold start and
  then forwarded (not answered with 502), and the wake is audited as actor
  `wake-proxy`.
- Many concurrent requests during one cold start trigger one wake.
- Past the timeout the client gets 503 with Retry-After.
- When the policy refuses the wake the client gets 403 naming the rule.
- Streaming responses pass through; requests update the idle detector's clock.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from opsagent.model import ToolCall, ToolResult, WorkloadRef
from opsagent.runtime import open_runtime
from opsagent.wake import GateWaker, RouteTable, WakeProxy, load_routes
from opsagent.yamlfile import FileError
from wakeutil import serve, upstream_app

REPO = Path(__file__).resolve().parents[1]
CHAT = WorkloadRef(namespace="chat", name="chat-ui")
RENDER = WorkloadRef(namespace="render", name="render-ui")


class HeldGate:
    """Delegates to the real gate, but holds each wake for `delay` real seconds first.

    That keeps a cold start open long enough for concurrent requests to pile up
    behind it, which a simulated cold start (instant in wall time) would not.
    """

    def __init__(self, gate, delay: float) -> None:
        self.gate, self.delay, self.calls = gate, delay, 0
        self._lock = threading.Lock()

    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.gate.submit(call, run_id=run_id)


def _runtime(tmp_path: Path, policies: Path = REPO / "policies"):
    return open_runtime(cluster="sim:demo", policies=policies, db=tmp_path / "ops.db")


def _proxy(rt, upstream: str, *, gate=None, timeout: float = 30.0) -> WakeProxy:
    routes = RouteTable.model_validate(
        {"routes": [
            {"path_prefix": "/chat", "workload": str(CHAT), "upstream": upstream},
            {"path_prefix": "/render", "workload": str(RENDER), "upstream": upstream},
        ]}
    )
    waker = GateWaker(gate=gate or rt.gate, observe=rt.observe, clock=rt.clock, on_request=rt.sim.record_request, lock=threading.Lock())
    return WakeProxy(routes=routes, waker=waker, default_timeout=timeout, retry_after=7)


def _wakes(rt) -> list:
    return [r for r in rt.audit.list(tool="wake_workload") if r.kind == "result"]


async def _run(proxy: WakeProxy, body):
    async with serve(upstream_app()) as up_url:
        proxy.routes = RouteTable.model_validate(
            {"routes": [r.model_copy(update={"upstream": up_url}).model_dump() for r in proxy.routes.routes]}
        )
        async with serve(proxy.app()) as proxy_url, aiohttp.ClientSession() as client:
            return await body(client, proxy_url)


def test_request_for_sleeping_workload_is_held_then_forwarded(tmp_path):
    rt = _runtime(tmp_path)
    assert rt.observe().workload(CHAT).replicas == 0
    proxy = _proxy(rt, "http://placeholder")

    async def body(client, url):
        async with client.post(f"{url}/chat/v1/complete?x=1", data=b"hello") as resp:
            return resp.status, await resp.json()

    status, payload = asyncio.run(_run(proxy, body))
    assert status == 200
    assert payload["path"] == "/chat/v1/complete?x=1" and payload["body"] == "hello" and payload["method"] == "POST"
    workload = rt.observe().workload(CHAT)
    assert workload.replicas >= 1 and workload.ready_replicas >= 1
    wakes = _wakes(rt)
    assert len(wakes) == 1 and wakes[0].actor == "wake-proxy" and wakes[0].outcome == "ok"


def test_concurrent_requests_during_one_cold_start_share_one_wake(tmp_path):
    rt = _runtime(tmp_path)
    held = HeldGate(rt.gate, delay=0.4)
    proxy = _proxy(rt, "http://placeholder", gate=held)

    async def body(client, url):
        async def one(i):
            async with client.get(f"{url}/chat/q{i}") as resp:
                return resp.status
        return await asyncio.gather(*(one(i) for i in range(20)))

    statuses = asyncio.run(_run(proxy, body))
    assert statuses == [200] * 20
    assert held.calls == 1 and proxy.stats.wakes == 1
    assert len(_wakes(rt)) == 1


def test_wake_that_outlasts_the_timeout_answers_503_with_retry_after(tmp_path):
    rt = _runtime(tmp_path)
    proxy = _proxy(rt, "http://placeholder", gate=HeldGate(rt.gate, delay=1.0), timeout=0.2)

    async def body(client, url):
        async with client.get(f"{url}/chat/") as resp:
            return resp.status, resp.headers.get("Retry-After"), await resp.json()

    status, retry_after, payload = asyncio.run(_run(proxy, body))
    assert status == 503 and retry_after == "7"
    assert "still starting" in payload["error"]


def test_policy_refusing_the_wake_answers_403_with_the_rule(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("actors"))
    (policies / "zz-freeze.yaml").write_text(
        "priority: 1\n"
        "scope:\n  namespaces: [chat]\n"
        "rules:\n"
        "  - name: chat-frozen\n"
        "    tools: [wake_workload]\n"
        "    namespaces: [chat]\n"
        "    effect: deny\n"
        "    reason: chat is frozen for the migration\n"
    )
    rt = _runtime(tmp_path, policies)
    proxy = _proxy(rt, "http://placeholder")

    async def body(client, url):
        async with client.get(f"{url}/chat/") as resp:
            return resp.status, await resp.json()

    status, payload = asyncio.run(_run(proxy, body))
    assert status == 403
    assert "chat-frozen" in payload["error"] and "frozen for the migration" in payload["error"]
    assert rt.observe().workload(CHAT).replicas == 0
    assert [r.outcome for r in _wakes(rt)] == ["denied"]


def test_warm_workload_streams_through_and_requests_feed_the_idle_clock(tmp_path):
    rt = _runtime(tmp_path)
    assert rt.observe().workload(RENDER).ready_replicas >= 1 or rt.sim.advance(600)
    proxy = _proxy(rt, "http://placeholder")

    async def body(client, url):
        async with client.get(f"{url}/render/stream") as resp:
            chunks = [chunk async for chunk in resp.content.iter_any()]
            return resp.status, b"".join(chunks)

    status, data = asyncio.run(_run(proxy, body))
    assert status == 200
    assert data == b"".join(f"chunk-{i}\n".encode() for i in range(5))
    assert _wakes(rt) == []
    assert rt.observe().workload(RENDER).last_request_at == rt.clock.now()


def test_unrouted_request_is_404(tmp_path):
    rt = _runtime(tmp_path)
    proxy = _proxy(rt, "http://placeholder")

    async def body(client, url):
        async with client.get(f"{url}/nowhere") as resp:
            return resp.status, await resp.json()

    status, payload = asyncio.run(_run(proxy, body))
    assert status == 404 and "no route" in payload["error"]


def test_routes_file_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - workload: chat/chat-ui\n    upstream: ftp://x\n")
    with pytest.raises(FileError) as err:
        load_routes(path)
    text = str(err.value)
    assert f"{path}:3:" in text and "routes[0].upstream" in text and "http" in text


GHOST = WorkloadRef(namespace="chat", name="ghost-ui")


def test_route_to_a_workload_that_does_not_exist_answers_404_with_a_clear_body(tmp_path):
    rt = _runtime(tmp_path)
    proxy = _proxy(rt, "http://placeholder")
    proxy.routes = RouteTable.model_validate({"routes": [
        *[r.model_dump() for r in proxy.routes.routes],
        {"path_prefix": "/ghost", "workload": str(GHOST), "upstream": "http://placeholder"},
    ]})

    async def body(client, url):
        out = []
        for _ in range(2):  # the second request looks again instead of trusting a cache
            async with client.get(f"{url}/ghost/hello") as resp:
                out.append((resp.status, await resp.json()))
        async with client.get(f"{url}/chat/hello") as resp:  # other routes keep working
            out.append((resp.status, None))
        return out

    (s1, p1), (s2, _), (chat_status, _) = asyncio.run(_run(proxy, body))
    assert (s1, s2, chat_status) == (404, 404, 200)
    assert "chat/ghost-ui" in p1["error"] and "does not exist in the cluster" in p1["error"] and "'/ghost'" in p1["error"]
    assert [r.args for r in _wakes(rt) if r.args.get("name") == "ghost-ui"] == []


def test_missing_route_workloads_are_named_with_their_file_line(tmp_path):
    from opsagent.wake import missing_workloads

    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - path_prefix: /chat\n    workload: chat/chat-ui\n    upstream: http://a:1\n"
                    "  - host: ghost.example\n    workload: chat/ghost-ui\n    upstream: http://a:2\n")
    rt = _runtime(tmp_path)
    warnings = missing_workloads(load_routes(path), rt.observe(), path=path)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:6: routes[1] (host 'ghost.example' path prefix '/')")
    assert "chat/ghost-ui" in warnings[0]


def test_wake_proxy_command_warns_at_start_about_a_route_to_nothing(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - path_prefix: /ghost\n    workload: chat/ghost-ui\n    upstream: http://127.0.0.1:9\n")
    cmd = [str(Path(sys.executable).parent / "opsagent"), "wake-proxy", "--routes", str(path), "--cluster", "sim:demo",
           "--listen", "127.0.0.1:0", "--policies", str(REPO / "policies"), "--db", str(tmp_path / "ops.db")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "400"})
    try:
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert line.startswith(f"warning: {path}:3: routes[0] (path prefix '/ghost') points at workload chat/ghost-ui"), line


class CountingObserve:
    """The runtime's observe, counting cluster reads and holding each for `delay` real seconds."""

    def __init__(self, rt, delay: float = 0.0) -> None:
        self.rt, self.delay, self.calls = rt, delay, 0

    def __call__(self):
        self.calls += 1
        time.sleep(self.delay)
        return self.rt.observe()


def test_warm_requests_read_the_cluster_once_and_refresh_in_the_background(tmp_path):
    rt = _runtime(tmp_path)
    assert rt.observe().workload(RENDER).ready_replicas >= 1 or rt.sim.advance(600)
    proxy = _proxy(rt, "http://placeholder")
    observe = CountingObserve(rt)
    proxy.waker._observe = observe

    async def burst(client, url, n):
        async def one(i):
            async with client.get(f"{url}/render/q{i}") as resp:
                return resp.status
        return await asyncio.gather(*(one(i) for i in range(n)))

    async def body(client, url):
        first = await burst(client, url, 50)
        reads_warm = observe.calls
        rt.clock.advance(60)   # every readiness entry is now older than the TTL
        second = await burst(client, url, 50)
        for _ in range(100):   # the one background refresh finishes on its own thread
            if not proxy.waker._refreshing:
                break
            await asyncio.sleep(0.01)
        return first, second, reads_warm

    first, second, reads_warm = asyncio.run(_run(proxy, body))
    assert first == [200] * 50 and second == [200] * 50
    assert reads_warm == 1
    assert observe.calls == 2


def test_concurrent_readiness_checks_share_one_cluster_read(tmp_path):
    rt = _runtime(tmp_path)
    observe = CountingObserve(rt, delay=0.3)
    waker = GateWaker(gate=rt.gate, observe=observe, clock=rt.clock)
    answers: list[bool] = []
    threads = [threading.Thread(target=lambda: answers.append(waker.check_ready(CHAT))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [False] * 10
    assert observe.calls == 1
    assert waker.cached_ready(CHAT) is False and waker.cached_ready(RENDER) is not None
    assert not waker.is_missing(CHAT) and waker.is_missing(WorkloadRef(namespace="chat", name="nope"))


def test_a_host_keda_http_add_on_serves_is_named_at_start_and_never_woken(tmp_path):
    """An HTTPScaledObject whose hosts match a route: warned about at start; requests go straight through, no wake."""
    from opsagent.model import Autoscaler
    from opsagent.wake import served_by_keda

    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - host: chat.internal.example\n    workload: chat/chat-ui\n    upstream: http://a:1\n"
                    "  - path_prefix: /render\n    workload: render/render-ui\n    upstream: http://a:2\n")
    rt = _runtime(tmp_path)
    keda = Autoscaler(kind="HTTPScaledObject", namespace="chat", name="chat-ui", target=CHAT, min_replicas=0,
                      max_replicas=3, hosts=("Chat.Internal.Example",))
    snap = rt.observe()
    served, warnings = served_by_keda(load_routes(path), snap.model_copy(update={"autoscalers": (keda,)}), path=path)
    assert served == {"chat/chat-ui": "HTTPScaledObject chat/chat-ui"}
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:2: routes[0] (host 'chat.internal.example')")
    assert served_by_keda(load_routes(path), snap)[0] == {}

    proxy = _proxy(rt, "http://placeholder")
    proxy.deferred = served

    async def body(client, url):
        async with client.get(f"{url}/chat/q") as resp:
            return resp.status

    assert asyncio.run(_run(proxy, body)) == 200   # forwarded as it came (KEDA's interceptor holds it in a real cluster)
    assert _wakes(rt) == [] and proxy.stats.wakes == 0
    assert rt.observe().workload(CHAT).replicas == 0
