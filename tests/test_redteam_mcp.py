"""Hostile callers against `opsagent mcp` and the daemon's internal API: each test is a way in that must stay shut.

Internal API (opsagent/daemon/internal.py, http.py): a body nested deeper than the JSON parser follows is a
400, not an exception; over HTTP the token is checked before the body is looked at, chunked bodies are
refused, and a body that trickles in is dropped within the request time; a wake or request time for a
workload the cluster does not have reaches neither the gate (no approval request per invented name) nor the
activity log.

MCP (opsagent/mcp/): the token file refuses machine actors in disguise, the name refusals are audited under,
look-alike twins, duplicate hashes, and a file (or the file behind a symlink, or its directory) anyone may
write; only the exact token authenticates. Garbled or out-of-range confirmation answers are audited and
invalid; unknown tools, bad arguments and huge tool names are answered and audited as the caller, the name
cut short. A run's audit trail is readable only by its starter; the findings resource is a gated read.
Refusals of strangers are bounded in the audit log but counted; bodies over 1 MiB, two Authorization
headers, and another actor's session id are refused over HTTP.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from opsagent.daemon.http import HealthServer, Status
from opsagent.daemon.internal import InternalApi
from opsagent.daemon.metrics import Metrics
from opsagent.model import ToolCall, ToolResult

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "internal-token-for-redteam-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Recording:
    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult:
        self.calls.append(call)
        return ToolResult(status="ok", tool=call.tool)


# --- the daemon's internal API ------------------------------------------------------------------------------

def test_internal_api_answers_400_to_json_nested_past_the_parser() -> None:
    gate = Recording()
    api = InternalApi(token=TOKEN, gate=gate, activity=None)
    code, reply = api.handle("POST", "/v1/wake", AUTH, b"[" * 60_000)   # well under MAX_BODY
    assert code == 400 and "nested" in reply["error"]
    code, _ = api.handle("POST", "/v1/activity", AUTH, b'{"requests": ' + b"[" * 60_000)
    assert code == 400 and gate.calls == []


@pytest.fixture()
def internal_server():
    gate = Recording()
    api = InternalApi(token=TOKEN, gate=gate, activity=None)
    server = HealthServer("127.0.0.1:0", status=Status(), metrics=Metrics(), internal=api, request_seconds=0.5).start()
    host, port = server.address.rsplit(":", 1)
    try:
        yield (host, int(port)), gate
    finally:
        server.stop()


def _exchange(address: tuple[str, int], raw: bytes) -> bytes:
    """Send `raw` and read until the server closes the connection (bounded by a generous socket timeout)."""
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(raw)
        got = b""
        while chunk := conn.recv(65536):
            got += chunk
    return got


def test_internal_http_refuses_without_a_token_before_looking_at_the_body(internal_server) -> None:
    address, gate = internal_server
    # A huge declared length without a token: 401 (not 413, which would answer before authenticating).
    reply = _exchange(address, b"POST /v1/wake HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
    assert reply.startswith(b"HTTP/1.0 401") and gate.calls == []
    # A token in another header, or twice the scheme, is no token.
    reply = _exchange(address, b"POST /v1/wake HTTP/1.1\r\nHost: x\r\nX-Authorization: Bearer " + TOKEN.encode() +
                      b"\r\nAuthorization: Bearer Bearer " + TOKEN.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.0 401") and gate.calls == []


def test_internal_http_refuses_chunked_bodies(internal_server) -> None:
    address, gate = internal_server
    chunk = json.dumps({"namespace": "chat", "name": "chat-ui"}).encode()
    raw = (b"POST /v1/wake HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
           b"\r\nTransfer-Encoding: chunked\r\n\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
    reply = _exchange(address, raw)
    assert reply.startswith(b"HTTP/1.0 411") and gate.calls == []


def test_internal_http_drops_a_body_that_never_arrives_whole(internal_server) -> None:
    address, gate = internal_server
    raw = (b"POST /v1/wake HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
           b"\r\nContent-Length: 100\r\n\r\n{\"namespace\"")   # then nothing more: the server must not wait forever
    reply = _exchange(address, raw)
    assert reply.startswith(b"HTTP/1.0 408") and gate.calls == []
    # The same body sent whole runs (the refusal above was about the trickle, not the request).
    whole = json.dumps({"namespace": "chat", "name": "chat-ui"}).encode()
    reply = _exchange(address, b"POST /v1/wake HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
                      f"\r\nContent-Length: {len(whole)}\r\n\r\n".encode() + whole)
    assert reply.startswith(b"HTTP/1.0 200") and [c.tool for c in gate.calls] == ["wake_workload"]


# --- MCP: the token file ------------------------------------------------------------------------------------

from opsagent.mcp.tokens import TokenFileError, TokenMap, token_hash  # noqa: E402


def _token_file(path: Path, *entries: tuple[str, str]) -> Path:
    path.write_text("tokens:\n" + "".join(f"  - actor: {actor}\n    sha256: {token_hash(token)}\n"
                                          for actor, token in entries), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("actor", ["ＤＡＥＭＯＮ", "dаemon", "wake_proxy", "Wake-Proxy", "ops\u200bagent", "0psagent"])
def test_token_file_refuses_machine_actors_in_disguise(tmp_path: Path, actor: str) -> None:
    with pytest.raises(TokenFileError, match=r"t.yaml: tokens.0.actor"):
        TokenMap.load(_token_file(tmp_path / "t.yaml", (actor, "a-token-0123456789")))


@pytest.mark.parametrize("actor", ["unauthenticated", "Unauthenticated", "unauthentіcated"])
def test_token_file_refuses_the_name_refusals_are_audited_under(tmp_path: Path, actor: str) -> None:
    with pytest.raises(TokenFileError, match=r"tokens.0.actor: .*refused requests"):
        TokenMap.load(_token_file(tmp_path / "t.yaml", (actor, "a-token-0123456789")))


def test_token_file_refuses_two_names_that_read_alike(tmp_path: Path) -> None:
    path = _token_file(tmp_path / "t.yaml", ("carol", "token-one-0123456789"), ("cаrol", "token-two-0123456789"))
    with pytest.raises(TokenFileError, match=r"tokens.1.actor: .*reads like 'carol'"):
        TokenMap.load(path)
    # One person with two tokens (a rotation) is fine, and so is a different person.
    tokens = TokenMap.load(_token_file(path, ("carol", "token-one-0123456789"), ("Carol", "token-two-0123456789"),
                                       ("dave", "token-three-0123456789")))
    assert [tokens.actor_for(t).name for t in ("token-one-0123456789", "token-two-0123456789")] == ["carol", "carol"]


def test_token_lookup_takes_only_the_exact_token(tmp_path: Path) -> None:
    token = "Carol-Token-0123456789"
    tokens = TokenMap.load(_token_file(tmp_path / "t.yaml", ("carol", token)))
    assert tokens.actor_for(token).name == "carol"
    for variant in (token.lower(), token.upper(), f"{token}\u200b", token_hash(token), token_hash(token).upper(),
                    f"sha256:{token_hash(token)}", token.replace("-", " "), token[:-1]):
        assert tokens.actor_for(variant) is None, variant
    dup = tmp_path / "dup.yaml"
    dup.write_text(f"tokens:\n  - actor: carol\n    sha256: {token_hash(token)}\n"
                   f"  - actor: dave\n    sha256: {token_hash(token)}\n", encoding="utf-8")
    with pytest.raises(TokenFileError, match=r"tokens.1: the same token hash"):
        TokenMap.load(dup)


def test_token_file_anyone_can_write_is_refused_even_through_a_symlink(tmp_path: Path) -> None:
    path = _token_file(tmp_path / "t.yaml", ("carol", "a-token-0123456789"))
    path.chmod(0o666)
    with pytest.raises(TokenFileError, match=r"t.yaml: every local user may write it"):
        TokenMap.load(path)
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    with pytest.raises(TokenFileError, match=r"link.yaml .*every local user may write it"):
        TokenMap.load(link)
    path.chmod(0o644)   # a ConfigMap mount: a symlink to a file only its owner writes
    assert TokenMap.load(link).actor_for("a-token-0123456789").name == "carol"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    moved = _token_file(shared / "t.yaml", ("carol", "a-token-0123456789"))
    with pytest.raises(TokenFileError, match=r"its directory .* lets every local user replace it"):
        TokenMap.load(moved)
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(TokenFileError, match=r"dangling.yaml: no such token file"):
        TokenMap.load(tmp_path / "dangling.yaml")


# --- MCP: calls, resources, refusals ------------------------------------------------------------------------

import shutil  # noqa: E402

import anyio  # noqa: E402
from mcp import Client  # noqa: E402

from opsagent.audit import AuditFilter  # noqa: E402
from opsagent.mcp.server import MAX_REQUEST_BYTES, build_server, fixed, http_app  # noqa: E402
from opsagent.mcp.service import McpService, RefusalLog  # noqa: E402
from opsagent.model.actor import Actor  # noqa: E402

CAROL = "carol-token-for-redteam-0123456789"


@pytest.fixture()
def runtime(tmp_path: Path):
    from opsagent.runtime import open_runtime

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    rt = open_runtime(cluster="sim:demo", policies=policies, db=tmp_path / "ops.db")
    try:
        yield rt
    finally:
        rt.audit.close()


def _mcp_rows(rt) -> list:
    return sorted((r for r in rt.audit.list(AuditFilter(limit=5000)) if r.channel == "mcp"), key=lambda r: r.id)


def test_a_run_audit_trail_is_only_for_the_actor_who_started_it(runtime) -> None:
    service = McpService(runtime)
    carol = build_server(service, fixed(Actor(name="carol")))
    dave = build_server(service, fixed(Actor(name="dave")))

    async def main() -> tuple[list, list[str]]:
        async with Client(carol) as as_carol, Client(dave) as as_dave:
            run_id = (await as_carol.call_tool("set_replica_bounds", {"namespace": "inference", "name": "llm",
                                                                      "min": 0, "max": 4})).structured_content["run_id"]
            own = json.loads((await as_carol.read_resource(f"opsagent://runs/{run_id}/audit")).contents[0].text)
            refused = []
            for uri in (f"opsagent://runs/{run_id}/audit", f"opsagent://runs/{run_id}/../{run_id}/audit",
                        "opsagent://runs/%/audit", "opsagent://runs//audit", "opsagent://runs/mcp-000000000000/audit"):
                try:
                    await as_dave.read_resource(uri)
                except Exception as exc:   # an MCP error answer
                    refused.append(str(exc))
                else:
                    refused.append("READ")
            return own, refused

    own, refused = anyio.run(main)
    assert own and {row["actor"] for row in own} == {"carol"}
    assert len(refused) == 5 and all("of yours" in text for text in refused), refused
    # The daemon's runs are not readable over MCP either (their ids are not MCP's).
    runtime.audit.record(__import__("opsagent.model", fromlist=["AuditEntry"]).AuditEntry(
        time=runtime.clock.now(), kind="proposal", actor="carol", channel="cli", run_id="daemon-run-1", tool="get_workload"))
    with pytest.raises(ValueError, match="of yours"):
        service.run_audit(Actor(name="carol"), "daemon-run-1")


def test_a_garbled_answer_to_a_confirmation_is_audited(runtime) -> None:
    service = McpService(runtime)
    carol = Actor(name="carol")
    for args in ({"confirmation_id": "1; drop"}, {"confirmation_id": True}, {}, {"confirmation_id": 1, "actor": "alice"}):
        answer = service.call(carol, "confirm_call", args)
        assert answer["status"] == "invalid" and answer["audit_id"]
    answer = service.call(carol, "refuse_call", {"confirmation_id": 10**30})
    rows = [r for r in _mcp_rows(runtime) if r.tool in ("confirm_call", "refuse_call")]
    assert [(r.actor, r.outcome) for r in rows][:4] == [("carol", "invalid")] * 4
    assert answer["status"] == "invalid"   # not an SQLite overflow


def test_unknown_tools_and_garbage_arguments_are_answered_and_audited_as_the_caller(runtime) -> None:
    service = McpService(runtime)
    carol = Actor(name="carol")
    answers = [service.call(carol, "rm_rf", {}), service.call(carol, "x" * 99, {"a": 1}),
               service.call(carol, "scale_workload", {"namespace": "inference", "name": "llm", "replicas": "many"}),
               service.call(carol, "scale_workload", {"namespace": "inference", "name": "llm", "replicas": 2,
                                                      "actor": "alice", "channel": "daemon"}),
               service.call(carol, "get_workload", {"namespace": "x" * 40_000, "name": "llm"})]
    assert [a["status"] for a in answers] == ["invalid"] * 5
    rows = _mcp_rows(runtime)
    assert {r.actor for r in rows} == {"carol"} and len([r for r in rows if r.kind == "result"]) == 5


def test_refusal_flood_is_bounded_but_counted(runtime) -> None:
    now = [0.0]
    service = McpService(runtime)
    service.refusals = RefusalLog(service._write_refusal, itemised=5, window_seconds=60, monotonic=lambda: now[0])
    for _ in range(1000):
        service.refuse_unauthenticated("MCP over HTTP: unknown bearer token (POST /mcp)")
    assert len(_mcp_rows(runtime)) == 5
    now[0] = 61.0                      # the next window: the count of the last one is written first
    service.refuse_unauthenticated("MCP over HTTP: no bearer token (POST /mcp)")
    rows = _mcp_rows(runtime)
    counted = [r for r in rows if r.rule_name == "mcp-unauthenticated-count"]
    assert len(rows) == 7 and [r.data for r in counted] == [{"refused": 995}]
    for _ in range(10):
        service.refuse_unauthenticated("again")
    service.refusals.flush()           # the server stops: nothing counted is lost
    counted = [r.data["refused"] for r in _mcp_rows(runtime) if r.rule_name == "mcp-unauthenticated-count"]
    assert counted == [995, 6] and all(r.actor == "unauthenticated" for r in _mcp_rows(runtime))


def _asgi(app, *, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes, int]:
    """Drive an ASGI app once; (status, body, how many body chunks it pulled)."""
    pulled = [0]
    sent: list[dict] = []

    async def receive() -> dict:
        i = pulled[0]
        pulled[0] += 1
        if i < len(chunks):
            return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers, "query_string": b"",
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 1), "client": ("127.0.0.1", 2)}
    anyio.run(app, scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), pulled[0]


def test_http_refuses_huge_bodies_whole_or_chunked_without_reading_them_all(runtime, tmp_path: Path) -> None:
    tokens = TokenMap.load(_token_file(tmp_path / "t.yaml", ("carol", CAROL)))
    service = McpService(runtime)
    app = http_app(build_server(service, fixed(Actor(name="carol"))), service, tokens, host="127.0.0.1")
    auth = [(b"authorization", f"Bearer {CAROL}".encode()), (b"content-type", b"application/json")]
    piece = b" " * (256 * 1024)
    status, body, pulled = _asgi(app, headers=auth, chunks=[piece] * 400)   # 100 MiB, chunked
    assert status == 413 and b"at most" in body and pulled <= MAX_REQUEST_BYTES // len(piece) + 1
    status, _, pulled = _asgi(app, headers=[(b"authorization", b"Bearer nope")], chunks=[piece] * 400)
    assert status == 401 and pulled == 0   # a stranger's body is never read


def test_the_findings_resource_is_a_read_through_the_gate_as_the_caller(tmp_path: Path) -> None:
    from opsagent.runtime import open_runtime

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "eve.yaml").write_text(
        "priority: 10\nscope:\n  namespaces: ['*']\nrules:\n  - name: eve-reads-nothing\n    tools: ['*']\n"
        "    risk: read\n    actors: [eve]\n    effect: deny\n    reason: eve is off the rota\n", encoding="utf-8")
    runtime = open_runtime(cluster="sim:demo", policies=policies, db=tmp_path / "ops.db")
    service = McpService(runtime)

    async def read(who: str) -> tuple[str, object]:
        async with Client(build_server(service, fixed(Actor(name=who)))) as client:
            tool = (await client.call_tool("list_findings", {})).structured_content["status"]
            try:
                body = json.loads((await client.read_resource("opsagent://findings")).contents[0].text)
            except Exception as exc:
                body = str(exc)
            return tool, body

    try:
        tool, body = anyio.run(read, "eve")
        assert tool == "denied" and isinstance(body, str) and body.endswith("eve.yaml:eve-reads-nothing: eve is off the rota")
        tool, body = anyio.run(read, "carol")
        assert tool == "ok" and body and {"kind", "subject"} <= set(body[0])
        reads = [(r.actor, r.tool, r.outcome) for r in _mcp_rows(runtime) if r.kind == "result"]
        assert reads == [("eve", "list_findings", "denied")] * 2 + [("carol", "list_findings", "ok")] * 2
    finally:
        runtime.audit.close()


def test_internal_api_files_no_approvals_for_workloads_the_cluster_does_not_have(tmp_path: Path) -> None:
    from opsagent.daemon import Daemon, DaemonOptions

    daemon = Daemon(DaemonOptions(policies=ROOT / "policies", playbooks=ROOT / "playbooks", db=tmp_path / "ops.db",
                                  interval=60, cycles=1, sim_speed=0, listen="127.0.0.1:0", internal_token=TOKEN))
    api = daemon._internal_api()
    daemon.status.leader = True   # as the loop sets it once it holds the lock
    try:
        for n in range(5):   # invented names: each would have been one more approval request for on-call
            code, reply = api.handle("POST", "/v1/wake", AUTH, json.dumps({"namespace": "made-up", "name": f"w{n}"}).encode())
            assert code == 404 and "no workload made-up/w" in reply["error"]
        code, reply = api.handle("POST", "/v1/wake", AUTH, b'{"namespace": "kube-system", "name": "coredns"}')
        assert code == 404
        assert daemon.runtime.approvals.list("pending") == []
        # A workload the cluster has still goes to the gate: outside every policy's scope it is denied there,
        # and one whose intent has no wake goes to a person, once however often it is asked for.
        code, reply = api.handle("POST", "/v1/wake", AUTH, b'{"namespace": "inference", "name": "embedder"}')
        again = api.handle("POST", "/v1/wake", AUTH, b'{"namespace": "inference", "name": "embedder"}')[1]
        assert code == 200 and reply["status"] == "pending_approval" and again["approval_id"] == reply["approval_id"]
        code, reply = api.handle("POST", "/v1/wake", AUTH, b'{"namespace": "chat", "name": "chat-ui"}')
        assert code == 200 and reply["status"] == "ok"
        assert len(daemon.runtime.approvals.list("pending")) == 1
        # Request times for invented workloads are not kept either (the activity log would grow with every name).
        times = {f"made-up/w{n}": {"last": "2026-01-05T12:00:00+00:00", "count": 1} for n in range(500)}
        times["chat/chat-ui"] = {"last": "2026-01-05T12:00:00+00:00", "count": 3}
        code, reply = api.handle("POST", "/v1/activity", AUTH, json.dumps({"requests": times}).encode())
        assert (code, reply) == (200, {"recorded": 1})
        from opsagent.wake.activity import ActivityLog, activity_path_for

        assert set(ActivityLog(activity_path_for(tmp_path / "ops.db"), clock=daemon.runtime.clock).last_requests()) \
            == {"chat/chat-ui"}
    finally:
        daemon.runtime.audit.close()


def test_http_refuses_two_authorization_headers_whichever_is_valid(runtime, tmp_path: Path) -> None:
    tokens = TokenMap.load(_token_file(tmp_path / "t.yaml", ("carol", CAROL), ("dave", "dave-token-0123456789")))
    service = McpService(runtime)
    app = http_app(build_server(service, fixed(Actor(name="carol"))), service, tokens, host="127.0.0.1")
    for first, second in ((b"Bearer junk", f"Bearer {CAROL}".encode()), (f"Bearer {CAROL}".encode(), b"Bearer junk"),
                          (f"Bearer {CAROL}".encode(), b"Bearer dave-token-0123456789")):
        status, body, pulled = _asgi(app, headers=[(b"authorization", first), (b"Authorization", second)], chunks=[b"{}"])
        assert status == 401 and b"more than one Authorization header" in body and pulled == 0
    rows = _mcp_rows(runtime)
    assert len(rows) == 3 and all(r.actor == "unauthenticated" and "more than one" in r.summary for r in rows)


@pytest.mark.parametrize("name", ["unauthenticated", "Unauthenticated", "unauthentіcated"])
def test_nobody_calls_as_the_name_refusals_are_audited_under(runtime, name: str) -> None:
    import subprocess
    import sys

    answer = McpService(runtime).call(Actor(name=name.lower()), "list_workloads", {})
    assert answer["status"] == "denied" and "refused requests are audited under" in answer["message"]
    assert [r.rule_name for r in _mcp_rows(runtime)] == ["mcp-not-a-person"]
    done = subprocess.run([sys.executable, "-m", "opsagent", "mcp", "--cluster", "sim:demo", "--as", name,
                           "--db", str(Path(runtime.audit.path).parent / "cli.db")],
                          cwd=str(ROOT), env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "refused requests are audited under" in done.stderr and not done.stdout


def test_http_an_mcp_session_belongs_to_the_actor_who_opened_it(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx2

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    _token_file(policies / "actors" / "mcp-tokens.yaml", ("carol", CAROL), ("dave", "dave-token-0123456789"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "opsagent", "mcp", "--cluster", "sim:demo", "--policies", str(policies),
                             "--db", str(tmp_path / "ops.db"), "--transport", "http", "--port", str(port)],
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OPSAGENT_CLUSTER": "", "OPSAGENT_ACTOR": ""},
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"

    def send(token: str, method: str, session: str | None = None, *, verb: str = "POST", id: int | None = 1):
        headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
        if session:
            headers.update({"mcp-session-id": session, "mcp-protocol-version": "2025-06-18"})
        if verb == "DELETE":
            return httpx2.delete(url, headers=headers, timeout=30)
        message = {"jsonrpc": "2.0", "method": method, "params": {}}
        if method == "initialize":
            message["params"] = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "carol", "version": "1"}}
        if id is not None:
            message["id"] = id
        return httpx2.post(url, json=message, headers=headers, timeout=30)

    try:
        for _ in range(300):  # bounded: up to ~30 s for the process to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        opened = send(CAROL, "initialize")
        session = opened.headers["mcp-session-id"]
        send(CAROL, "notifications/initialized", session, id=None)
        assert send("dave-token-0123456789", "tools/list", session).status_code == 404
        assert send("dave-token-0123456789", "", session, verb="DELETE").status_code == 404
        assert send("dave-token-0123456789", "tools/list", "not-a-session-anyone-opened").status_code == 404
        after = send(CAROL, "tools/list", session)
        assert after.status_code == 200 and "list_workloads" in after.text   # carol's session survived
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_huge_tool_name_is_refused_without_writing_it_whole_to_the_audit_log(runtime) -> None:
    from opsagent.mcp.service import MAX_TOOL_NAME

    answer = McpService(runtime).call(Actor(name="carol"), "x" * 900_000, {})
    assert answer["status"] == "invalid" and len(answer["tool"]) <= MAX_TOOL_NAME + 1
    rows = _mcp_rows(runtime)
    assert rows and all(len(r.tool or "") <= MAX_TOOL_NAME + 1 and len(r.summary or "") <= 1000 for r in rows)
    assert [(r.actor, r.outcome) for r in rows] == [("carol", "invalid")]
