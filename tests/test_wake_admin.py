"""The wake proxy's admin port and its remote mode's refusals.

Spec: /healthz, /readyz and /metrics answer on the admin app (never on the proxied port, where they would shadow
an upstream's own paths); the metrics count proxied responses by status; `--wake-via` refuses the simulator and
a missing token file with one line naming the fix.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from opsagent.cli import app
from opsagent.wake.admin import Counters, admin_app

REPO = Path(__file__).resolve().parents[1]


def test_admin_endpoints_and_counted_responses():
    async def scenario() -> dict:
        counters = Counters()
        proxied = web.Application(middlewares=[counters.middleware()])

        async def ok(_r):
            return web.Response(text="hi")

        async def missing(_r):
            raise web.HTTPNotFound()

        proxied.router.add_get("/ok", ok)
        proxied.router.add_get("/gone", missing)
        admin = admin_app(ready=lambda: (False, "cluster not read yet"), metrics=counters.render)
        out = {}
        async with TestClient(TestServer(proxied)) as pc, TestClient(TestServer(admin)) as ac:
            for path in ("/ok", "/ok", "/gone", "/healthz"):
                await pc.get(path)
            out["healthz"] = (await ac.get("/healthz")).status
            ready = await ac.get("/readyz")
            out["readyz"] = (ready.status, await ready.json())
            out["metrics"] = await (await ac.get("/metrics")).text()
        return out

    out = asyncio.run(scenario())
    assert out["healthz"] == 200
    assert out["readyz"] == (503, {"ok": False, "detail": "cluster not read yet"})
    assert 'opsagent_wake_proxy_requests_total{code="200"} 2' in out["metrics"]
    assert 'opsagent_wake_proxy_requests_total{code="404"} 2' in out["metrics"]   # /gone and the proxied /healthz


def test_remote_mode_refuses_the_simulator_and_a_missing_token(tmp_path):
    runner = CliRunner()
    routes = REPO / "deploy" / "wake-routes.yaml"
    sim = runner.invoke(app, ["wake-proxy", "--routes", str(routes), "--cluster", "sim:demo",
                              "--wake-via", "http://127.0.0.1:1"])
    assert sim.exit_code == 2 and "needs a real cluster" in sim.output
    no_token = runner.invoke(app, ["wake-proxy", "--routes", str(routes), "--cluster", "kube",
                                   "--wake-via", "http://127.0.0.1:1"])
    assert no_token.exit_code == 2 and "--wake-token-file" in no_token.output
    bad_admin = runner.invoke(app, ["wake-proxy", "--routes", str(routes), "--admin-listen", "nope"])
    assert bad_admin.exit_code == 2 and "--admin-listen" in bad_admin.output
