"""Attacks on the authority promises that found a way through, each kept as a test of the fix.

Spec, each test naming the promise it defends:
- a write the model proposes in conversation carries the asker's cluster
  groups into the confirmation, so a deny rule on `cluster-group:NAME` still
  holds when the person confirms it (dropping the groups would skip that rule
  and widen what the person may do);
- a confirmations row edited to shed those groups (or its channel), or edited
  together with its chained `proposed` audit record, runs nothing: the
  confirmation is checked against the whole call and the record's own hash;
  and a proposal made when the person was in other groups is not reused;
- a name with a character that renders as nothing but is not a control or
  format character (the combining grapheme joiner, a variation selector, a
  Hangul filler, the blank Braille pattern) is refused, so `daemon` followed
  by one cannot act; nor can `daemon` or `wake-proxy` spelled with a few more
  look-alike letters and dashes;
- an unmapped (read-only) user who types `confirm N` for someone else's
  proposal is refused without being shown what it would change;
- `opsagent audit verify` checks the confirmations table against the chain
  too: a waiting row whose call was swapped, or an answered row set back to
  waiting, is exit 1 naming the confirmation;
- a proposal is shown as it is: a right-to-left override or an invisible
  character in what the model wrote cannot redraw the line the person
  confirms from.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from opsagent.agent import Agent
from opsagent.chat.wiring import build_runtime
from opsagent.model.actor import Actor, ActorNameError, normalize_actor
from opsagent.policy import load_policy
from opsagent.evals.scripted import call, scripted_planner, text
from tools import REGISTRY

GROUP_DENY_POLICY = """\
rules:
  - name: read-anything
    risk: read
    effect: allow
  - name: no-contractors
    tools: [sleep_workload]
    actors: ['cluster-group:contractors']
    effect: deny
    reason: contractors do not put workloads to sleep
  - name: people-sleep
    tools: [sleep_workload]
    actors: [carol]
    effect: allow
"""


def runtime_with(tmp_path: Path, planner, policy: str):
    (tmp_path / "pol").mkdir(exist_ok=True)
    (tmp_path / "pol" / "p.yaml").write_text(policy, encoding="utf-8")

    def factory(**kw):
        return Agent(gate=kw["gate"], policy=kw["policy"], playbooks=None, observe=kw["cluster"].snapshot,
                     detect_fn=lambda snap: [], planner=planner, checkpoint_path=kw["db"], recorder=kw["store"],
                     clock=kw["clock"], approvals=kw["approvals"])

    return build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "a.db", model="scripted",
                         agent_factory=factory)


def test_a_confirmed_model_proposal_keeps_the_askers_cluster_groups(tmp_path):
    """Promise 2/3: a write the model proposed, confirmed after a deny rule on the asker's cluster group was
    added, meets that rule: the held call still carries the person's groups."""
    planner = scripted_planner(call("sleep_workload", namespace="inference", name="llm"), text("sleep it?"))
    without_deny = GROUP_DENY_POLICY.replace("    actors: ['cluster-group:contractors']\n", "    actors: [nobody]\n")
    rt = runtime_with(tmp_path, planner, without_deny)
    try:
        rt.service.resolve = lambda name: Actor(name=name, groups=("contractors",), source="kube test")
        before = rt.cluster.snapshot().workload("inference/llm").replicas
        asked = rt.service.handle("is inference/llm busy?", actor="carol", channel="cli")
        assert [p.tool for p in asked.proposed] == ["sleep_workload"], asked.text
        number = asked.proposed[0].confirmation_id
        assert rt.service.confirmations.get(number).call.actor_groups == ("contractors",)
        (tmp_path / "pol" / "p.yaml").write_text(GROUP_DENY_POLICY, encoding="utf-8")  # the policy changes meanwhile
        rt.gate.policy = load_policy(tmp_path / "pol", tool_risks={n: t.risk for n, t in REGISTRY.items()})
        done = rt.service.handle(f"confirm {number}", actor="carol", channel="cli")
        assert done.done == [] and [r.rule.rsplit(":", 1)[-1] for r in done.refused] == ["no-contractors"], done.text
        assert rt.cluster.snapshot().workload("inference/llm").replicas == before > 0
    finally:
        rt.close()


