"""Benchmark the wake proxy: added latency for warm requests, and time to the scale call when asleep.

Prints p50 / p99 latency of the same requests sent directly to an upstream and
through the proxy (one run, same upstream, keep-alive on both), the difference,
and the wall time from the first request for a sleeping workload to the moment
the simulator's `scale` is called through the gate.

Goals: added p50 under 1 ms; scale call within 50 ms.
Run: .venv/bin/python evals/bench/wake_proxy.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from opsagent.cluster.sim import SimCluster, builtin_scenario  # noqa: E402
from opsagent.model import WorkloadRef  # noqa: E402
from opsagent.runtime import open_runtime  # noqa: E402
from opsagent.wake import GateWaker, RouteTable, WakeProxy  # noqa: E402
from tests.wakeutil import serve, upstream_app  # noqa: E402

N = 2000
CHAT = WorkloadRef(namespace="chat", name="chat-ui")
RENDER = WorkloadRef(namespace="render", name="render-ui")


class TimedSim:
    """The simulator, noting when the first scale call arrives."""

    def __init__(self, sim: SimCluster) -> None:
        self._sim = sim
        self.scaled_at: float | None = None

    def scale(self, **kwargs):
        if self.scaled_at is None:
            self.scaled_at = time.perf_counter()
        return self._sim.scale(**kwargs)

    def __getattr__(self, name):
        return getattr(self._sim, name)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def timed_gets(client: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        async with client.get(url) as resp:
            await resp.read()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    sim = TimedSim(SimCluster(builtin_scenario("demo")))
    rt = open_runtime(cluster_obj=sim, clock=sim.clock, policies=REPO / "policies", db=tmp / "bench.db")
    async with serve(upstream_app()) as upstream:
        routes = RouteTable.model_validate({"routes": [
            {"path_prefix": "/render", "workload": str(RENDER), "upstream": upstream},
            {"path_prefix": "/chat", "workload": str(CHAT), "upstream": upstream},
        ]})
        waker = GateWaker(gate=rt.gate, observe=rt.observe, clock=rt.clock, on_request=sim.record_request,
                          lock=threading.Lock(), ready_ttl_seconds=3600)
        proxy = WakeProxy(routes=routes, waker=waker)
        async with serve(proxy.app()) as proxied, aiohttp.ClientSession() as client:
            # Warm both paths, then interleave rounds so machine noise hits both alike.
            await timed_gets(client, f"{upstream}/render/x", 100)
            await timed_gets(client, f"{proxied}/render/x", 100)
            direct, through = [], []
            for _ in range(10):
                direct += await timed_gets(client, f"{upstream}/render/x", N // 10)
                through += await timed_gets(client, f"{proxied}/render/x", N // 10)

            assert rt.observe().workload(CHAT).replicas == 0
            start = time.perf_counter()
            async with client.get(f"{proxied}/chat/hello") as resp:
                status = resp.status
            scale_ms = ((sim.scaled_at or start) - start) * 1000
            total_ms = (time.perf_counter() - start) * 1000

    d50, d99 = statistics.median(direct), percentile(direct, 99)
    p50, p99 = statistics.median(through), percentile(through, 99)
    print(f"warm requests: {N} direct and {N} proxied, keep-alive, one client")
    print(f"  direct   p50 {d50:7.3f} ms   p99 {d99:7.3f} ms")
    print(f"  proxied  p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    print(f"  added    p50 {p50 - d50:7.3f} ms   p99 {p99 - d99:7.3f} ms   (goal: added p50 < 1 ms)")
    print(f"sleeping workload: first request -> scale call {scale_ms:.2f} ms (goal < 50 ms); "
          f"answered {status} after {total_ms:.1f} ms wall (simulated cold start runs on the virtual clock)")


if __name__ == "__main__":
    asyncio.run(main())
