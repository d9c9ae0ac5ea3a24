"""Benchmark the wake proxy on the real clock, with real readiness, against a minimal aiohttp proxy.

The cluster is the simulator at 100 / 1,000 / 10,000 workloads (one GPU
replica each), wrapped so that it behaves like a real one on the wall clock: a
scale call starts a cold start that takes COLD_START real seconds, after which
the simulator is advanced until the pod is ready and the moment is noted;
`wait_ready` wakes on that change (as the kube adapter's watch does). Every
wake goes through the real gate, policy and audit log.

Measured, each repeated REPEATS times (median and range printed):
- forwarded after ready: from the pod being ready to the held request reaching
  the upstream (goal < 100 ms);
- first request -> scale call: from the first request for a sleeping workload to
  the scale call reaching the cluster (goal < 50 ms at 10,000 workloads);
- warm traffic at 1,000 workloads, 50 clients for WARM_SECONDS: requests/s and
  p99 through the wake proxy and through a minimal ~30-line aiohttp reverse proxy
  on the same upstream (goals: >= 0.5x the throughput, <= 2x the p99).

Run: .venv/bin/python evals/bench/wake_proxy.py [--sizes 100,1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "evals" / "bench"))

from _result import emit, median_range  # noqa: E402

from opsagent.clock import RealClock  # noqa: E402
from opsagent.runtime import open_runtime  # noqa: E402
from opsagent.wake import GateWaker, RouteTable, WakeProxy  # noqa: E402
from sim_scale import build  # noqa: E402
from tests.wakeutil import serve  # noqa: E402

COLD_START = 0.5
WARM_SECONDS = 5.0
CLIENTS = 50


class RealTimeSim:
    """The simulator as a cluster on the wall clock: scale starts a cold start of COLD_START real seconds."""

    def __init__(self, sim) -> None:
        self._sim = sim
        self.clock = sim.clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.scaled_at: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}

    def snapshot(self):
        with self._lock:
            return self._sim.snapshot()

    def snapshot_of(self, refs):
        with self._lock:
            return self._sim.snapshot_of(refs)

    def record_request(self, ref, *, count: int = 1) -> None:
        with self._lock:
            self._sim.record_request(ref, count=count)

    def scale(self, *, ref, replicas, dry_run=False):
        self.scaled_at.setdefault(str(ref), time.perf_counter())
        with self._lock:
            result = self._sim.scale(ref=ref, replicas=replicas, dry_run=dry_run)
        if not dry_run and replicas > 0:
            threading.Timer(COLD_START, self._finish_cold_start, args=(ref,)).start()
        return result

    def _ready(self, ref) -> int:
        return sum(1 for p in self._sim.workload(ref).pods if p.ready)

    def _finish_cold_start(self, ref) -> None:
        with self._changed:
            for _ in range(100):
                if self._ready(ref):
                    break
                self._sim.advance(self._sim.tick)
            self.ready_at[str(ref)] = time.perf_counter()
            self._changed.notify_all()

    def wait_ready(self, *, ref, replicas, timeout):
        with self._changed:
            self._changed.wait_for(lambda: str(ref) in self.ready_at, timeout=timeout)
            return self._ready(ref)

    def __getattr__(self, name):
        if name == "advance":   # time moves on the wall clock here, not on request
            raise AttributeError(name)
        return getattr(self._sim, name)


def bench_policies(namespace: str) -> Path:
    """The shipped policies plus an intent that lets `namespace` wake on request."""
    where = Path(tempfile.mkdtemp())
    shutil.copytree(REPO / "policies", where, dirs_exist_ok=True)
    (where / "bench-wake.yaml").write_text(
        f"scope:\n  namespaces: [{namespace}]\nintents:\n  - name: bench-wakes-on-request\n"
        f"    selector: {{namespace: {namespace}}}\n    replicas: {{min: 0, max: 1}}\n"
        f"    wake: {{on_request: true, warm_replicas: 1, timeout: 5m}}\n")
    return where


def minimal_proxy(upstream: str) -> web.Application:
    """A minimal aiohttp reverse proxy: forward method, path, headers and body; stream the answer back."""
    hop = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade"}

    async def start(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        body = request.content if request.can_read_body else None
        async with request.app["session"].request(request.method, upstream + request.rel_url.path_qs,
                                                  headers=headers, data=body, allow_redirects=False) as up:
            response = web.StreamResponse(status=up.status)
            for name, value in up.headers.items():
                if name.lower() not in hop:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def upstream_app(arrivals: dict[str, float]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        arrivals.setdefault(request.path.split("/")[1], time.perf_counter())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def warm_load(url: str, seconds: float) -> tuple[float, float]:
    """(requests per second, p99 ms) with CLIENTS keep-alive clients for `seconds`."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        async def one_client() -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                async with client.get(url) as resp:
                    await resp.read()
                latencies.append((time.perf_counter() - start) * 1000)
        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, percentile(latencies, 99)


