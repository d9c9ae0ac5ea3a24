"""Time-boxed wakes over MCP, driven by the SDK's own client (in memory, and over streamable HTTP).

The lease tools run the one lease code the CLI and chat run: the wake goes
through the gate as the caller on channel `mcp`, the lease is an audit
record, `max_wake` caps it (a refusal names the cap and the file line that
sets it), and every refusal is audited as the caller. Then what an attacker
would try: someone else's lease, durations that are zero, negative, huge or
not durations, look-alike workload names, a workload outside the policy's
scope, a caller without a token.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from opsagent.audit import AuditFilter
from opsagent.leases import read_leases
from opsagent.mcp.server import LEASES_URI, build_server, fixed
from opsagent.mcp.service import McpService
from opsagent.model.actor import Actor
from opsagent.runtime import open_runtime
from tests.test_mcp import CAROL_TOKEN, _args, _audit, _client, _env, http_server, setup  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
RENDER = {"namespace": "render", "name": "render-ui"}
LLM = {"namespace": "inference", "name": "llm"}


@pytest.fixture()
def runtime(tmp_path: Path):
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    rt = open_runtime(cluster="sim:demo", policies=policies, db=tmp_path / "ops.db")
    try:
        yield rt
    finally:
        rt.audit.close()


def _calls(service: McpService, steps: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    """Run (actor, tool, arguments) steps through SDK clients of one server per actor, in order."""
    servers = {who: build_server(service, fixed(Actor(name=who))) for who in {s[0] for s in steps}}

    async def main() -> list[Any]:
        out = []
        for who, tool, args in steps:
            async with Client(servers[who]) as client:
                out.append(await client.call_tool(tool, args))
        return out
    return anyio.run(main)


def _read(service: McpService, who: str, uri: str) -> Any:
    async def main() -> Any:
        async with Client(build_server(service, fixed(Actor(name=who)))) as client:
            return json.loads((await client.read_resource(uri)).contents[0].text)
    return anyio.run(main)


def _lease_rows(rt) -> list:
    return sorted(rt.audit.list(AuditFilter(kind="lease", limit=1000)), key=lambda r: r.id)


def test_start_extend_list_cancel_over_mcp_with_the_cli_rules(runtime) -> None:
    service = McpService(runtime)

    async def tools() -> dict[str, Any]:
        async with Client(build_server(service, fixed(Actor(name="erin")))) as client:
            return {t.name: t for t in (await client.list_tools()).tools}
    listed = anyio.run(tools)
    assert listed["start_lease"].annotations.read_only_hint is False        # wake_workload's risk: a write
    assert listed["cancel_lease"].annotations.read_only_hint is False
    assert listed["list_leases"].annotations.read_only_hint is True
    assert listed["start_lease"].input_schema["required"] == ["namespace", "name", "duration"]

    started, over, extended, mine = _calls(service, [
        ("erin", "start_lease", {**RENDER, "duration": "2h"}),
        ("erin", "extend_lease", {**RENDER, "duration": "5h"}),
        ("erin", "extend_lease", {**RENDER, "duration": "3h"}),
        ("erin", "list_leases", {}),
    ])
    start = started.structured_content
    assert start["status"] == "ok" and not started.is_error, start
    lease = start["data"]["lease"]
    assert (lease["workload"], lease["actor"], lease["state"]) == ("render/render-ui", "erin", "active")
    assert start["data"]["wake"]["status"] == "ok"
    refused = over.structured_content
    assert over.is_error and refused["status"] == "denied"
    assert "past max_wake 4h00m of intent render-ui-scales-to-zero, set at" in refused["message"]
    assert "gpu-fleet.yaml:27" in refused["message"]                    # where the cap is written
    assert extended.structured_content["status"] == "ok"
    assert [x["id"] for x in mine.structured_content["data"]["leases"]] == [lease["id"]]
    assert [x["id"] for x in _read(service, "erin", LEASES_URI)] == [lease["id"]]

    # One lease path: the CLI's fold sees what MCP did, and every row is on channel mcp as erin.
    [seen] = read_leases(runtime.audit).values()
    assert seen.until == service.runtime.leases().leases()[lease["id"]].until
    rows = _lease_rows(runtime)
    assert [(r.data["event"], r.actor, r.channel) for r in rows] == [("started", "erin", "mcp"), ("extended", "erin", "mcp")]
    assert rows[0].run_id == start["run_id"]
    wake = runtime.audit.list(AuditFilter(kind="result", tool="wake_workload", limit=10))
    assert [(r.actor, r.channel, r.run_id) for r in wake] == [("erin", "mcp", start["run_id"])]
    denial = runtime.audit.get(refused["audit_id"])
    assert (denial.actor, denial.channel, denial.rule_name, denial.outcome) == ("erin", "mcp", "lease", "denied")
    trail = _read(service, "erin", f"opsagent://runs/{start['run_id']}/audit")
    assert {row["kind"] for row in trail} >= {"proposal", "decision", "result", "lease"}

    [cancelled] = _calls(service, [("erin", "cancel_lease", RENDER)])
    assert cancelled.structured_content["data"]["lease"]["state"] == "cancelled"
    assert _read(service, "erin", LEASES_URI) == []
    assert runtime.audit.verify().ok


def test_nobody_ends_or_stretches_someone_elses_lease_without_the_policy(runtime) -> None:
    service = McpService(runtime)
    started, cancel, extend, start_llm, frank = _calls(service, [
        ("erin", "start_lease", {**RENDER, "duration": "2h"}),
        ("mallory", "cancel_lease", RENDER),            # no rule lets mallory sleep render-ui
        ("mallory", "extend_lease", {**RENDER, "duration": "3h"}),
        ("mallory", "start_lease", {**LLM, "duration": "1h"}),
        ("frank", "cancel_lease", RENDER),              # render-team: may sleep render-ui, so may end erin's lease
    ])
    assert started.structured_content["status"] == "ok"
    assert cancel.structured_content["status"] == "denied"
    assert "cancelling erin's lease needs the policy to let mallory call sleep_workload" in cancel.structured_content["message"]
    assert extend.structured_content["status"] == "denied"
    assert "call wake_workload" in extend.structured_content["message"]
    held = start_llm.structured_content
    assert held["status"] == "denied" and "holds this wake for an approval" in held["message"]
    assert runtime.approvals.list("pending") == []                 # nothing was filed for a wake a lease cannot wait on
    assert frank.structured_content["status"] == "ok"
    events = [(r.data["event"], r.actor) for r in _lease_rows(runtime)]
    assert events == [("started", "erin"), ("cancelled", "frank")]
    refusals = [r for r in runtime.audit.list(AuditFilter(kind="decision", actor="mallory", limit=20))
                if r.channel == "mcp"]
    assert len(refusals) == 3 and all(r.outcome == "denied" for r in refusals)


@pytest.mark.parametrize(("tool", "args", "status", "says"), [
    ("start_lease", {**RENDER, "duration": "0h"}, "denied", "longer than zero"),
    ("start_lease", {**RENDER, "duration": "-2h"}, "invalid", "duration"),
    ("start_lease", {**RENDER, "duration": "999999d"}, "invalid", "too long"),
    ("start_lease", {**RENDER, "duration": "4h1m"}, "denied", "past max_wake 4h00m"),
    ("start_lease", {**RENDER, "duration": 7200}, "invalid", "duration"),
    ("start_lease", {**RENDER, "duration": "2h; rm -rf /"}, "invalid", "duration"),
    ("start_lease", {"namespace": "render", "name": "render-u\u0456", "duration": "1h"}, "invalid", "name"),  # Cyrillic і
    ("start_lease", {"namespace": "Render", "name": "render-ui", "duration": "1h"}, "invalid", "namespace"),
    ("start_lease", {"namespace": "render", "name": "render-ui ", "duration": "1h"}, "invalid", "name"),
    ("start_lease", {**RENDER, "duration": "1h", "actor": "daemon"}, "invalid", "actor"),
    ("start_lease", {"namespace": "render", "name": "render-ux", "duration": "1h"}, "denied", "no such workload"),
    ("extend_lease", {**RENDER, "duration": "1h"}, "denied", "no active lease"),
    ("cancel_lease", {**RENDER}, "denied", "no active lease"),
])
def test_bad_durations_and_names_are_refused_and_audited(runtime, tool: str, args: dict, status: str, says: str) -> None:
    service = McpService(runtime)
    [answer] = _calls(service, [("erin", tool, args)])
    body = answer.structured_content
    assert answer.is_error and body["status"] == status and says in body["message"], body
    row = runtime.audit.get(body["audit_id"])
    assert (row.actor, row.channel, row.tool) == ("erin", "mcp", tool)
    assert _lease_rows(runtime) == []
    assert runtime.cluster.snapshot().workload("render/render-ui").replicas == 1   # nothing was woken or changed


def test_a_workload_outside_the_policy_scope_cannot_be_leased(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    fleet = policies / "gpu-fleet.yaml"
    fleet.write_text(fleet.read_text(encoding="utf-8").replace("namespaces: [render, inference, training, chat]",
                                                              "namespaces: [inference, training, chat]"), encoding="utf-8")
    default = policies / "default.yaml"
    default.write_text(default.read_text(encoding="utf-8").replace("exclude_namespaces: [kube-system,",
                                                                  "exclude_namespaces: [render, kube-system,"), encoding="utf-8")
    rt = open_runtime(cluster="sim:demo", policies=policies, db=tmp_path / "ops.db")
    try:
        service = McpService(rt)
        [answer] = _calls(service, [("erin", "start_lease", {**RENDER, "duration": "1h"})])
        body = answer.structured_content
        assert body["status"] == "denied" and "outside the scope of every policy file" in body["message"], body
        [decision] = rt.audit.list(AuditFilter(kind="decision", tool="wake_workload", limit=5))
        assert (decision.actor, decision.channel, decision.rule_name) == ("erin", "mcp", "out-of-scope")
        assert _lease_rows(rt) == []
    finally:
        rt.audit.close()


def test_http_lease_as_the_token_actor_and_over_the_cap_refused(http_server) -> None:  # noqa: F811 - the fixture
    url, paths = http_server

    async def main() -> list[dict[str, Any]]:
        async with _client(url, CAROL_TOKEN) as client:
            out = [(await client.call_tool("start_lease", {**LLM, "duration": "2h"})).structured_content,
                   (await client.call_tool("extend_lease", {**LLM, "duration": "9h"})).structured_content]
            out.append(json.loads((await client.read_resource(LEASES_URI)).contents[0].text))
            return out

    started, over, active = anyio.run(main)
    assert started["status"] == "ok" and started["data"]["lease"]["actor"] == "carol", started
    assert over["status"] == "denied"
    assert "past max_wake 8h00m of intent llm-coherent-x16, set at" in over["message"]
    assert [x["workload"] for x in active] == ["inference/llm"]

    async def stranger() -> None:
        async with _client(url, "not-a-token") as client:
            await client.call_tool("cancel_lease", LLM)

    with pytest.raises(Exception):  # noqa: B017 - a 401 surfaces as whatever the transport raises
        anyio.run(stranger)
    rows = [r for r in _audit(paths["db"]) if r.channel == "mcp"]
    assert [(r.kind, r.actor) for r in rows if r.kind == "lease"] == [("lease", "carol")]
    assert [r for r in rows if r.actor == "unauthenticated"]              # the refusal is audited
    assert not [r for r in rows if r.actor == "unauthenticated" and r.kind in ("proposal", "result", "lease")]


def test_stdio_lease_as_the_local_identity(setup) -> None:  # noqa: F811 - the fixture
    import sys

    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=_args(setup, "--as", "erin"), env=_env(), cwd=str(ROOT))

    async def main() -> list[Any]:
        async with Client(params) as client:
            return [(await client.call_tool("start_lease", {**RENDER, "duration": "90m"})).structured_content,
                    (await client.call_tool("extend_lease", {**RENDER, "duration": "4h1m"})).structured_content,
                    (await client.call_tool("list_leases", {})).structured_content]

    started, over, listed = anyio.run(main)
    assert started["status"] == "ok" and started["data"]["lease"]["actor"] == "erin", started
    assert over["status"] == "denied" and "past max_wake 4h00m of intent render-ui-scales-to-zero" in over["message"]
    assert [x["actor"] for x in listed["data"]["leases"]] == ["erin"]
    rows = [r for r in _audit(setup["db"]) if r.kind == "lease"]
    assert [(r.actor, r.channel, (r.data or {})["event"]) for r in rows] == [("erin", "mcp", "started")]
