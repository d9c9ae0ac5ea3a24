"""The Slack app in HTTP mode: a real Bolt App, signed requests, and a fake Slack Web API on loopback.

Requests are signed over the exact raw body with the signing secret, as Slack
does. Unsigned, wrongly signed, tampered and replayed requests get 401 and run
nothing. Messages run as the Slack user's mapped actor; approval buttons follow
the approval queue's rules; tokens never reach the logs or the audit database.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from doubles.fakeslack import BOT_USER, FakeSlack
from doubles.chat_fixtures import write_example_policy
from opsagent.chat.render import APPROVE_ACTION, REJECT_ACTION
from opsagent.chat.secrets import SlackSecrets
from opsagent.chat.slack_app import SlackSettings, build_app, make_http_server
from opsagent.chat.users import UserMap
from opsagent.chat.wiring import build_runtime

BOT_TOKEN = "xoxb-7345129876-5432109876-Zq8xY2v1kL3mN4oP5qR6sT7u"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL, APPROVALS = "C05K8R2LQ7M", "C0APPROVALS"
USERS = {"U04ALICE01": "alice", "U04CAROL01": "carol", "U04DAVE001": "dave"}


@pytest.fixture()
def world(tmp_path):
    write_example_policy(tmp_path / "pol")
    fake = FakeSlack()
    runtime = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "audit.db",
                            actor_resolver=UserMap(users=USERS).resolve)
    secrets = SlackSecrets(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    app = build_app(service=runtime.service, secrets=secrets,
                    settings=SlackSettings(approvals_channel=APPROVALS, base_url=fake.api_url, process_before_response=True))
    yield type("World", (), {"fake": fake, "rt": runtime, "app": app, "db": tmp_path / "audit.db"})
    runtime.close()
    fake.close()


def headers(body: str, *, ctype: str, secret: str = SIGNING_SECRET, ts: int | None = None) -> dict[str, list[str]]:
    stamp = str(ts if ts is not None else int(time.time()))
    sig = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {"content-type": [ctype], "x-slack-request-timestamp": [stamp], "x-slack-signature": [sig]}


def slash_body(fake: FakeSlack, text: str, user: str = "U04CAROL01") -> str:
    return urlencode({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": "T0123ABCDEF", "team_domain": "acme-ml",
        "channel_id": CHANNEL, "channel_name": "gpu-ops", "user_id": user, "user_name": USERS.get(user, "someone"),
        "command": "/ops", "text": text, "api_app_id": "A06B7C8D9EF", "is_enterprise_install": "false",
        "response_url": fake.response_url(), "trigger_id": _trigger(),
    })


def button_body(user: str, action_id: str, value: str, message_ts: str) -> str:
    payload = {
        "type": "block_actions", "user": {"id": user, "username": USERS.get(user, "x"), "team_id": "T0123ABCDEF"},
        "api_app_id": "A06B7C8D9EF", "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": APPROVALS, "is_ephemeral": False},
        "trigger_id": _trigger(),
        "team": {"id": "T0123ABCDEF", "domain": "acme-ml"}, "channel": {"id": APPROVALS, "name": "gpu-approvals"},
        "message": {"user": BOT_USER, "type": "message", "ts": message_ts, "text": "Approval"},
        "state": {"values": {}}, "response_url": "http://127.0.0.1:9/unused",
        "actions": [{"action_id": action_id, "block_id": "approval-1", "value": value, "type": "button",
                     "action_ts": "1748856142.118734"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def mention_body(text: str, user: str) -> str:
    return json.dumps({
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ", "team_id": "T0123ABCDEF", "api_app_id": "A06B7C8D9EF",
        "event": {"user": user, "type": "app_mention", "ts": "1748856123.456789", "text": text, "team": "T0123ABCDEF",
                  "channel": CHANNEL, "event_ts": "1748856123.456789"},
        "type": "event_callback", "event_id": f"Ev08A{next(_invocations):07d}", "event_time": 1748856123,
        "authorizations": [{"team_id": "T0123ABCDEF", "user_id": BOT_USER, "is_bot": True, "is_enterprise_install": False}],
    })


FORM = "application/x-www-form-urlencoded"
_invocations = itertools.count(1)  # Slack gives every command, click and event its own trigger_id / event_id


def _trigger() -> str:
    return f"7345123456789.4567890123.{next(_invocations):032x}"


def dispatch(app, body: str, *, ctype: str = FORM, **kw):
    return app.dispatch(BoltRequest(body=body, headers=headers(body, ctype=ctype, **kw)))


def test_signed_slash_command_runs_as_the_mapped_actor_and_replies(world):
    resp = dispatch(world.app, slash_body(world.fake, "show workloads in inference"))
    assert resp.status == 200
    posted = world.fake.calls_to("chat.postMessage")
    assert len(posted) == 1 and posted[0]["channel"] == CHANNEL
    assert "`inference/llm`" in world.fake.texts()[0] and "<@U04CAROL01>" in world.fake.texts()[0]
    reads = [r for r in world.rt.store.list() if r.tool == "list_workloads" and r.kind == "proposal"]
    assert [(r.actor, r.channel) for r in reads] == [("carol", "slack")]


@pytest.mark.parametrize("tamper", ["unsigned", "wrong-secret", "replayed", "tampered-body"])
def test_unsigned_wrong_replayed_and_tampered_requests_are_rejected(world, tamper):
    body = slash_body(world.fake, "wake chat/chat-ui")
    if tamper == "unsigned":
        h = {"content-type": [FORM]}
    elif tamper == "wrong-secret":
        h = headers(body, ctype=FORM, secret="not-the-secret-at-all")
    elif tamper == "replayed":
        h = headers(body, ctype=FORM, ts=int(time.time()) - 600)
    else:
        h = headers(body, ctype=FORM)
        body = body.replace("wake", "sleep")
    resp = world.app.dispatch(BoltRequest(body=body, headers=h))
    assert resp.status == 401
    assert world.fake.calls_to("chat.postMessage") == []
    assert [r for r in world.rt.store.list() if r.tool in ("wake_workload", "sleep_workload")] == []
    assert world.rt.cluster.snapshot().workload("chat/chat-ui").replicas == 0


def test_url_verification_is_answered_when_signed(world):
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY", "type": "url_verification"})
    resp = dispatch(world.app, body, ctype="application/json")
    assert resp.status == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY" in resp.body


def test_mention_replies_in_a_thread(world):
    resp = dispatch(world.app, mention_body(f"<@{BOT_USER}> why is llm pending in inference?", "U04ALICE01"), ctype="application/json")
    assert resp.status == 200
    posted = world.fake.calls_to("chat.postMessage")
    assert posted and posted[0]["thread_ts"] == "1748856123.456789"
    assert "inference/llm: 1/1 ready" in world.fake.texts()[0]


def test_unmapped_user_reads_but_a_write_is_refused_privately_and_audited(world):
    dispatch(world.app, slash_body(world.fake, "show gpus", user="U09STRANGER"))
    assert "GPU(s)" in world.fake.texts()[0]
    dispatch(world.app, slash_body(world.fake, "wake chat/chat-ui", user="U09STRANGER"))
    ephemeral = world.fake.calls_to("chat.postEphemeral")
    assert ephemeral and ephemeral[0]["user"] == "U09STRANGER" and "may only read" in ephemeral[0]["text"]
    assert world.rt.cluster.snapshot().workload("chat/chat-ui").replicas == 0
    denied = [r for r in world.rt.store.list() if r.actor == "slack:U09STRANGER" and r.outcome == "denied"]
    assert denied and denied[0].tool == "wake_workload" and denied[0].rule_name == "chat-read-only"


def _request_scale(world) -> tuple[int, str]:
    dispatch(world.app, slash_body(world.fake, "scale inference/llm to 2", user="U04CAROL01"))
    to_approvers = [p for p in world.fake.calls_to("chat.postMessage") if p["channel"] == APPROVALS]
    assert len(to_approvers) == 1
    buttons = [e for b in to_approvers[0]["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} == {APPROVE_ACTION, REJECT_ACTION}
    posted = [c for c in world.fake.calls if c.method == "chat.postMessage" and c.params["channel"] == APPROVALS]
    return int(buttons[0]["value"]), posted[0].ts


def test_button_refusals_then_an_approver_runs_the_call_once(world):
    approval_id, ts = _request_scale(world)
    assert world.rt.approvals.get(approval_id).state == "pending"
    for user, why in (("U04CAROL01", "cannot approve"), ("U04DAVE001", "not an approver"), ("U09STRANGER", "cannot approve or reject")):
        resp = dispatch(world.app, button_body(user, APPROVE_ACTION, str(approval_id), ts))
        assert resp.status == 200
        told = [e for e in world.fake.calls_to("chat.postEphemeral") if e["user"] == user]
        assert told and why in told[-1]["text"], told
    assert world.rt.approvals.get(approval_id).state == "pending"
    assert world.rt.cluster.snapshot().workload("inference/llm").replicas == 1
    refused_by = {r.actor for r in world.rt.store.list() if r.kind == "approval" and r.outcome == "denied"}
    assert refused_by >= {"carol", "dave", "slack:U09STRANGER"}

    dispatch(world.app, button_body("U04ALICE01", APPROVE_ACTION, str(approval_id), ts))
    assert world.rt.approvals.get(approval_id).state == "executed"
    assert world.rt.cluster.snapshot().workload("inference/llm").replicas == 2
    updated = world.fake.calls_to("chat.update")
    assert updated and updated[-1]["ts"] == ts and "approved by <@U04ALICE01>" in updated[-1]["text"]
    assert not any(b["type"] == "actions" for b in updated[-1]["blocks"])

    dispatch(world.app, button_body("U04ALICE01", APPROVE_ACTION, str(approval_id), ts))  # a double click
    runs = [r for r in world.rt.store.list() if r.kind == "result" and r.tool == "scale_workload" and r.outcome == "ok"]
    assert len(runs) == 1


def test_reject_button_by_an_approver(world):
    approval_id, ts = _request_scale(world)
    dispatch(world.app, button_body("U04ALICE01", REJECT_ACTION, str(approval_id), ts))
    assert world.rt.approvals.get(approval_id).state == "rejected"
    assert world.rt.cluster.snapshot().workload("inference/llm").replicas == 1


def test_no_token_in_logs_or_audit_database(world, caplog):
    caplog.set_level(logging.DEBUG)
    dispatch(world.app, slash_body(world.fake, f"show gpus {BOT_TOKEN}"))
    dispatch(world.app, slash_body(world.fake, "scale inference/llm to 2"))
    dispatch(world.app, slash_body(world.fake, f"approve 1 fine; {BOT_TOKEN} {SIGNING_SECRET}", user="U04ALICE01"))
    assert world.rt.approvals.get(1).state == "executed"
    logging.getLogger("slack_sdk.web.base_client").debug("headers: Authorization: Bearer %s", BOT_TOKEN)
    logging.getLogger("opsagent.test").warning("secret=%s token=%s", SIGNING_SECRET, BOT_TOKEN)
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "[redacted]" in logs
    world.rt.store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in Path(world.db).parent.glob("audit.db*"))
    for secret in (BOT_TOKEN, SIGNING_SECRET):
        assert secret not in logs
        assert secret.encode() not in stored
    assert b"[redacted]" in stored  # the message was stored, with the token masked


def test_http_adapter_on_loopback_verifies_and_answers(world):
    server = make_http_server(world.app, host="127.0.0.1", port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/slack/events"
        body = slash_body(world.fake, "show findings")
        ok = httpx.post(url, content=body, headers={k: v[0] for k, v in headers(body, ctype=FORM).items()}, timeout=30)
        bad = httpx.post(url, content=body, headers={"content-type": FORM}, timeout=30)
        assert (ok.status_code, bad.status_code) == (200, 401)
        assert len(world.fake.calls_to("chat.postMessage")) == 1
    finally:
        server.shutdown()


def test_a_typed_approval_also_retires_the_buttons(world):
    approval_id, ts = _request_scale(world)
    dispatch(world.app, slash_body(world.fake, f"approve {approval_id}", user="U04ALICE01"))
    assert world.rt.approvals.get(approval_id).state == "executed"
    updated = world.fake.calls_to("chat.update")
    assert updated and updated[-1]["ts"] == ts and updated[-1]["channel"] == APPROVALS
    assert not any(b["type"] == "actions" for b in updated[-1]["blocks"])
