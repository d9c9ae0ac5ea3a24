"""The wake proxy's own endpoints, on a port of their own so no proxied path is shadowed.

/healthz: 200 while the event loop answers. /readyz: 200 when the proxy can
serve (its routes loaded and the cluster read at least once), else 503 with
why. /metrics: the Prometheus text the caller renders.
"""

from __future__ import annotations

import json
from typing import Callable

from aiohttp import web


def admin_app(*, ready: Callable[[], tuple[bool, str]], metrics: Callable[[], str]) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "detail": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        ok, detail = ready()
        return web.Response(status=200 if ok else 503, text=json.dumps({"ok": ok, "detail": detail}),
                            content_type="application/json")

    async def render(_request: web.Request) -> web.Response:
        return web.Response(text=metrics(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", render)
    return app


class Counters:
    """Requests answered by status code, counted by a middleware on the proxy app."""

    def __init__(self) -> None:
        self.by_code: dict[int, int] = {}

    def middleware(self):  # type: ignore[no-untyped-def]
        @web.middleware
        async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                self.by_code[exc.status] = self.by_code.get(exc.status, 0) + 1
                raise
            self.by_code[response.status] = self.by_code.get(response.status, 0) + 1
            return response
        return count

    def render(self) -> str:
        lines = ["# HELP opsagent_wake_proxy_requests_total Requests answered by the wake proxy, by HTTP status.",
                 "# TYPE opsagent_wake_proxy_requests_total counter"]
        lines += [f'opsagent_wake_proxy_requests_total{{code="{code}"}} {n}' for code, n in sorted(self.by_code.items())]
        return "\n".join(lines) + "\n"


async def serve(app: web.Application, host: str, port: int, admin: web.Application | None,
                admin_host: str = "", admin_port: int = 0, *, listening: Callable[[], None] | None = None) -> None:
    """Run the proxy (and the admin endpoints, when given) until cancelled; `listening` is called once every
    site is bound (so "listening on" is never said of a port another process holds)."""
    import asyncio

    runners = []
    try:  # a site that cannot bind (port in use) still cleans up what setup() started, e.g. the client session
        for one, h, p in ((app, host, port), (admin, admin_host, admin_port)):
            if one is None:
                continue
            runner = web.AppRunner(one)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, h, p).start()
        if listening is not None:
            listening()
        await asyncio.Event().wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
