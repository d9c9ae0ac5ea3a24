"""`opsagent mcp` driven by the MCP SDK's own client, over stdio (a subprocess) and streamable HTTP (loopback).

Each test checks what the client sees and what the audit log holds: the
tools with their hints, a read that runs, an architectural call that comes
back as a pending approval, refusals of callers without a known token, and
that nothing a client sends (arguments, a replayed hash) changes who it is.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from opsagent.audit import AuditFilter
from opsagent.mcp.tokens import TokenFileError, TokenMap, token_hash
from opsagent.runtime import open_audit

ROOT = Path(__file__).resolve().parents[1]
CAROL_TOKEN = "carol-secret-token-0123456789"
ARCHITECTURAL = ("set_replica_bounds", {"namespace": "inference", "name": "llm", "min": 0, "max": 4})
READ = ("list_workloads", {"namespace": "inference"})


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "actors" / "mcp-tokens.yaml").write_text(
        f"tokens:\n  - actor: carol\n    sha256: {token_hash(CAROL_TOKEN)}\n", encoding="utf-8")
    return {"policies": policies, "db": tmp_path / "ops.db"}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPSAGENT_CLUSTER": "", "OPSAGENT_ACTOR": ""}


def _args(setup: dict[str, Path], *extra: str) -> list[str]:
    return ["-m", "opsagent", "mcp", "--cluster", "sim:demo", "--policies", str(setup["policies"]),
            "--db", str(setup["db"]), *extra]


def _audit(db: Path, **filters: object) -> list:
    store = open_audit(db)
    try:
        return store.list(AuditFilter(limit=1000, **filters))
    finally:
        store.close()


async def _exercise(client: Client) -> dict[str, object]:
    """What every transport must show: tools and hints, a read, a pending approval, a forged actor, resources."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    read = await client.call_tool(*READ)
    arch = await client.call_tool(*ARCHITECTURAL)
    forged = await client.call_tool("get_workload", {"namespace": "inference", "name": "llm", "actor": "alice"})
    pending = await client.read_resource("opsagent://approvals/pending")
    trail = await client.read_resource(f"opsagent://runs/{arch.structured_content['run_id']}/audit")
    findings = await client.read_resource("opsagent://findings")
    found_by_tool = (await client.call_tool("list_findings", {})).structured_content["data"]["findings"]
    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    return {"tools": tools, "findings": json.loads(findings.contents[0].text), "found_by_tool": found_by_tool, "listed": listed, "read": read, "arch": arch, "forged": forged,
            "pending": json.loads(pending.contents[0].text), "trail": json.loads(trail.contents[0].text)}


def _check(seen: dict[str, object], db: Path) -> None:
    from tools import REGISTRY

    tools = seen["tools"]
    assert set(REGISTRY) <= set(tools)
    assert tools["list_workloads"].annotations.read_only_hint is True
    assert tools["list_workloads"].annotations.idempotent_hint is True
    assert tools["scale_workload"].annotations.read_only_hint is False
    assert tools["delete_workload"].annotations.destructive_hint is True
    assert tools["scale_workload"].input_schema["properties"]["replicas"]
    read = seen["read"].structured_content
    assert read["status"] == "ok" and not seen["read"].is_error
    assert "inference/llm" in [w["workload"] for w in read["data"]["workloads"]]
    arch = seen["arch"].structured_content
    assert arch["status"] == "pending_approval" and arch["approval_id"]
    assert f"opsagent approvals approve {arch['approval_id']}" in arch["how"]
    assert [a["id"] for a in seen["pending"]] == [arch["approval_id"]]
    assert seen["pending"][0]["requested_by"] == "carol"
    assert {row["kind"] for row in seen["trail"]} >= {"proposal", "decision", "result"}
    assert seen["listed"] == {"opsagent://findings", "opsagent://approvals/pending", "opsagent://leases"}
    assert seen["findings"] and [(f["kind"], f["subject"]) for f in seen["findings"]] == \
        [(f["kind"], f["subject"]) for f in seen["found_by_tool"]]
    forged = seen["forged"].structured_content
    assert forged["status"] == "invalid" and seen["forged"].is_error
    rows = [r for r in _audit(db) if r.channel == "mcp"]
    by_tool = {(r.tool, r.kind): r for r in rows}
    assert by_tool[("list_workloads", "result")].outcome == "ok"
    assert by_tool[(ARCHITECTURAL[0], "result")].outcome == "pending"
    assert by_tool[("get_workload", "result")].outcome == "invalid"
    assert {r.actor for r in rows if r.tool} == {"carol"}  # the forged 'actor' argument named nobody


