"""`opsagent mcp`: serve the tools over the Model Context Protocol (stdio or streamable HTTP).

Thin: resolve the cluster and policies as every command does, open the
runtime (gate, audit log, approval queue), establish who calls (the local
user's cluster identity on stdio; the bearer-token map on HTTP), and hand
them to `opsagent.mcp.server`. On stdio nothing but the protocol goes to
stdout: notes and errors go to stderr.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from opsagent.cli.common import DbOpt, PoliciesOpt, err_console, fail
from opsagent.cli.whoami import ActorOpt, AsGroupOpt, identify


class Transport(str, Enum):
    stdio = "stdio"
    http = "http"


def serve(
    transport: Transport = typer.Option(Transport.stdio, "--transport", "-t",
                                        help="stdio: one client that starts this process (acting as you); "
                                             "http: streamable HTTP, each request authenticated by a bearer token."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP: address to listen on."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="HTTP: port to listen on."),
    tokens: Optional[Path] = typer.Option(None, "--tokens", envvar="OPSAGENT_MCP_TOKENS", show_default=False,
                                          help="HTTP: the token map (sha256 of each token -> actor); "
                                               "default POLICIES/actors/mcp-tokens.yaml."),
    cluster: Optional[str] = typer.Option(None, "--cluster", envvar="OPSAGENT_CLUSTER",
                                          help="kube, kube:CONTEXT or sim:SCENARIO (default: your kube credentials)."),
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    actor: Optional[str] = ActorOpt,
    as_group: Optional[str] = AsGroupOpt,
) -> None:
    """Offer opsagent's tools to an MCP-capable assistant, every call through the policy gate.

    Each tool comes with its input schema and hints from its risk class
    (read-only, destructive, idempotent). Every call runs as the caller,
    goes through the gate and is audited on channel `mcp`. A write that needs
    a person does not block: it returns the pending approval id (approve with
    `opsagent approvals approve N`) or a confirmation id (answer with the
    confirm_call / refuse_call tools). Time-boxed wakes: start_lease,
    extend_lease, cancel_lease, list_leases (the rules of `opsagent wake`).
    Resources: opsagent://findings, opsagent://approvals/pending,
    opsagent://leases and opsagent://runs/RUN_ID/audit.

    Who calls: on stdio, you, as your kube credentials say (on the simulator,
    --as); on HTTP, the actor whose token hash is in the token map (see
    docs/mcp.md); a request without a known token gets 401 and is audited.

    Example: opsagent mcp --transport http --port 8765 --tokens policies/actors/mcp-tokens.yaml
    """
    from opsagent.cli.resolve import session
    from opsagent.mcp.service import McpService
    from opsagent.mcp.tokens import TokenFileError, TokenMap, default_path
    from opsagent.runtime import RuntimeError_, open_runtime

    spec, db = session(cluster, db)   # on the simulator a temporary database, never the real cluster's default
    token_map = None
    if transport is Transport.http:
        if actor or as_group:
            fail("--as/--as-group are for stdio; on HTTP each caller is the actor of their token", hint="drop --as")
        path = tokens or default_path(policies)
        try:
            token_map = TokenMap.load(path)
        except TokenFileError as exc:
            fail(str(exc), hint="write the file as docs/mcp.md shows (store sha256 hashes of tokens, never tokens)")
        if not len(token_map):
            fail(f"{path}: no tokens: every HTTP caller would be refused", hint="add an entry as docs/mcp.md shows")
    elif tokens is not None:
        fail("--tokens is for --transport http; on stdio the server acts as you", hint="drop --tokens")
    try:
        runtime = open_runtime(cluster=spec, policies=Path(policies), db=db, watch=True)
    except RuntimeError_ as exc:
        fail(str(exc), hint=exc.hint)
    service = McpService(runtime)
    try:
        _run(transport, service, token_map, host=host, port=port, spec=spec, actor=actor, as_group=as_group,
             close=runtime.audit.close)
    finally:
        service.refusals.flush()   # refusals counted but not yet written one by one
        runtime.audit.close()


def _run(transport: Transport, service: Any, token_map: Any, *, host: str, port: int, spec: str,
         actor: Optional[str], as_group: Optional[str], close: Callable[[], None]) -> None:
    import anyio

    from opsagent.mcp import server as mcp_server
    from opsagent.mcp.tokens import reserved_refusal

    if transport is Transport.stdio:
        who = identify(cluster_spec=spec, cluster=service.runtime.cluster, as_user=actor, as_group=as_group, on_error=close)
        problem = reserved_refusal(who.name)
        if problem:
            close()
            fail(f"--as (or OPSAGENT_ACTOR, or your cluster identity): {problem}", hint="act as yourself, e.g. --as alice")
        err_console.print(f"opsagent mcp: serving on stdio as {who.name} ({who.source})", highlight=False, markup=False)
        try:
            anyio.run(mcp_server.serve_stdio, mcp_server.build_server(service, mcp_server.fixed(who)))
        except KeyboardInterrupt:   # Ctrl-C stops a server as the daemon and the wake proxy stop: cleanly, exit 0
            pass
        return
    import uvicorn

    app = mcp_server.http_app(mcp_server.build_server(service, mcp_server.by_token(token_map)), service, token_map, host=host)
    err_console.print(f"opsagent mcp: serving on http://{host}:{port}{mcp_server.HTTP_PATH} ({len(token_map)} token(s))",
                      highlight=False, markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("mcp")(serve)
