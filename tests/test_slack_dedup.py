"""A Slack request acts at most once.

Promise tried here: the same validly signed `/ops restart inference/embedder`
sent twice within the signature window restarts the rollout once; Slack's own
retry (`X-Slack-Retry-Num`, same body, a fresh timestamp and signature) is
acknowledged with an empty 200 and runs nothing; the memory of what was seen
lives in the audit database, so a replay after the app restarts is still
refused; two copies racing in on two threads act once; and two genuinely
different requests both act. Run against a real Bolt app with real
signatures, the simulator and the project's fake Slack Web API.
"""

from __future__ import annotations

import threading
import time

import pytest
from slack_bolt.request import BoltRequest

from doubles.fakeslack import FakeSlack
from opsagent.chat.secrets import SlackSecrets
from opsagent.chat.slack_app import SlackSettings, build_app
from opsagent.chat.slack_dedup import SeenRequests, request_keys
from opsagent.chat.users import UserMap
from opsagent.chat.wiring import build_runtime
from test_slack_app import BOT_TOKEN, FORM, SIGNING_SECRET, USERS, headers, mention_body, slash_body

POLICY = """
rules:
  - name: read
    risk: read
    effect: allow
  - name: carol-restarts
    tools: [restart_rollout]
    actors: [carol]
    effect: allow
"""


class World:
    def __init__(self, tmp_path) -> None:
        (tmp_path / "pol").mkdir(exist_ok=True)
        (tmp_path / "pol" / "p.yaml").write_text(POLICY)
        self.tmp_path = tmp_path
        self.fake = FakeSlack()
        self.open()

    def open(self) -> None:
        self.rt = build_runtime(cluster="sim:demo", policies=self.tmp_path / "pol", db=self.tmp_path / "audit.db",
                                actor_resolver=UserMap(users=USERS).resolve)
        self.app = build_app(service=self.rt.service, secrets=SlackSecrets(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET),
                             settings=SlackSettings(base_url=self.fake.api_url, process_before_response=True))

    def restart(self) -> None:
        """A new process on the same database (the simulator starts afresh; the audit log stays)."""
        self.rt.close()
        self.open()

    def restarts_done(self) -> int:
        return len([e for e in self.rt.store.list() if e.tool == "restart_rollout" and e.kind == "result" and e.outcome == "ok"])

    def close(self) -> None:
        self.rt.close()
        self.fake.close()


@pytest.fixture()
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def send(app, body: str, h: dict) -> tuple[int, str]:
    resp = app.dispatch(BoltRequest(body=body, headers=h))
    return resp.status, resp.body


def test_a_replayed_signed_command_restarts_once(world):
    body = slash_body(world.fake, "restart inference/embedder")
    signed = headers(body, ctype=FORM)
    assert send(world.app, body, signed)[0] == 200
    assert world.restarts_done() == 1
    status, text = send(world.app, body, signed)           # the very same bytes, timestamp and signature
    assert (status, text) == (200, "")
    assert world.restarts_done() == 1
    assert len(world.fake.calls_to("chat.postMessage")) == 1


def test_a_slack_retry_is_acknowledged_without_acting(world):
    body = slash_body(world.fake, "restart inference/embedder")
    assert send(world.app, body, headers(body, ctype=FORM))[0] == 200
    retry = headers(body, ctype=FORM, ts=int(time.time()) + 1)
    retry.update({"x-slack-retry-num": ["1"], "x-slack-retry-reason": ["http_timeout"]})
    assert send(world.app, body, retry) == (200, "")
    assert world.restarts_done() == 1


def test_an_event_retry_acts_once(world):
    body = mention_body("<@UBOT> show gpus", "U04ALICE01")
    assert send(world.app, body, headers(body, ctype="application/json"))[0] == 200
    posted = len(world.fake.calls_to("chat.postMessage"))
    retry = headers(body, ctype="application/json", ts=int(time.time()) + 2)
    retry["x-slack-retry-num"] = ["2"]
    assert send(world.app, body, retry) == (200, "")
    assert len(world.fake.calls_to("chat.postMessage")) == posted


def test_a_replay_after_a_restart_is_still_refused(world):
    body = slash_body(world.fake, "restart inference/embedder")
    signed = headers(body, ctype=FORM)
    assert send(world.app, body, signed)[0] == 200
    world.restart()
    assert send(world.app, body, signed) == (200, "")
    assert world.restarts_done() == 1


def test_two_copies_racing_act_once(world):
    body = slash_body(world.fake, "restart inference/embedder")
    signed = headers(body, ctype=FORM)
    results: list[tuple[int, str]] = []
    gate = threading.Barrier(2)

    def go() -> None:
        gate.wait()
        results.append(send(world.app, body, signed))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r[1] == "" for r in results) == [False, True]
    assert world.restarts_done() == 1


def test_different_requests_both_act(world):
    first = slash_body(world.fake, "restart inference/embedder")
    second = slash_body(world.fake, "restart inference/embedder")  # another invocation: its own trigger_id
    assert send(world.app, first, headers(first, ctype=FORM))[0] == 200
    assert send(world.app, second, headers(second, ctype=FORM))[1] != ""
    assert world.restarts_done() == 2


def test_keys_are_forgotten_only_after_the_keep_window(tmp_path):
    from opsagent.audit import AuditStore

    clock = [1_000_000.0]
    seen = SeenRequests(AuditStore(tmp_path / "a.db"), keep_seconds=3600, now=lambda: clock[0])
    keys = request_keys(raw_body="payload=x", body={"event_id": "Ev1"})
    assert seen.claim(keys) and not seen.claim(keys)
    assert not seen.claim(["event:Ev1"])                     # the same event in other bytes
    clock[0] += 3599
    assert not seen.claim(keys)
    clock[0] += 3600
    assert seen.claim(keys)



def test_socket_mode_payloads_are_told_apart_and_repeats_act_once(world):
    """Socket Mode requests have no raw body: the payload itself identifies them."""
    from urllib.parse import parse_qsl

    first = dict(parse_qsl(slash_body(world.fake, "restart inference/embedder")))
    second = {**first, "trigger_id": "7345123456790.4567890123.0f2c4e1ab3d5f7a9c1e3b5d7f9a1c3e5"}

    def socket(payload: dict) -> int:
        return world.app.dispatch(BoltRequest(body=payload, mode="socket_mode", headers={})).status

    assert socket(first) == 200 and world.restarts_done() == 1
    assert socket(dict(first)) == 200 and world.restarts_done() == 1     # redelivered: acknowledged only
    assert socket(second) == 200 and world.restarts_done() == 2          # another invocation acts
