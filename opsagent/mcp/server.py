"""The MCP server (SDK low-level `Server`) over stdio or streamable HTTP: the I/O edge of `opsagent mcp`.

Who calls: on stdio, one actor fixed when the server starts (the local
user's cluster identity, as every CLI command establishes it); on HTTP, the
actor of the request's bearer token, looked up for every request in the
token map. A request without a known token gets 401 before any MCP message is
read, and the refusal is in the audit log (bounded under a flood: see
`RefusalLog`). An authenticated request body over MAX_REQUEST_BYTES, sent
whole or chunked, gets 413 before the SDK buffers it. An MCP session belongs
to the actor who opened it: another token holder who sends its id gets 404
(they can neither use nor end it). Client-supplied names
(client info, arguments, headers other than Authorization) never choose the
actor.

Calls are serialised and run in a worker thread: the gate, the audit store
and the approval queue are synchronous and shared.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

import anyio
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS
from mcp_types import (CallToolRequestParams, CallToolResult, ListResourcesResult, ListResourceTemplatesResult,
                       ListToolsResult, ReadResourceRequestParams, ReadResourceResult, Resource, ResourceTemplate,
                       TextContent, TextResourceContents)

from opsagent import __version__
from opsagent.mcp.catalogue import mcp_tools
from opsagent.mcp.service import McpService
from opsagent.mcp.tokens import TokenMap
from opsagent.model.actor import Actor

FINDINGS_URI = "opsagent://findings"
PENDING_URI = "opsagent://approvals/pending"
LEASES_URI = "opsagent://leases"
RUN_AUDIT_PREFIX = "opsagent://runs/"
RUN_AUDIT_TEMPLATE = RUN_AUDIT_PREFIX + "{run_id}/audit"
HTTP_PATH = "/mcp"
SESSION_HEADER = b"mcp-session-id"
MAX_REQUEST_BYTES = 1024 * 1024   # one JSON-RPC message; tool arguments are bounded far below this by the gate

Identify = Callable[[Any], Actor | None]


class Unauthenticated(Exception):
    """A request reached a handler without an actor (never expected past the HTTP check)."""


def bearer(headers: Any) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    value = headers.get("authorization") if headers is not None else None
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def fixed(actor: Actor) -> Identify:
    return lambda ctx: actor


def by_token(tokens: TokenMap) -> Identify:
    def identify(ctx: Any) -> Actor | None:
        request = getattr(ctx, "request", None)
        return tokens.actor_for(bearer(getattr(request, "headers", None)))
    return identify


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def build_server(service: McpService, identify: Identify) -> Server[Any]:
    lock = threading.Lock()

    async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        def locked() -> Any:
            with lock:
                return fn(*args)
        return await anyio.to_thread.run_sync(locked)

    def who(ctx: Any) -> Actor:
        actor = identify(ctx)
        if actor is None:
            raise Unauthenticated("no known bearer token")
        return actor

    async def list_tools(ctx: Any, params: Any) -> ListToolsResult:
        who(ctx)
        return ListToolsResult(tools=mcp_tools())

    async def call_tool(ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        actor = who(ctx)
        answer = await in_thread(service.call, actor, params.name, params.arguments)
        failed = answer.get("status") in ("error", "invalid", "denied")
        return CallToolResult(content=[TextContent(text=_json(answer))], structured_content=answer, is_error=failed)

    async def list_resources(ctx: Any, params: Any) -> ListResourcesResult:
        who(ctx)
        return ListResourcesResult(resources=[
            Resource(uri=FINDINGS_URI, name="findings", mime_type="application/json",
                     description="What the detectors find in the cluster now, under the policy's intents."),
            Resource(uri=PENDING_URI, name="pending-approvals", mime_type="application/json",
                     description="Calls waiting for a person's approval."),
            Resource(uri=LEASES_URI, name="active-leases", mime_type="application/json",
                     description="Time-boxed wakes that keep a workload up now (start_lease), newest first."),
        ])

    async def list_templates(ctx: Any, params: Any) -> ListResourceTemplatesResult:
        who(ctx)
        return ListResourceTemplatesResult(resource_templates=[
            ResourceTemplate(uri_template=RUN_AUDIT_TEMPLATE, name="run-audit", mime_type="application/json",
                             description="The audit trail of one run (every MCP call answers with its run_id)."),
        ])

    async def read_resource(ctx: Any, params: ReadResourceRequestParams) -> ReadResourceResult:
        actor = who(ctx)
        uri = str(params.uri)
        if uri == FINDINGS_URI:
            try:
                body = await in_thread(service.findings, actor)
            except ValueError as exc:
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        elif uri == PENDING_URI:
            body = await in_thread(service.pending_approvals)
        elif uri == LEASES_URI:
            body = await in_thread(service.active_leases)
        elif uri.startswith(RUN_AUDIT_PREFIX) and uri.endswith("/audit"):
            run_id = uri[len(RUN_AUDIT_PREFIX):-len("/audit")]
            try:
                body = await in_thread(service.run_audit, actor, run_id)
            except ValueError as exc:
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        else:
            raise MCPError(code=INVALID_PARAMS,
                           message=f"unknown resource {uri[:200]!r}; see resources/list and resources/templates/list")
        return ReadResourceResult(contents=[TextResourceContents(uri=uri, mime_type="application/json", text=_json(body))])

    return Server("opsagent", version=__version__,
                  instructions="opsagent's cluster tools. Every call goes through opsagent's policy gate as you; "
                               "writes may come back as a pending approval or a confirmation id instead of running.",
                  on_list_tools=list_tools, on_call_tool=call_tool, on_list_resources=list_resources,
                  on_list_resource_templates=list_templates, on_read_resource=read_resource)


async def serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def http_app(server: Server[Any], service: McpService, tokens: TokenMap, *, host: str) -> Any:
    """The streamable HTTP ASGI app, behind a bearer-token check that answers 401 and audits the refusal."""
    inner = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    lock = threading.Lock()

    def refuse(reason: str) -> None:
        with lock:
            service.refuse_unauthenticated(reason)

    async def answer(send: Any, status: int, payload: dict[str, str], *extra: tuple[bytes, bytes]) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *extra]})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    sessions = SessionOwners()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
            # Exactly one Authorization header: with two, this check and the handler's lookup could read different ones.
            token = bearer({"authorization": given[0]}) if len(given) == 1 else None
            actor = tokens.actor_for(token)
            if actor is None:
                reason = ("more than one Authorization header" if len(given) > 1 else
                          "no bearer token" if token is None else "unknown bearer token")
                await anyio.to_thread.run_sync(refuse, f"MCP over HTTP: {reason} ({scope.get('method')} {scope.get('path')})")
                await answer(send, 401, {"error": "unauthorized", "message": f"{reason}: send Authorization: Bearer TOKEN"},
                             (b"www-authenticate", b'Bearer realm="opsagent"'))
                return
            session = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == SESSION_HEADER), None)
            if session is not None and not sessions.may_use(session, actor.name):
                await answer(send, 404, {"error": "session_not_found", "message": "no such session of yours; initialize anew"})
                return
            body = await _bounded_body(receive)
            if body is None:
                await answer(send, 413, {"error": "too_large", "message": f"a request body is at most {MAX_REQUEST_BYTES} bytes"},
                             (b"connection", b"close"))
                return
            receive = _replay(body, receive)
            if scope.get("method") == "DELETE" and session is not None:
                sessions.forget(session)
            send = sessions.noting(send, actor.name)
        await inner(scope, receive, send)

    return app


class SessionOwners:
    """Which actor opened each MCP session (the SDK's `mcp-session-id`), so no other token holder can use or end it.

    A session id the server never handed out here (or one forgotten to stay within `limit`) belongs to nobody
    and is refused; its client initializes a new session.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._owners: dict[str, str] = {}
        self._limit = limit

    def may_use(self, session: str, actor: str) -> bool:
        return self._owners.get(session) == actor

    def forget(self, session: str) -> None:
        self._owners.pop(session, None)

    def noting(self, send: Any, actor: str) -> Any:
        """`send`, recording `actor` as the owner of a session id the response hands out."""
        async def noted(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                for key, value in message.get("headers", []):
                    if key.lower() == SESSION_HEADER:
                        self._owners.setdefault(value.decode("latin-1"), actor)
                        while len(self._owners) > self._limit:
                            self._owners.pop(next(iter(self._owners)))
            await send(message)
        return noted


async def _bounded_body(receive: Any) -> bytes | None:
    """The whole request body (chunked or not), or None past MAX_REQUEST_BYTES (read no further then)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts)   # a disconnect: the inner app sees an empty or partial body, as it would
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Any) -> Any:
    """A `receive` that hands the buffered body over once, then waits on the real one (for a disconnect)."""
    sent = False

    async def again() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return again


__all__ = ["FINDINGS_URI", "LEASES_URI", "MAX_REQUEST_BYTES", "HTTP_PATH", "PENDING_URI", "RUN_AUDIT_TEMPLATE", "bearer", "build_server", "by_token",
           "fixed", "http_app", "serve_stdio"]
