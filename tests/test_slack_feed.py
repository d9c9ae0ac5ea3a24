"""Approval requests reach Slack whoever raised them, and their messages follow the queue.

Requests are raised through the real gate as the daemon (or as a person on the
command line), not through chat. The feed posts them to the approvals channel
of a fake Slack Web API on loopback, remembers the message in the SQLite file
(so a second pass or a restarted poster posts nothing), and rewrites the
message without buttons once the request is decided by any path. Button clicks
on such a message go through the approval queue's rules as before.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from opsagent.approvals import ApprovalQueue
from opsagent.chat.approval_feed import ApprovalFeed, poll_once, start_polling
from doubles.fakeslack import BOT_USER, FakeSlack
from doubles.chat_fixtures import write_example_policy
from opsagent.chat.render import APPROVE_ACTION, REJECT_ACTION
from opsagent.chat.secrets import SlackSecrets
from opsagent.chat.slack_app import SlackSettings, build_app
from opsagent.chat.users import UserMap
from opsagent.chat.wiring import build_runtime
from opsagent.clock import VirtualClock
from opsagent.model import ToolCall

BOT_TOKEN = "xoxb-7345129876-5432109876-Fe3dQ8vB1nM2kL4jH5gF6dS7"
SIGNING_SECRET = "5c1e0a9f7b3d2e8a6c4b1f0e9d8c7b6a"
CHANNEL, APPROVALS = "C05K8R2LQ7M", "C0APPROVALS"
USERS = {"U04ALICE01": "alice", "U04CAROL01": "carol", "U04DAVE001": "dave"}


@pytest.fixture()
def world(tmp_path):
    write_example_policy(tmp_path / "pol")
    fake = FakeSlack()
    runtime = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "audit.db",
                            actor_resolver=UserMap(users=USERS).resolve)
    client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
    yield type("World", (), {"fake": fake, "rt": runtime, "client": client, "db": tmp_path / "audit.db"})
    runtime.close()
    fake.close()


def raise_request(world, *, actor: str = "daemon", channel: str = "daemon", replicas: int = 2) -> int:
    """Ask the gate to scale inference/llm as `actor`: the example policy sends it to a lead."""
    call = ToolCall(tool="scale_workload", args={"namespace": "inference", "name": "llm", "replicas": replicas},
                    actor=actor, channel=channel, planner="offline")
    result = world.rt.gate.submit(call)
    assert result.status == "pending_approval", result
    return int(result.approval_id)


def feed(world, approvals: ApprovalQueue | None = None) -> ApprovalFeed:
    return ApprovalFeed(approvals=approvals or world.rt.approvals, client=world.client, channel=APPROVALS)


def posts_to_approvals(world) -> list:
    return [c for c in world.fake.calls if c.method == "chat.postMessage" and c.params["channel"] == APPROVALS]


def buttons(blocks: list) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def cli_queue(world, clock=None) -> ApprovalQueue:
    """A second queue on the same file, as `opsagent approvals` or the daemon opens it."""
    return ApprovalQueue(world.db, clock=clock or world.rt.clock, is_member=world.rt.policy.actor_matches)


def test_a_daemon_request_is_posted_once_with_buttons_and_not_again_after_a_restart(world):
    approval_id = raise_request(world)
    assert feed(world).run_once().posted == [approval_id]
    posted = posts_to_approvals(world)
    assert len(posted) == 1
    assert {(b["action_id"], b["value"]) for b in buttons(posted[0].params["blocks"])} == {
        (APPROVE_ACTION, str(approval_id)), (REJECT_ACTION, str(approval_id))}
    assert "asked by `daemon` via daemon" in world.fake.texts()[0] and "scale `inference/llm` to 2" in world.fake.texts()[0]

    assert feed(world).run_once().posted == []  # a second pass
    restarted = cli_queue(world)
    try:
        again = poll_once(approvals=restarted, client=world.client, channel=APPROVALS)  # a new process, same file
        assert (again.posted, again.updated) == ([], [])
        assert feed(world, restarted).message(approval_id).ts == posted[0].ts
    finally:
        restarted.close()
    assert len(posts_to_approvals(world)) == 1


def test_a_decision_made_elsewhere_rewrites_the_message_without_buttons(world):
    approval_id = raise_request(world)
    feed(world).run_once()
    ts = posts_to_approvals(world)[0].ts

    cli = cli_queue(world)
    try:
        cli.approve(approval_id, by="alice", comment="capacity checked")
        assert feed(world).run_once().updated == [approval_id]
        first = world.fake.calls_to("chat.update")[-1]
        assert (first["channel"], first["ts"]) == (APPROVALS, ts)
        assert buttons(first["blocks"]) == [] and "approved by `alice`: capacity checked" in first["text"]

        cli.execute(approval_id, run=lambda a: world.rt.gate.run_approved(a, approver="alice"))
        assert feed(world).run_once().updated == [approval_id]  # executed after approved: shown once more
        assert "done" in world.fake.calls_to("chat.update")[-1]["text"]
    finally:
        cli.close()
    assert world.rt.cluster.snapshot().workload("inference/llm").replicas == 2
    assert feed(world).run_once().updated == []
    assert len(world.fake.calls_to("chat.update")) == 2 and len(posts_to_approvals(world)) == 1


def test_an_expired_request_loses_its_buttons(world):
    approval_id = raise_request(world)
    feed(world).run_once()
    later = cli_queue(world, clock=VirtualClock(start=world.rt.clock.now() + timedelta(hours=2)))
    try:
        assert [a.id for a in later.expire_due()] == [approval_id]  # what the daemon does each cycle
    finally:
        later.close()
    feed(world).run_once()
    updated = world.fake.calls_to("chat.update")
    assert len(updated) == 1 and "expired" in updated[0]["text"] and buttons(updated[0]["blocks"]) == []


def test_a_failed_post_is_tried_again_on_the_next_pass(world):
    approval_id = raise_request(world)
    down = ApprovalFeed(approvals=world.rt.approvals, client=WebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/", retry_handlers=[]),
                        channel=APPROVALS)
    assert down.run_once().posted == [] and down.message(approval_id) is None
    assert feed(world).run_once().posted == [approval_id]


# --- buttons on a message the feed posted --------------------------------------------


def signed(body: str, ctype: str = "application/x-www-form-urlencoded") -> BoltRequest:
    stamp = str(int(time.time()))
    sig = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    return BoltRequest(body=body, headers={"content-type": [ctype], "x-slack-request-timestamp": [stamp],
                                           "x-slack-signature": [sig]})


def click(app, user: str, action_id: str, approval_id: int, message_ts: str):
    payload = {
        "type": "block_actions", "user": {"id": user, "username": USERS.get(user, "x"), "team_id": "T0123ABCDEF"},
        "api_app_id": "A06B7C8D9EF", "token": "gIkuvaNzQIHg97ATvDxqgjtO", "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": APPROVALS, "is_ephemeral": False},
        "team": {"id": "T0123ABCDEF", "domain": "acme-ml"}, "channel": {"id": APPROVALS, "name": "gpu-approvals"},
        "message": {"user": BOT_USER, "type": "message", "ts": message_ts, "text": "Approval"},
        "state": {"values": {}}, "response_url": "http://127.0.0.1:9/unused",
        "actions": [{"action_id": action_id, "block_id": f"approval-{approval_id}", "value": str(approval_id),
                     "type": "button", "action_ts": "1748856142.118734"}],
    }
    resp = app.dispatch(signed(urlencode({"payload": json.dumps(payload)})))
    assert resp.status == 200
    return resp


def slash(app, fake: FakeSlack, text: str, user: str):
    body = urlencode({"command": "/ops", "text": text, "user_id": user, "channel_id": CHANNEL, "team_id": "T0123ABCDEF",
                      "response_url": fake.response_url(), "trigger_id": "1.2.3"})
    assert app.dispatch(signed(body)).status == 200


@pytest.fixture()
def app(world):
    secrets = SlackSecrets(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    return build_app(service=world.rt.service, secrets=secrets,
                     settings=SlackSettings(approvals_channel=APPROVALS, base_url=world.fake.api_url, process_before_response=True))


def ephemeral_to(world, user: str) -> list[str]:
    return [e["text"] for e in world.fake.calls_to("chat.postEphemeral") if e["user"] == user]


def test_an_approver_clicks_a_daemon_request_and_the_call_runs_once(world, app):
    approval_id = raise_request(world)
    feed(world).run_once()
    ts = posts_to_approvals(world)[0].ts

    click(app, "U04DAVE001", APPROVE_ACTION, approval_id, ts)
    assert "not an approver" in ephemeral_to(world, "U04DAVE001")[-1]
    assert world.rt.approvals.get(approval_id).state == "pending" and world.fake.calls_to("chat.update") == []

    click(app, "U04ALICE01", APPROVE_ACTION, approval_id, ts)
    assert world.rt.approvals.get(approval_id).state == "executed"
    assert world.rt.cluster.snapshot().workload("inference/llm").replicas == 2
    updated = world.fake.calls_to("chat.update")
    assert len(updated) == 1 and updated[0]["ts"] == ts and "approved by <@U04ALICE01>" in updated[0]["text"]
    assert buttons(updated[0]["blocks"]) == []
    assert feed(world).run_once().updated == []  # the click already showed the outcome


def test_the_requester_still_cannot_approve_a_request_raised_on_the_command_line(world, app):
    approval_id = raise_request(world, actor="carol", channel="cli")  # as `opsagent ask --as carol`
    feed(world).run_once()
    ts = posts_to_approvals(world)[0].ts
    click(app, "U04CAROL01", APPROVE_ACTION, approval_id, ts)
    assert "cannot approve" in ephemeral_to(world, "U04CAROL01")[-1]
    assert world.rt.approvals.get(approval_id).state == "pending"
    assert world.rt.cluster.snapshot().workload("inference/llm").replicas == 1
    assert world.fake.calls_to("chat.update") == []


def test_a_request_made_in_slack_is_posted_once_and_the_feed_does_not_post_it_again(world, app):
    slash(app, world.fake, "scale inference/llm to 2", "U04CAROL01")
    assert len(posts_to_approvals(world)) == 1
    assert feed(world).run_once().posted == []
    assert len(posts_to_approvals(world)) == 1


def test_a_click_on_a_request_already_decided_elsewhere_updates_its_message(world, app):
    approval_id = raise_request(world)
    feed(world).run_once()
    ts = posts_to_approvals(world)[0].ts
    cli = cli_queue(world)
    try:
        cli.reject(approval_id, by="alice", reason="not this week")
    finally:
        cli.close()
    click(app, "U04ALICE01", APPROVE_ACTION, approval_id, ts)  # a stale button, before the next pass
    assert "already rejected" in ephemeral_to(world, "U04ALICE01")[-1]
    updated = world.fake.calls_to("chat.update")
    assert len(updated) == 1 and "rejected by `alice`: not this week" in updated[0]["text"]


def test_the_polling_thread_posts_and_stops_when_told(world):
    approval_id = raise_request(world)
    stop = threading.Event()
    thread = start_polling(feed(world), every_seconds=0.05, stop=stop)
    deadline = time.monotonic() + 20
    while not posts_to_approvals(world) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert [p.params["blocks"][1]["block_id"] for p in posts_to_approvals(world)] == [f"approval-{approval_id}"]