async def one_size(size: int, *, warm: bool) -> dict[str, float]:
    sim = build(size)
    sim.advance(60)
    running = (w.ref for w in sim.workloads.values() if w.replicas > 0)
    cold, warm_ref = next(running), next(running)
    sim.scale(ref=cold, replicas=0)
    sim.advance(120)
    cluster = RealTimeSim(sim)
    rt = open_runtime(cluster_obj=cluster, clock=RealClock(), policies=bench_policies(cold.namespace),
                      db=Path(tempfile.mkdtemp()) / "bench.db")
    arrivals: dict[str, float] = {}
    out: dict[str, float] = {}
    async with serve(upstream_app(arrivals)) as upstream:
        routes = RouteTable.model_validate({"routes": [
            {"path_prefix": "/cold", "workload": str(cold), "upstream": upstream},
            {"path_prefix": "/warm", "workload": str(warm_ref), "upstream": upstream},
        ]})
        waker = GateWaker(gate=rt.gate, observe=rt.observe, clock=RealClock(), on_request=cluster.record_request,
                          look=rt.cluster.snapshot_of)
        proxy = WakeProxy(routes=routes, waker=waker, default_timeout=60)
        async with serve(proxy.app()) as proxied, serve(minimal_proxy(upstream)) as minimal, \
                aiohttp.ClientSession() as client:
            async with client.get(f"{proxied}/warm/x") as resp:   # the proxy's first look at the cluster
                await resp.read()
            start = time.perf_counter()
            async with client.get(f"{proxied}/cold/x") as resp:
                out["status"] = resp.status
            out["scale_ms"] = (cluster.scaled_at[str(cold)] - start) * 1000
            ready = cluster.ready_at.get(str(cold))
            out["after_ready_ms"] = (arrivals["cold"] - ready) * 1000 if ready else float("nan")
            if warm:
                out["minimal_rps"], out["minimal_p99"] = await warm_load(f"{minimal}/warm/x", WARM_SECONDS)
                out["proxy_rps"], out["proxy_p99"] = await warm_load(f"{proxied}/warm/x", WARM_SECONDS)
    return out


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):9.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"wake proxy, real clock, cold start {COLD_START}s; median (min-max) over {args.repeats} repeats")
    print(f"{'workloads':>9}  {'first request -> scale ms':>26}  {'forwarded after ready ms':>26}")
    warm_rows: list[dict[str, float]] = []
    for size in sizes:
        runs = [asyncio.run(one_size(size, warm=size == 1000)) for _ in range(args.repeats)]
        assert all(r["status"] == 200 for r in runs), [r["status"] for r in runs]
        print(f"{size:>9}  {summary([r['scale_ms'] for r in runs]):>26}  {summary([r['after_ready_ms'] for r in runs]):>26}")
        if size == 1000:
            warm_rows = runs
        scale = [r["scale_ms"] for r in runs]
        emit(f"wake proxy: first request -> scale call, {size:,} workloads", median_range(scale, unit=" ms"),
             value=statistics.median(scale), target=50.0 if size == max(sizes) else None)
        after = [r["after_ready_ms"] for r in runs]
        emit(f"wake proxy: forwarded after ready, {size:,} workloads", median_range(after, unit=" ms"),
             value=statistics.median(after), target=100.0)
    print("goals: first request -> scale < 50 ms at 10,000; forwarded after ready < 100 ms")
    if warm_rows:
        print(f"\nwarm traffic at 1,000 workloads, {CLIENTS} clients, {WARM_SECONDS:.0f} s each")
        print(f"{'':>14}{'requests/s':>26}{'p99 ms':>26}")
        print(f"{'minimal proxy':>14}{summary([r['minimal_rps'] for r in warm_rows]):>26}"
              f"{summary([r['minimal_p99'] for r in warm_rows]):>26}")
        print(f"{'wake proxy':>14}{summary([r['proxy_rps'] for r in warm_rows]):>26}"
              f"{summary([r['proxy_p99'] for r in warm_rows]):>26}")
        rps = statistics.median(r["proxy_rps"] / r["minimal_rps"] for r in warm_rows)
        p99 = statistics.median(r["proxy_p99"] / r["minimal_p99"] for r in warm_rows)
        print(f"{'ratio':>14}{rps:>26.2f}{p99:>26.2f}   goals: >= 0.5x throughput, <= 2x p99")
        emit("wake proxy: warm throughput vs a minimal proxy, 1,000 workloads, 50 clients", f"{rps:.2f}x",
             value=rps, target=0.5, better="higher")
        emit("wake proxy: warm p99 vs a minimal proxy, 1,000 workloads, 50 clients", f"{p99:.2f}x", value=p99, target=2.0,
             passed=p99 <= 2.0)


if __name__ == "__main__":
    main()
