"""`opsagent wake-proxy`: hold requests for sleeping workloads while they wake, then forward them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import typer

from opsagent.cli.common import DbOpt, PoliciesOpt, console, err_console, fail
from opsagent.cluster.port import ClusterError
from opsagent.yamlfile import FileError

HELP = """Reverse proxy in front of workloads that may be scaled to zero.

A request for a sleeping workload asks the gate to run `wake_workload` as actor
`wake-proxy` (so the policy decides and the audit log records it), is held until
the workload is ready, then forwarded. Past the timeout the client gets 503 with
Retry-After; if the policy refuses the wake, 403 naming the rule. Many requests
during one cold start share one wake. At start-up every route is checked against
the cluster: a route whose workload does not exist is named with its file line
in a warning, and requests for it get 404. Every request updates the workload's last
request time, which the idle detector reads.

Example:
  opsagent wake-proxy --routes deploy/wake-routes.yaml --cluster kube --listen 0.0.0.0:8081
"""


def register(app: typer.Typer) -> None:
    app.command("wake-proxy", help=HELP)(wake_proxy)


def wake_proxy(
    routes: Path = typer.Option(..., "--routes", envvar="OPSAGENT_WAKE_ROUTES", help="YAML file of routes: host / path prefix → workload and upstream."),
    cluster: str = typer.Option("kube", "--cluster", envvar="OPSAGENT_CLUSTER", help="kube, kube:CONTEXT, or sim:SCENARIO."),
    listen: str = typer.Option("127.0.0.1:8081", "--listen", envvar="OPSAGENT_WAKE_LISTEN", help="HOST:PORT to listen on."),
    timeout: float = typer.Option(300.0, "--timeout", min=0.01, max=86400, envvar="OPSAGENT_WAKE_TIMEOUT", help="Seconds a request may wait for a cold start (a route's own timeout wins)."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
) -> None:
    from aiohttp import web

    from opsagent.runtime import RuntimeError_, open_runtime
    from opsagent.wake import ActivityLog, GateWaker, WakeProxy, load_routes, missing_workloads
    from opsagent.wake.activity import activity_path_for

    try:
        table = load_routes(routes)
    except FileError as exc:
        fail(str(exc), hint="each route needs workload: NAMESPACE/NAME and upstream: http://HOST:PORT")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        fail(f"--listen must be HOST:PORT, got {listen!r}")
    try:
        rt = open_runtime(cluster=cluster, policies=policies, db=db)
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)

    try:
        snapshot = rt.observe()
    except ClusterError as exc:
        err_console.print(f"warning: cannot check the routes against the cluster now: {exc.message}", highlight=False)
    else:
        for warning in missing_workloads(table, snapshot, path=routes):
            err_console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    activity = ActivityLog(activity_path_for(db), clock=rt.clock) if rt.sim is None else None
    on_request = (lambda ref: rt.sim.record_request(ref)) if rt.sim is not None else activity.note  # type: ignore[union-attr]
    waker = GateWaker(gate=rt.gate, observe=rt.observe, clock=rt.clock, on_request=on_request, lock=threading.Lock() if rt.sim is not None else None)
    proxy = WakeProxy(routes=table, waker=waker, default_timeout=timeout)
    app = proxy.app()
    if activity is not None:
        async def _flush_forever(_app: web.Application) -> None:
            async def loop() -> None:
                while True:
                    await asyncio.sleep(5)
                    await asyncio.to_thread(activity.flush)
            _app["flusher"] = asyncio.create_task(loop())
        app.on_startup.append(_flush_forever)
    console.print(f"wake proxy listening on http://{listen} with {len(table.routes)} route(s); cluster {cluster}")
    web.run_app(app, host=host, port=int(port), print=None)
