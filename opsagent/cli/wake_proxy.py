"""`opsagent wake-proxy`: hold requests for sleeping workloads while they wake, then forward them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from opsagent.cli.common import ClusterOpt, DbOpt, PoliciesOpt, console, err_console, fail
from opsagent.cluster.port import ClusterError
from opsagent.yamlfile import FileError

if TYPE_CHECKING:
    from aiohttp import web

    from opsagent.model import Snapshot
    from opsagent.wake.routes import RouteTable

HELP = """Reverse proxy in front of workloads that may be scaled to zero.

A request for a sleeping workload asks the gate to run `wake_workload` as actor
`wake-proxy` (so the policy decides and the audit log records it), is held until
the workload is ready, then forwarded. Past the timeout the client gets 503 with
Retry-After; if the policy refuses the wake, 403 naming the rule. Many requests
during one cold start share one wake. At start-up every route is checked against
the cluster: a route whose workload does not exist is named with its file line
in a warning, and requests for it get 404. A route's upstream may be a Service,
`service:NAMESPACE/NAME[:PORT]`: it is resolved at start-up to the Service's
cluster address and port, and a Service that does not exist or has no such port
stops the start with the file line. Every request updates the workload's last
request time, which the idle detector reads.

With --wake-via the proxy writes nothing itself: wakes and request times go to
the daemon's internal API (`opsagent daemon --internal-token-file`), so several
proxy replicas can run in their own pods without the audit database.

Example:
  opsagent wake-proxy --routes deploy/wake-routes.yaml --cluster kube --listen 0.0.0.0:8081
  opsagent wake-proxy --routes routes.yaml --cluster kube --wake-via http://opsagent.opsagent.svc:8080 --wake-token-file /var/run/opsagent/token
"""


def register(app: typer.Typer) -> None:
    app.command("wake-proxy", help=HELP)(wake_proxy)


def wake_proxy(
    routes: Path = typer.Option(..., "--routes", envvar="OPSAGENT_WAKE_ROUTES", help="YAML file of routes: host / path prefix → workload and upstream."),
    cluster: Optional[str] = ClusterOpt,
    listen: str = typer.Option("127.0.0.1:8081", "--listen", envvar="OPSAGENT_WAKE_LISTEN", help="HOST:PORT to listen on."),
    timeout: float = typer.Option(300.0, "--timeout", min=0.01, max=86400, envvar="OPSAGENT_WAKE_TIMEOUT", help="Seconds a request may wait for a cold start (a route's own timeout wins)."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    admin_listen: str = typer.Option("", "--admin-listen", envvar="OPSAGENT_WAKE_ADMIN_LISTEN",
                                     help="HOST:PORT for /healthz, /readyz and /metrics, apart from the proxied port."),
    wake_via: str = typer.Option("", "--wake-via", envvar="OPSAGENT_WAKE_VIA",
                                 help="URL of the daemon's internal API; wakes and request times go there (no --db is written)."),
    wake_token_file: Path = typer.Option(None, "--wake-token-file", envvar="OPSAGENT_WAKE_TOKEN_FILE",
                                         help="With --wake-via: file holding the daemon's internal API token."),
) -> None:
    from opsagent.runtime import RuntimeError_, open_runtime
    from opsagent.wake import ActivityLog, GateWaker, WakeProxy, load_routes, missing_workloads, served_by_keda
    from opsagent.wake.activity import activity_path_for

    try:
        table = load_routes(routes)
    except FileError as exc:
        fail(str(exc), hint="each route needs workload: NAMESPACE/NAME and upstream: http://HOST:PORT or service:NAMESPACE/NAME[:PORT]")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        fail(f"--listen must be HOST:PORT, got {listen!r}")
    admin_at = _parse_admin(admin_listen)
    from opsagent.cli.resolve import session

    cluster, db = session(cluster, db)
    if wake_via:
        _remote_proxy(table=table, routes=routes, cluster=cluster, host=host, port=int(port), timeout=timeout,
                      wake_via=wake_via, token_file=wake_token_file, admin_at=admin_at)
        return
    try:
        rt = open_runtime(cluster=cluster, policies=policies, db=db, watch=True)
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)

    deferred: dict[str, str] = {}
    try:
        snapshot = rt.observe()
    except ClusterError as exc:
        _unchecked(table, exc)
    else:
        table = _resolved(table, snapshot, routes)
        deferred, served = served_by_keda(table, snapshot, path=routes)
        for warning in [*missing_workloads(table, snapshot, path=routes), *served]:
            err_console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    activity = ActivityLog(activity_path_for(db), clock=rt.clock) if rt.sim is None else None
    on_request = (lambda ref: rt.sim.record_request(ref)) if rt.sim is not None else activity.note  # type: ignore[union-attr]
    waker = GateWaker(gate=rt.gate, observe=rt.observe, clock=rt.clock, on_request=on_request,
                      lock=threading.Lock() if rt.sim is not None else None, look=getattr(rt.cluster, "snapshot_of", None))
    proxy = WakeProxy(routes=table, waker=waker, default_timeout=timeout, deferred=deferred)
    app = proxy.app()
    if activity is not None:
        async def _flush_forever(_app: web.Application) -> None:
            async def loop() -> None:
                while True:
                    await asyncio.sleep(5)
                    await asyncio.to_thread(activity.flush)
            _app["flusher"] = asyncio.create_task(loop())
        app.on_startup.append(_flush_forever)
    _run(app, host, int(port), admin_at, ready=getattr(rt.cluster, "cache_health", None),
         listening=f"wake proxy listening on http://{listen} with {len(table.routes)} route(s); cluster {cluster}")


def _unchecked(table: "RouteTable", exc: ClusterError) -> None:
    """The cluster could not be read at start-up: a warning, or the end when a route's upstream is a Service."""
    from opsagent.wake.upstreams import uses_services

    if uses_services(table):
        fail(f"cannot read the cluster to resolve the Service upstreams: {exc.message}",
             hint="check --cluster and the proxy's access, or give those routes an http:// upstream")
    err_console.print(f"warning: cannot check the routes against the cluster now: {exc.message}", highlight=False)