def test_stdio_runs_as_the_local_identity_through_the_gate(setup: dict[str, Path]) -> None:
    params = StdioServerParameters(command=sys.executable, args=_args(setup, "--as", "carol"), env=_env(), cwd=str(ROOT))

    async def main() -> dict[str, object]:
        async with Client(params) as client:
            return await _exercise(client)

    _check(anyio.run(main), setup["db"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def http_server(setup: dict[str, Path]):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, *_args(setup, "--transport", "http", "--port", str(port))],
                            env=_env(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):  # bounded: up to ~30 s for the process to listen
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", setup
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=60)))


def test_http_runs_as_the_token_actor_through_the_gate(http_server) -> None:
    url, setup = http_server

    async def main() -> dict[str, object]:
        async with _client(url, CAROL_TOKEN) as client:
            return await _exercise(client)

    _check(anyio.run(main), setup["db"])


@pytest.mark.parametrize("token", [None, "wrong", token_hash(CAROL_TOKEN)], ids=["missing", "unknown", "replayed-hash"])
def test_http_refuses_a_caller_without_a_known_token_and_audits_it(http_server, token: str | None) -> None:
    url, setup = http_server
    answer = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                         headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30)
    assert answer.status_code == 401

    async def main() -> None:
        async with _client(url, token) as client:
            await client.call_tool(*READ)

    # the refusal surfaces as whatever the transport raises on a 401 (an exception group under anyio)
    with pytest.raises(Exception):  # noqa: B017
        anyio.run(main)
    rows = [r for r in _audit(setup["db"]) if r.channel == "mcp"]
    assert rows and all(r.actor == "unauthenticated" and r.outcome == "denied" for r in rows)
    assert not [r for r in rows if r.kind in ("proposal", "result")]  # nothing reached the gate


def test_token_map_keeps_hashes_and_refuses_machine_actors(tmp_path: Path) -> None:
    good = tmp_path / "t.yaml"
    good.write_text(f"tokens:\n  - actor: Carol\n    sha256: {token_hash('x')}\n", encoding="utf-8")
    tokens = TokenMap.load(good)
    assert tokens.actor_for("x").name == "carol"
    assert tokens.actor_for(token_hash("x")) is None and tokens.actor_for("") is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"tokens:\n  - actor: Daemon\n    sha256: {token_hash('y')}\n", encoding="utf-8")
    with pytest.raises(TokenFileError, match=r"bad.yaml: tokens.0.actor"):
        TokenMap.load(bad)
    bad.write_text("tokens:\n  - actor: carol\n    sha256: not-a-hash\n", encoding="utf-8")
    with pytest.raises(TokenFileError, match=r"tokens.0.sha256"):
        TokenMap.load(bad)


def test_a_write_to_confirm_returns_its_id_and_only_its_asker_runs_it(setup: dict[str, Path]) -> None:
    from opsagent.mcp.server import build_server, fixed
    from opsagent.mcp.service import McpService
    from opsagent.model import WorkloadRef
    from opsagent.model.actor import Actor
    from opsagent.runtime import open_runtime

    default = setup["policies"] / "default.yaml"
    text = default.read_text(encoding="utf-8")
    rule = "    actors: [group:platform-oncall]\n    effect: allow\n"
    assert rule in text
    default.write_text(text.replace(rule, rule + "    confirm: true\n", 1), encoding="utf-8")
    runtime = open_runtime(cluster="sim:demo", policies=setup["policies"], db=setup["db"])
    service = McpService(runtime)
    as_carol = build_server(service, fixed(Actor(name="carol")))
    as_dave = build_server(service, fixed(Actor(name="dave")))

    async def main() -> tuple[dict, dict, dict, dict]:
        async with Client(as_carol) as carol, Client(as_dave) as dave:
            held = (await carol.call_tool("scale_workload", {"namespace": "inference", "name": "llm", "replicas": 2})).structured_content
            number = {"confirmation_id": held["confirmation_id"]}
            stolen = (await dave.call_tool("confirm_call", number)).structured_content
            done = (await carol.call_tool("confirm_call", number)).structured_content
            again = (await carol.call_tool("confirm_call", number)).structured_content
            return held, stolen, done, again

    try:
        held, stolen, done, again = anyio.run(main)
        assert held["status"] == "confirmation_required" and "confirm_call" in held["how"]
        assert stolen["status"] == "denied" and stolen["code"] == "not_yours"
        assert done["status"] == "ok"
        assert again["status"] == "denied" and again["code"] == "already_decided"
        assert runtime.cluster.snapshot().workload(WorkloadRef(namespace="inference", name="llm")).replicas == 2
        results = [r for r in runtime.audit.list(AuditFilter(limit=100, tool="scale_workload", kind="result"))]
        assert [(r.actor, r.channel, r.outcome) for r in results] == [("carol", "mcp", "ok")]
    finally:
        runtime.audit.close()
