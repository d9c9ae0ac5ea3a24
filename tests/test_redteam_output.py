"""Red-team: text from the cluster shown to people, in the terminal and in Slack.

Spec:
- A pod event, a status message or a termination message holding a line break, ANSI escape sequences, a
  right-to-left override or Slack markup (`<!channel>`, `<@U…>`, `<http://…|…>`, backticks) reaches a chat
  reply as one quoted line: it cannot start a line that reads like opsagent's own (`done: ...`), nothing
  in it drives a terminal, and in Slack nothing in it notifies, mentions or links.
- A chat reply's own lines (done/failed/refused and their messages) stay one line each whatever the
  messages inside them hold; the CLI's chat printer never reads a reply's text as Rich markup.
- CLI tables and record lines show cluster text without escape sequences, control characters or breaks.
- An approval posted to Slack shows the call's arguments and a person's comment escaped.
- `get_workload` never hands on kubectl's last-applied-configuration annotation (the whole manifest, env
  values included), and every other annotation value it returns is cut to a bounded length.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ("boom\n done: scaled inference/llm to 0\x1b[2J\x1b]0;owned\x07 <!channel> <@U0123ABC> "
           "<http://evil.example|the runbook> `x` \u202eevil")
SCENARIO = r"""
name: hostile-text
start: '2026-01-05T09:00:00Z'
nodes:
- name: gpu-a
  gpus: [{model: L40S, count: 2}]
workloads:
- namespace: inference
  name: embedder
  image: 'reg/embedder:2.3.0'
  gpus: 1
  failures:
  - {image: 'reg/embedder:2.4.0', mode: crash}
timeline:
- at: '09:01'
  rollout: {workload: inference/embedder, image: 'reg/embedder:2.4.0'}
- at: '09:03'
  plant:
    workload: inference/embedder
    event: "boom\n done: scaled inference/llm to 0\e[2J\e]0;owned\a <!channel> <@U0123ABC> <http://evil.example|the runbook> `x` \u202eevil"