@pytest.mark.parametrize("tamper", ["shed-groups", "other-channel-in-call", "row-and-record"])
def test_a_confirmation_edited_to_shed_the_askers_groups_runs_nothing(tmp_path, tamper):
    """Promise 2: what runs at `confirm` is the whole call that was held, as the hash chain recorded it."""
    planner = scripted_planner(call("sleep_workload", namespace="inference", name="llm"), text("sleep it?"))
    rt = runtime_with(tmp_path, planner, GROUP_DENY_POLICY.replace("    actors: ['cluster-group:contractors']\n",
                                                                   "    actors: [nobody]\n"))
    try:
        rt.service.resolve = lambda name: Actor(name=name, groups=("contractors",), source="kube test")
        before = rt.cluster.snapshot().workload("inference/llm").replicas
        number = rt.service.handle("is inference/llm busy?", actor="carol", channel="cli").proposed[0].confirmation_id
        held = rt.service.confirmations.get(number).call
        rt.service.handle("show workloads", actor="carol", channel="cli")  # the log moves on past the record
        update = {"actor_groups": ()} if tamper != "other-channel-in-call" else {"channel": "slack"}
        edited = held.model_copy(update=update)
        with sqlite3.connect(rt.store.path) as conn:  # someone with write access to the file
            conn.execute("UPDATE confirmations SET call = ? WHERE id = ?", (edited.model_dump_json(), number))
            if tamper == "row-and-record":  # the chained record too, with its hash recomputed
                from opsagent.approvals.ledger import call_sha256
                from opsagent.audit.chain import content_of, row_hash
                conn.row_factory = sqlite3.Row
                conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
                row = dict(conn.execute("SELECT * FROM audit WHERE idempotency_key = ?",
                                        (f"confirmation:{number}:proposed",)).fetchone())
                data = json.loads(row["data"])
                data["call_sha256"] = call_sha256(edited)
                row["data"] = json.dumps(data)
                conn.execute("UPDATE audit SET data = ?, hash = ? WHERE id = ?",
                             (row["data"], row_hash(row["prev_hash"], content_of(row)), row["id"]))
        (tmp_path / "pol" / "p.yaml").write_text(GROUP_DENY_POLICY, encoding="utf-8")
        rt.gate.policy = load_policy(tmp_path / "pol", tool_risks={n: t.risk for n, t in REGISTRY.items()})
        out = rt.service.handle(f"confirm {number}", actor="carol", channel="cli")
        assert out.done == [] and out.refused[0].rule == "confirmations:tampered", out.text
        assert rt.cluster.snapshot().workload("inference/llm").replicas == before > 0
    finally:
        rt.close()


@pytest.mark.parametrize("name", [
    "daemon\u034f", "dae\u034fmon", "daemon\ufe0f", "\ufe00daemon", "opsagent\u3164", "\u115fdaemon", "daemon\u17b4",
    "daemon\u180b", "daemon\u2800", "daemon\U000e0100", "carol\u034f",
])
def test_a_name_with_a_character_that_renders_as_nothing_is_refused(name):
    """Promise 3: invisible characters outside category C cannot make a second `daemon` (or `carol`)."""
    with pytest.raises(ActorNameError, match="invisible or control"):
        normalize_actor(name)


@pytest.mark.parametrize("name", ["ɗaemon", "đaemon", "wake⁃proxy", "wakeーproxy", "wake֊proxy", "wake᠆proxy", "opsaɡent"])
def test_more_look_alikes_of_machine_actors_are_refused(name):
    with pytest.raises(ActorNameError, match="machine actor"):
        normalize_actor(name)


@pytest.mark.parametrize("name,expected", [("한국어", "한국어"), ("Dvořák", "dvořák"), ("wake-proxy-owner", "wake-proxy-owner")])
def test_ordinary_names_in_other_scripts_still_pass(name, expected):
    assert normalize_actor(name) == expected


