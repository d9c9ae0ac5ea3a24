"""One normalisation for every actor name, at every door.

Promise tried here: a name that a person types (`--as`, `OPSAGENT_ACTOR`), maps
(the Slack user file) or decides with (the approval queue) is NFKC-normalised
and case-folded, so `Alice` and `ＡＬＩＣＥ` are `alice`; control, format and
zero-width characters are refused; and no spelling of a machine actor
(`daemon`, `wake-proxy`, `opsagent`): upper case, full width, a zero-width
space, accents, Cyrillic or Greek look-alike letters, small capitals, digits
for letters or another separator, gets through any door, to the audit log or
to an approval.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from opsagent.approvals import ApprovalQueue, NotAuthorized
from opsagent.audit import AuditStore
from opsagent.chat.users import UserMapError, load_user_map
from opsagent.cli import app
from opsagent.clock import VirtualClock
from opsagent.model import Decision, RuleRef, ToolCall, WorkloadRef
from opsagent.model.actor import ActorNameError, machine_actor_like, normalize_actor
from tools.base import Target
from tools import risk_table

MACHINE_SPELLINGS = [
    "DAEMON", "Daemon", "daemon\u200b", "\u200bdaemon", "dae\u200dmon", "ｄａｅｍｏｎ", "dаemon",  # Cyrillic а
    "dæmon".replace("æ", "ae"), "daémon", "ᴅaemon", "daem0n", "Wake_Proxy", "wake.proxy", "WAKE‐PROXY",
    "wаke-proxy", "OpsAgent", "𝐝𝐚𝐞𝐦𝐨𝐧", "daemon\u2060", "d\u00ADaemon",
]


@pytest.mark.parametrize("name", MACHINE_SPELLINGS)
def test_no_spelling_of_a_machine_actor_is_a_person(name):
    with pytest.raises(ActorNameError, match="machine actor|invisible or control"):
        normalize_actor(name)


@pytest.mark.parametrize("raw,expected", [
    ("alice", "alice"), ("Alice", "alice"), ("ＡＬＩＣＥ", "alice"), ("José", "josé"), ("Jose\u0301", "josé"),
    ("STRASSE", "strasse"), ("straße", "strasse"), ("oidc:Carol@Example.com", "oidc:carol@example.com"),
    ("daemon2", "daemon2"), ("wake-proxy-owner", "wake-proxy-owner"),
])
def test_names_normalise_to_one_form(raw, expected):
    assert normalize_actor(raw) == expected


@pytest.mark.parametrize("raw", ["", "al ice", "alice\n", "alice\x00", "ali\u202ece", "al\u200bice", "\u00a0alice", "a" * 300])
def test_control_format_space_and_overlong_names_are_refused(raw):
    with pytest.raises(ActorNameError):
        normalize_actor(raw)


def test_look_alike_detection_does_not_catch_ordinary_names():
    assert [n for n in ("dave", "damon", "daemons", "deamon", "proxy", "wake", "ops", "agent") if machine_actor_like(n)] == []


# --- the doors -----------------------------------------------------------------------------------------------------


runner = CliRunner()


@pytest.mark.parametrize("name", ["DAEMON", "daemon\u200b", "ｄａｅｍｏｎ", "dаemon", "Wake_Proxy"])
def test_cli_ask_refuses_machine_look_alikes_by_flag_and_environment(tmp_path, name):
    env = ["--db", str(tmp_path / "a.db"), "--policies", "policies", "--cluster", "sim:demo"]
    for out in (runner.invoke(app, ["ask", "scale inference/embedder to 4", "--as", name, *env]),
                runner.invoke(app, ["ask", "scale inference/embedder to 4", *env], env={"OPSAGENT_ACTOR": name})):
        assert out.exit_code == 2, out.output
        assert "machine actor" in out.output or "invisible" in out.output
        assert "Traceback" not in out.output
    assert not (tmp_path / "a.db").exists() or not [r for r in AuditStore(tmp_path / "a.db").list() if r.tool]


def test_cli_ask_acts_as_the_normalised_name(tmp_path):
    out = runner.invoke(app, ["ask", "show gpus", "--as", "ＣＡＲＯＬ", "-o", "json", "--db", str(tmp_path / "a.db"),
                              "--policies", "policies", "--cluster", "sim:demo"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["actor"] == "carol"


def test_slack_user_file_refuses_a_machine_look_alike_naming_its_line(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  U1: alice\n  U2: \"Dae\u200bmon\"\n")
    with pytest.raises(UserMapError, match=r"users.yaml:3: field 'users.U2'"):
        load_user_map(path)
    path.write_text("users:\n  U1: Alice\n  U2: ＢＯＢ\n")
    assert load_user_map(path).resolve("U2").name == "bob"
    assert load_user_map(path).resolve("U1").name == "alice"


def test_the_approval_queue_refuses_a_machine_look_alike(tmp_path):
    now = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    queue = ApprovalQueue(tmp_path / "q.db", clock=VirtualClock(now))
    call = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm"}, actor="carol")
    approval = queue.request(call=call, decision=Decision(effect="require_approval", rule=RuleRef(file="p", name="arch"),
                                                          reason="arch", approvers=("*",)))
    for name in ("DAEMON", "dаemon", "wake_proxy", "daemon\u200b"):
        with pytest.raises(NotAuthorized):
            queue.approve(approval.id, by=name)
    assert queue.get(approval.id).state == "pending"
    queue.close()


def test_policy_names_are_folded_like_the_people_they_name(tmp_path):
    from opsagent.policy import decide, load_policy

    (tmp_path / "p.yaml").write_text(
        "rules:\n  - name: alice-scales\n    tools: [scale_workload]\n    actors: [Alice]\n    effect: allow\n"
        "  - name: admins-restart\n    tools: [restart_rollout]\n    actors: ['cluster-group:Platform:Admins']\n    effect: allow\n")
    policy = load_policy(tmp_path, tool_risks=risk_table())
    now = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    target = Target(namespace="a", workload=WorkloadRef(namespace="a", name="b"))

    def effect(call: ToolCall) -> str:
        return decide(policy, call=call, risk="write", target=target, snapshot=None, now=now).effect

    assert effect(ToolCall(tool="scale_workload", args={"namespace": "a", "name": "b", "replicas": 1},
                           actor=normalize_actor("ALICE"))) == "allow"
    restart = {"namespace": "a", "name": "b"}
    assert effect(ToolCall(tool="restart_rollout", args=restart, actor="bob", actor_groups=("platform:admins",))) == "allow"
    # a person *named* like the cluster group is not in it, nor is a member of a same-named policy group
    assert effect(ToolCall(tool="restart_rollout", args=restart, actor="platform:admins")) == "deny"
    assert effect(ToolCall(tool="restart_rollout", args=restart, actor="bob", actor_groups=("platform-admins",))) == "deny"


def test_a_deny_on_a_cluster_group_applies_to_calls_the_model_proposes(tmp_path):
    """The person's cluster groups travel with a chat run into every call the model proposes, so a deny rule
    naming `cluster-group:contractors` holds there too (dropping the groups would skip it and widen)."""
    from dataclasses import replace

    from opsagent.gate import Gate
    from opsagent.policy import load_policy
    from opsagent.evals import scripted
    from doubles.agent_world import tiny_world

    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "p.yaml").write_text(
        "rules:\n  - name: read\n    risk: read\n    effect: allow\n"
        "  - name: no-contractors\n    tools: [scale_workload]\n    actors: ['cluster-group:contractors']\n    effect: deny\n"
        "  - name: anyone-scales\n    tools: [scale_workload]\n    effect: allow\n")
    base = tiny_world(tmp_path)
    policy = load_policy(tmp_path / "pol", tool_risks=risk_table())
    gate = Gate(policy=policy, cluster=base.cluster, clock=base.clock, recorder=base.store, approvals=base.queue)
    world = replace(base, gate=gate, policy=policy)
    try:
        # a chat run only proposes writes (the person confirms them); the deny on the group refuses it outright
        for groups, asked, status in ((("contractors",), 3, "denied"), ((), 2, "proposed")):
            planner = scripted.scripted_planner(scripted.call("scale_workload", namespace="ml", name="chat", replicas=asked),
                                                scripted.text("done"))
            report = world.agent(planner).handle_message("scale ml/chat", actor="eve", channel="cli", actor_groups=groups)
            [action] = [a for a in report.actions if a.tool == "scale_workload"]
            assert action.status == status and ("no-contractors" in action.message) == bool(groups), action.message
            assert world.tiny.workloads["ml/chat"].replicas == 1
    finally:
        world.close()


@pytest.mark.parametrize("spelling", ["CAROL", "ｃａｒｏｌ", "cаrol", "Carol"])
def test_the_requester_cannot_approve_their_own_call_under_another_spelling(tmp_path, spelling):
    from opsagent.approvals import SelfApproval

    now = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    queue = ApprovalQueue(tmp_path / "q.db", clock=VirtualClock(now))
    call = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm"}, actor="carol")
    approval = queue.request(call=call, decision=Decision(effect="require_approval", rule=RuleRef(file="p", name="arch"),
                                                          reason="arch", approvers=("*",)))
    with pytest.raises(SelfApproval):
        queue.approve(approval.id, by=spelling)
    assert queue.get(approval.id).state == "pending"
    queue.close()


def test_the_queue_records_the_decider_in_the_one_normal_form(tmp_path):
    now = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    queue = ApprovalQueue(tmp_path / "q.db", clock=VirtualClock(now), is_member=lambda actor, name: actor == name)
    call = ToolCall(tool="set_resources", args={"namespace": "ml", "name": "llm"}, actor="carol")
    approval = queue.request(call=call, decision=Decision(effect="require_approval", rule=RuleRef(file="p", name="arch"),
                                                          reason="arch", approvers=("alice",)))
    assert queue.approve(approval.id, by="ＡＬＩＣＥ").decided_by == "alice"
    queue.close()