def _resolved(table: "RouteTable", snapshot: "Snapshot", routes: Path) -> "RouteTable":
    """Routes whose upstream is service:NS/NAME[:PORT], pointed at that Service's address; a bad one ends the start."""
    from opsagent.wake.upstreams import UpstreamError, other_workloads, resolve_upstreams

    for warning in other_workloads(table, snapshot, path=routes):
        err_console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    try:
        return resolve_upstreams(table, snapshot, path=routes)
    except UpstreamError as exc:
        fail(str(exc), hint="name an existing Service and one of its ports (number or name), e.g. service:chat/chat-ui:http")


def _parse_admin(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    from opsagent.daemon.http import parse_listen

    try:
        return parse_listen(text)
    except ValueError as exc:
        fail(str(exc).replace("--listen", "--admin-listen"), hint="e.g. --admin-listen 0.0.0.0:9091")


def _run(app: "web.Application", host: str, port: int, admin_at: tuple[str, int] | None,
         ready: Callable[[], tuple[bool, str]] | None = None, listening: str = "") -> None:
    """Serve the proxy and, with --admin-listen, its health and metrics; a port in use is one line, not a traceback.
    `ready` (a watched kube cluster's `cache_health`) makes /readyz answer 503 while a watch is stale."""
    from opsagent.wake.admin import Counters, admin_app, serve

    admin = None
    if admin_at is not None:
        counters = Counters()
        app.middlewares.append(counters.middleware())
        admin = admin_app(ready=ready or (lambda: (True, "serving")), metrics=counters.render)
    try:
        asyncio.run(serve(app, host, port, admin, *(admin_at or ("", 0)),   # said once bound, not before
                          listening=lambda: console.print(listening, highlight=False, markup=False) if listening else None))
    except OSError as exc:
        fail(f"cannot listen: {exc.strerror or exc}", hint="is another process using the port? choose --listen / --admin-listen")
    except KeyboardInterrupt:
        pass


def _remote_proxy(*, table: "RouteTable", routes: Path, cluster: str, host: str, port: int, timeout: float,
                  wake_via: str, token_file: Path | None, admin_at: tuple[str, int] | None) -> None:
    """The proxy as its own Deployment: reads the cluster itself, sends wakes and request times to the daemon."""
    from opsagent.runtime import RuntimeError_, open_cluster
    from opsagent.wake import GateWaker, WakeProxy, missing_workloads, served_by_keda
    from opsagent.wake.remote import DaemonActivity, DaemonSubmitter, read_token

    if cluster.startswith("sim"):
        fail("--wake-via needs a real cluster: on the simulator the proxy and the daemon share one process",
             hint="drop --wake-via, or use --cluster kube")
    if token_file is None:
        fail("--wake-via needs --wake-token-file", hint="mount the daemon's internal token from its Secret")
    try:
        token = read_token(token_file)
        submitter = DaemonSubmitter(wake_via, token, timeout=timeout + 30, retry_for=timeout)
        reader, clock, _ = open_cluster(cluster, watch=True)
        if hasattr(reader, "reads_config"):
            reader.reads_config = False   # the proxy needs no ConfigMaps or Secrets, and its account may not list them
        activity = DaemonActivity(wake_via, token, clock=clock)
    except ValueError as exc:
        fail(str(exc))
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)
    deferred: dict[str, str] = {}
    try:
        snapshot = reader.snapshot()
        table = _resolved(table, snapshot, routes)
        deferred, served = served_by_keda(table, snapshot, path=routes)
        for warning in [*missing_workloads(table, snapshot, path=routes), *served]:
            err_console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    except ClusterError as exc:
        _unchecked(table, exc)
    waker = GateWaker(gate=submitter, observe=reader.snapshot, clock=clock, on_request=activity.note,
                      look=getattr(reader, "snapshot_of", None))
    app = WakeProxy(routes=table, waker=waker, default_timeout=timeout, deferred=deferred).app()

    async def _post_forever(_app: web.Application) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(5)
                try:
                    await asyncio.to_thread(activity.flush)
                except OSError as exc:  # kept and sent with the next flush
                    err_console.print(f"warning: request times not sent: {exc}", highlight=False)
        _app["poster"] = asyncio.create_task(loop())
    app.on_startup.append(_post_forever)
    _run(app, host, port, admin_at, ready=getattr(reader, "cache_health", None),
         listening=f"wake proxy listening on http://{host}:{port} with {len(table.routes)} route(s); "
                   f"cluster {cluster}; wakes via {wake_via}")
