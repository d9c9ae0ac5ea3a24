"""Helpers for wake-proxy tests: run aiohttp apps on loopback inside one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 on a free port; yields the base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def upstream_app(label: str = "upstream") -> web.Application:
    """A small upstream: echoes path and method, and streams on /stream."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"who": label, "path": request.path_qs, "method": request.method, "body": body.decode(), "host": request.headers.get("X-Forwarded-Host")}
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        for i in range(5):
            await response.write(f"chunk-{i}\n".encode())
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/{prefix:.*}/stream", stream)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
