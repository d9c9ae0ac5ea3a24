"""An approval clicked in Slack resumes the agent run that waits for it.

A finding run (the daemon's agent) proposes a change the policy sends to a
person and pauses on its approval. The request is posted to the approvals
channel; an approver clicks Approve in a correctly signed HTTP request to the
running Slack app; the waiting run resumes and finishes, the approved call runs
exactly once, and the audit log shows the approval and the result.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from opsagent.agent import Agent, AgentConfig
from opsagent.chat.approval_feed import poll_once
from doubles.fakeslack import BOT_USER, FakeSlack
from doubles.chat_fixtures import write_example_policy
from opsagent.chat.render import APPROVE_ACTION
from opsagent.chat.secrets import SlackSecrets
from opsagent.chat.slack_app import SlackSettings, build_app, make_http_server
from opsagent.chat.users import UserMap
from opsagent.chat.wiring import build_runtime
from opsagent.model import Finding
from opsagent.evals import scripted

BOT_TOKEN = "xoxb-7345129876-5432109876-Rs8xY2v1kL3mN4oP5qR6sT7u"
SIGNING_SECRET = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
APPROVALS = "C0APPROVALS"
USERS = {"U04ALICE01": "alice", "U04CAROL01": "carol"}
FINDING = Finding(kind="drift", subject="inference/llm", summary="inference/llm runs 1 replica, 2 declared")


@pytest.fixture()
def world(tmp_path):
    write_example_policy(tmp_path / "pol")
    planner = scripted.scripted_planner(scripted.call("scale_workload", namespace="inference", name="llm", replicas=2),
                                        scripted.text("Scaled inference/llm to 2 after approval."))
    made = {}

    def agent_factory(*, gate, approvals, store, policy, cluster, clock, db, **_):
        made["agent"] = Agent(gate=gate, policy=policy, playbooks=None, observe=cluster.snapshot, detect_fn=lambda s: [],
                              planner=planner, checkpoint_path=db, recorder=store, clock=clock, config=AgentConfig(),
                              approvals=approvals, settle=lambda: cluster.advance(60))
        return made["agent"]

    rt = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "audit.db",
                       actor_resolver=UserMap(users=USERS).resolve, agent_factory=agent_factory)
    fake = FakeSlack()
    app = build_app(service=rt.service, secrets=SlackSecrets(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET),
                    settings=SlackSettings(approvals_channel=APPROVALS, base_url=fake.api_url, process_before_response=True))
    server = make_http_server(app, host="127.0.0.1", port=0)
    yield type("World", (), {"rt": rt, "agent": made["agent"], "fake": fake, "app": app,
                             "url": f"http://127.0.0.1:{server.server_port}/slack/events"})
    server.shutdown()
    fake.close()
    rt.close()


def click(world, user: str, approval_id: int, message_ts: str) -> httpx.Response:
    payload = {
        "type": "block_actions", "user": {"id": user, "username": USERS[user], "team_id": "T0123ABCDEF"},
        "api_app_id": "A06B7C8D9EF", "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": APPROVALS, "is_ephemeral": False},
        "trigger_id": "7345129876543.4567890123.0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "team": {"id": "T0123ABCDEF", "domain": "acme-ml"}, "channel": {"id": APPROVALS, "name": "gpu-approvals"},
        "message": {"user": BOT_USER, "type": "message", "ts": message_ts, "text": "Approval"},
        "state": {"values": {}}, "response_url": "http://127.0.0.1:9/unused",
        "actions": [{"action_id": APPROVE_ACTION, "block_id": f"approval-{approval_id}", "value": str(approval_id),
                     "type": "button", "action_ts": "1748856142.118734"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    return httpx.post(world.url, content=body, timeout=60, headers={
        "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": stamp, "x-slack-signature": signature})


def test_a_signed_approve_click_resumes_the_waiting_finding_run_and_the_call_runs_once(world):
    rt, agent = world.rt, world.agent
    first = agent.handle_finding(FINDING)
    assert first.status == "waiting_approval"
    [approval_id] = first.pending_approvals
    assert agent.waiting() == [(first.run_id, approval_id)]
    assert rt.approvals.get(approval_id).requested_by == "daemon"

    poll_once(approvals=rt.approvals, client=world.app.client, channel=APPROVALS)  # the feed posts it
    [posted] = [c for c in world.fake.calls if c.method == "chat.postMessage" and c.params["channel"] == APPROVALS]
    assert f"approval-{approval_id}" in json.dumps(posted.params["blocks"])

    resp = click(world, "U04ALICE01", approval_id, posted.ts)
    assert resp.status_code == 200

    assert agent.waiting() == []
    done = agent.state(first.run_id)
    assert done.status == "done", done
    assert [(a.tool, a.status) for a in done.actions] == [("scale_workload", "pending_approval"), ("scale_workload", "ok")]
    assert rt.cluster.snapshot().workload("inference/llm").replicas == 2
    assert rt.approvals.get(approval_id).state == "executed"

    records = rt.store.list()
    results = [r for r in records if r.kind == "result" and r.tool == "scale_workload" and r.outcome == "ok"]
    assert len(results) == 1 and results[0].run_id == first.run_id
    decided = [(r.actor, r.channel) for r in records if r.kind == "approval" and r.approval_id == approval_id
               and r.outcome == "approved"]
    assert decided == [("alice", "slack")]
    # running it is audited where it happened too: the claim and the executed row are on the slack channel
    ran = [(r.summary, r.channel) for r in records if r.kind == "approval" and r.approval_id == approval_id
           and r.outcome in ("info", "ok")]
    assert ran and all(channel == "slack" for _, channel in ran), ran
    updated = world.fake.calls_to("chat.update")
    assert updated and "approved by <@U04ALICE01>" in updated[-1]["text"]

    again = click(world, "U04ALICE01", approval_id, posted.ts)  # a double click changes nothing
    assert again.status_code == 200
    assert len([r for r in rt.store.list() if r.kind == "result" and r.tool == "scale_workload" and r.outcome == "ok"]) == 1