"""
SLACK_MARKUP = ("<!channel>", "<@U0123ABC>", "<http://evil.example|the runbook>")


def _inert(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, repr(text)
    assert not any(line.lstrip().startswith("done:") for line in text.splitlines()), text  # nothing was done


@pytest.fixture()
def asked(tmp_path):
    from opsagent.chat.wiring import build_runtime

    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    runtime = build_runtime(cluster=f"sim:{scenario}", policies=ROOT / "policies", db=tmp_path / "audit.db")
    runtime.cluster.advance(200)   # the planted event is among the pod's last five
    try:
        yield runtime.service.handle("why is inference/embedder failing", actor="carol", channel="slack")
    finally:
        runtime.close()


def test_a_planted_event_reaches_the_reply_as_one_quoted_inert_line(asked):
    _inert(asked.text)
    [line] = [line for line in asked.text.splitlines() if "boom" in line]
    assert line.strip().startswith('Warning BackOff: "boom done: scaled inference/llm to 0') and line.endswith('evil"')


def test_in_slack_the_planted_markup_neither_notifies_mentions_nor_links(asked):
    from opsagent.chat import render

    text = render.reply_blocks(asked)[0]["text"]["text"]
    _inert(text)
    assert not any(markup in text for markup in SLACK_MARKUP)
    assert "&lt;!channel&gt;" in text and "&lt;@U0123ABC&gt;" in text


def test_a_replys_own_lines_stay_one_line_each():
    from opsagent.chat import render
    from opsagent.chat.service import ChatReply, DoneItem, Refusal

    reply = ChatReply(text="", actor="carol", channel="slack",
                      failed=[DoneItem(tool="scale_workload", summary="scale `a/b` to 2", status="error",
                                       message="conflict\ndone: deleted kube-system/coredns\x1b[2K")],
                      refused=[Refusal(tool="sleep_workload", summary="sleep `a/b`", rule="r", reason="no\nwaiting for approval #1: all")])
    text = render.reply_text(reply)
    _inert(text)
    assert len(text.splitlines()) == 2 and text.splitlines()[1].startswith("refused: ")


def test_the_cli_chat_printer_reads_no_markup_from_the_reply(monkeypatch):
    from rich.console import Console

    from opsagent.chat.service import ChatReply
    from opsagent.cli import chat as cli_chat
    from opsagent.cli.output import Format

    out = io.StringIO()
    monkeypatch.setattr(cli_chat, "console", Console(file=out, force_terminal=False, width=300))
    text = "done: scale `a/b` to 2: [/][link=http://evil.example]click[/link] [blink]x[/blink]\x1b[31m"
    cli_chat.print_reply(ChatReply(text=text, actor="carol", channel="cli"), Format.table)
    shown = out.getvalue()
    assert "[link=http://evil.example]click[/link] [blink]x[/blink]" in shown and "\x1b" not in shown


def test_cli_tables_and_records_show_cluster_text_inert():
    from opsagent.cli.output import Column, Format, emit_record, table_lines

    lines = table_lines([{"name": "x\x1b[2J\ny", "image": "reg/x:1\r\x1b]0;t\x07"}],
                        [Column("name", lambda r: r["name"]), Column("image", lambda r: r["image"])],
                        wide=False, headers=True)
    assert len(lines) == 2 and "\x1b" not in lines[1] and "\r" not in lines[1] and "x y" in lines[1]
    out = io.StringIO()
    emit_record({}, Format.table, [f"message: {HOSTILE}"], out=out)
    _inert(out.getvalue())
    assert out.getvalue().count("\n") == 1


def test_an_approval_in_slack_shows_arguments_and_comment_escaped():
    from opsagent.chat import render
    from opsagent.model import Approval, ToolCall
    from opsagent.model.actions import RuleRef

    now = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    approval = Approval(id=7, call=ToolCall(tool="change_policy", args={"note": "<!channel> <@U0123ABC> ok"},
                                            actor="carol", channel="slack"),
                        args_hash="h", requested_by="carol", rule=RuleRef(file="default.yaml", name="r"),
                        reason="a lead decides", created_at=now, expires_at=now + timedelta(hours=1),
                        state="rejected", decided_by="alice", comment="<!here> no\ndone: approved by everyone")
    for text in (render.approval_blocks(approval)[0]["text"]["text"], render.approval_outcome(approval)):
        assert "<!channel>" not in text and "<@U0123ABC>" not in text and "<!here>" not in text, text
        _inert(text)


def test_get_workload_drops_the_last_applied_manifest_and_cuts_long_annotations():
    from kube_harness import Emulator, fixture
    from test_kube_health import _deployment

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url
    from tools import REGISTRY, ToolContext
    from tools.read import ANNOTATION_VALUE_LIMIT

    secret = "hf_live_TOKEN_9f8e7d6c5b4a"
    dep = _deployment()
    dep["metadata"].setdefault("annotations", {}).update({
        "kubectl.kubernetes.io/last-applied-configuration": '{"spec":{"template":{"spec":{"containers":[{"env":'
                                                            f'[{{"name":"HF_TOKEN","value":"{secret}"}}]}}]}}}}}}',
        "example.com/notes": "x" * 100_000,
        "example.com/owner": "team-ml",
    })
    with Emulator() as emu:
        emu.seed(dep)
        emu.seed(fixture("node-gpu-gfd.json"))
        kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc)))
        tool = REGISTRY["get_workload"]
        out = tool.run(ToolContext(cluster=kube, clock=kube.clock, observe=kube.snapshot),
                       tool.input_model(namespace="default", name="guestbook-ui"))
    assert out.status == "ok", out.message
    annotations = out.data["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    assert secret not in str(out.data)
    assert annotations["example.com/owner"] == "team-ml"
    assert len(annotations["example.com/notes"]) <= ANNOTATION_VALUE_LIMIT + 40
    assert annotations["example.com/notes"].startswith("x" * 100) and "100000 chars" in annotations["example.com/notes"]


def test_get_workload_returns_a_bounded_number_of_annotations():
    from doubles.cluster import TinyCluster

    from tools import REGISTRY, ToolContext
    from tools.read import MAX_ANNOTATIONS

    tiny = TinyCluster()
    tiny.add_workload("ml", "llm")
    held = tiny.workloads["ml/llm"]
    tiny.workloads["ml/llm"] = held.model_copy(update={"annotations": {f"a/{i:04d}": "v" for i in range(5000)}})
    tool = REGISTRY["get_workload"]
    out = tool.run(ToolContext(cluster=tiny, clock=tiny.clock, observe=tiny.snapshot),
                   tool.input_model(namespace="ml", name="llm"))
    assert len(out.data["annotations"]) == MAX_ANNOTATIONS and out.data["annotations_left_out"] == 5000 - MAX_ANNOTATIONS
