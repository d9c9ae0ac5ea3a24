"""The wake proxy: an HTTP reverse proxy that holds requests while a sleeping workload wakes.

Like the KEDA HTTP add-on's interceptor: a request for a workload at zero
triggers one wake (through the gate, audited), is held instead of answered with
502, and is forwarded once the workload is ready. If it is not ready in time the
client gets 503 with Retry-After; if the policy refuses the wake, 403 with the
rule; if the route's workload does not exist at all, 404 saying so. Concurrent requests during one cold start share one wake. Responses stream
through unbuffered.

This module does HTTP only; every decision about the cluster is the waker's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from opsagent.model import WorkloadRef
from opsagent.wake.routes import Route, RouteTable
from opsagent.wake.waker import WakeResult, Waker

log = logging.getLogger("opsagent.wake")

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)


@dataclass
class ProxyStats:
    requests: int = 0
    forwarded: int = 0
    wakes: int = 0
    held: int = 0
    timeouts: int = 0
    refused: int = 0
    by_workload: dict[str, int] = field(default_factory=dict)


class WakeProxy:
    def __init__(self, *, routes: RouteTable, waker: Waker, default_timeout: float = 300.0, retry_after: int = 10,
                 deferred: dict[str, str] | None = None) -> None:
        self.routes = routes
        # workload -> the KEDA HTTPScaledObject that already serves it (routes.served_by_keda): never woken here
        self.deferred = dict(deferred or {})
        self.waker = waker
        self.default_timeout = default_timeout
        self.retry_after = retry_after
        self.stats = ProxyStats()
        self._wakes: dict[str, asyncio.Task[WakeResult]] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- aiohttp plumbing ------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def _stop(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    # -- request path ----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        route = self.routes.match(request.host, request.path)
        if route is None:
            return _problem(404, f"no route for host {request.host!r} path {request.path!r}")
        ref = route.ref
        key = str(ref)
        self.stats.by_workload[key] = self.stats.by_workload.get(key, 0) + 1
        self.waker.note_request(ref)
        if key in self.deferred:  # KEDA's HTTP add-on holds and wakes these itself
            self.stats.forwarded += 1
            return await self._forward(request, route)

        ready = self.waker.cached_ready(ref)
        if ready is None:
            ready = await asyncio.to_thread(self.waker.check_ready, ref)
        if not ready and self.waker.is_missing(ref):
            self.stats.refused += 1
            where = f"host {route.host!r} " if route.host else ""
            return _problem(404, f"the route for {where}path prefix {route.path_prefix!r} points at workload {ref}, "
                                 "which does not exist in the cluster; fix the routes file or create the workload")
        if not ready:
            refusal = await self._hold_until_ready(route, ref)
            if refusal is not None:
                return refusal
        try:
            return await self._forward(request, route)
        except aiohttp.ClientConnectionError:
            # The workload may have been put to sleep since we last looked.
            forget = getattr(self.waker, "forget", None)
            if forget is not None:
                forget(ref)
            if await asyncio.to_thread(self.waker.check_ready, ref):
                return _problem(502, f"upstream {route.upstream} for {ref} refused the connection", retry_after=self.retry_after)
            refusal = await self._hold_until_ready(route, ref)
            if refusal is not None:
                return refusal
            return await self._forward(request, route)

    async def _hold_until_ready(self, route: Route, ref: WorkloadRef) -> web.StreamResponse | None:
        timeout = route.timeout.total_seconds() if route.timeout else self.default_timeout
        self.stats.held += 1
        task = self._wakes.get(str(ref))
        if task is None or task.done():
            self.stats.wakes += 1
            task = asyncio.ensure_future(asyncio.to_thread(self.waker.wake, ref, timeout=timeout))
            self._wakes[str(ref)] = task
        try:
            result = await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except asyncio.TimeoutError:
            self.stats.timeouts += 1
            return _problem(503, f"{ref} is still starting after {timeout:.0f}s", retry_after=self.retry_after)
        if result.status == "ready":
            return None
        if result.status == "denied":
            self.stats.refused += 1
            return _problem(403, f"{ref} is asleep and {result.message}")
        if result.status == "pending_approval":
            self.stats.refused += 1
            return _problem(503, f"{ref} is asleep; {result.message}", retry_after=self.retry_after)
        if result.status == "timeout":
            self.stats.timeouts += 1
            return _problem(503, f"{ref} did not become ready in time", retry_after=self.retry_after)
        return _problem(503, f"could not wake {ref}: {result.message}", retry_after=self.retry_after)

    async def _forward(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert self._session is not None, "proxy not started"
        url = route.upstream + request.rel_url.path_qs
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-Host"] = request.host
        body = request.content if request.can_read_body else None
        async with self._session.request(request.method, url, headers=headers, data=body, allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            if upstream.content_length is not None and "chunked" not in upstream.headers.get("Transfer-Encoding", ""):
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        self.stats.forwarded += 1
        return response


def _problem(status: int, message: str, *, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    body = json.dumps({"error": message, "status": status})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)