def test_a_waiting_proposal_is_not_reused_once_the_askers_groups_changed(tmp_path):
    """Promise 2/3: the same call asked again after the person joined a group is held anew, with the new groups."""
    from opsagent.audit import AuditStore
    from opsagent.chat.confirmations import ConfirmationStore
    from opsagent.model import ToolCall

    with AuditStore(tmp_path / "c.db") as store:
        confirmations = ConfirmationStore(store, clock=None)
        asked = dict(tool="sleep_workload", args={"namespace": "a", "name": "b"}, actor="carol")
        first = confirmations.propose(call=ToolCall(**asked), identity="carol", channel="cli", why="test")
        again = confirmations.propose(call=ToolCall(**asked), identity="carol", channel="cli", why="test")
        later = confirmations.propose(call=ToolCall(**asked, actor_groups=("contractors",)), identity="carol",
                                      channel="cli", why="test")
        assert again.id == first.id and later.id != first.id
        assert confirmations.get(later.id).call.actor_groups == ("contractors",)


def test_a_right_to_left_override_in_the_models_arguments_cannot_redraw_the_proposal(tmp_path):
    """Promise 2: the line that carries `confirm N` shows the call as it is."""
    planner = scripted_planner(call("cordon_node", node="gpu-b", reason="tidy \u202e1# mrifnoc :kcab ti ekaw \u200b"),
                               text("ok \u2066\u202edone\u2069"))
    rt = runtime_with(tmp_path, planner, GROUP_DENY_POLICY.replace("[sleep_workload]\n    actors: [carol]",
                                                                   "[sleep_workload, cordon_node]\n    actors: [carol]"))
    try:
        reply = rt.service.handle("tidy gpu-b please", actor="carol", channel="cli")
        assert [p.tool for p in reply.proposed] == ["cordon_node"], reply.text
        bidi = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200b"}
        assert not bidi & set(reply.text), repr(reply.text)
        assert "tidy 1# mrifnoc" in reply.text
    finally:
        rt.close()


@pytest.mark.parametrize("tamper", ["other-call", "answered-then-reset"])
def test_audit_verify_reports_a_confirmation_that_disagrees_with_the_chain(tmp_path, tamper):
    """Promise 4 (and 2): the confirmations table is checked against its chained records, like approvals."""
    from typer.testing import CliRunner

    from opsagent.cli import app
    from opsagent.model import ToolCall

    planner = scripted_planner(call("sleep_workload", namespace="inference", name="llm"), text("sleep it?"))
    rt = runtime_with(tmp_path, planner, GROUP_DENY_POLICY)
    try:
        number = rt.service.handle("is inference/llm busy?", actor="carol", channel="cli").proposed[0].confirmation_id
        if tamper == "answered-then-reset":
            rt.service.handle(f"refuse {number}", actor="carol", channel="cli")
    finally:
        rt.close()
    db = str(tmp_path / "a.db")
    clean = CliRunner().invoke(app, ["audit", "verify", "--db", db])
    assert clean.exit_code == 0, clean.output
    with sqlite3.connect(db) as conn:
        if tamper == "other-call":
            evil = ToolCall(tool="sleep_workload", args={"namespace": "inference", "name": "embedder"}, actor="carol")
            conn.execute("UPDATE confirmations SET call = ?, args_hash = ? WHERE id = ?",
                         (evil.model_dump_json(), evil.args_hash(), number))
        else:
            conn.execute("UPDATE confirmations SET state = 'proposed', decided_at = NULL WHERE id = ?", (number,))
    out = CliRunner().invoke(app, ["audit", "verify", "--db", db, "-o", "json"])
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert report["chain_ok"] and [c["confirmation_id"] for c in report["confirmations"]] == [number]


def test_an_unmapped_user_confirming_is_not_shown_someone_elses_proposal(tmp_path):
    """Promise 2: only the asker sees, and answers, their waiting write."""
    planner = scripted_planner(call("sleep_workload", namespace="inference", name="llm"), text("sleep it?"))
    rt = runtime_with(tmp_path, planner, GROUP_DENY_POLICY)
    try:
        number = rt.service.handle("is inference/llm busy?", actor="carol", channel="slack").proposed[0].confirmation_id
        rt.service.resolve = lambda name: Actor(name=name, read_only=True) if name == "u-stranger" else Actor(name=name)
        out = rt.service.handle(f"confirm {number}", actor="u-stranger", channel="slack")
        assert out.done == [] and out.refused[0].rule.endswith("chat-read-only")
        assert "inference/llm" not in out.text and "sleep_workload" not in out.text, out.text
        assert rt.service.confirmations.get(number).state == "proposed"
    finally:
        rt.close()
