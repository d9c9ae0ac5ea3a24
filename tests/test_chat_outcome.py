"""`ask_outcome`, the exit status of one chat message, by table: a row per reply shape and model state.

Model trouble fails a message only when the answer did not cover it; a refusal,
a failure or a message not understood fails it whatever the model did.
"""

from __future__ import annotations

import pytest

from opsagent.chat.outcome import ask_outcome
from opsagent.chat.service import ChatReply, DoneItem, PendingItem, Refusal

DOWN = "cannot reach Ollama: [Errno 111] Connection refused"


def reply(**kw) -> ChatReply:
    return ChatReply(text="", actor="alice", channel="cli", **kw)


DONE = DoneItem(tool="wake_workload", summary="wake chat/ui", status="ok")
PENDING = PendingItem(approval_id=1, tool="scale_workload", summary="scale ml/llm to 2")
REFUSED = Refusal(tool="delete_pod", summary="delete pod", rule="default.yaml:no", reason="no")

ROWS = [
    # reply, model problem, exit code, words in the problem line (None: no line)
    (reply(command="show gpus"), None, 0, None),
    (reply(command="agent"), None, 0, None),                            # the model answered in words
    (reply(done=[DONE]), None, 0, None),
    (reply(pending=[PENDING]), None, 0, None),
    (reply(understood=False, data={"reason": "the message is empty"}), None, 1, "the message is empty"),
    (reply(understood=False), None, 1, "not understood"),
    (reply(refused=[REFUSED]), None, 1, None),                          # the reply itself names the rule
    (reply(failed=[DONE]), None, 1, None),
    (reply(command="agent"), DOWN, 1, "http://ollama:11434"),           # nothing covered: the model was needed
    (reply(done=[DONE]), DOWN, 0, None),                                 # the offline answer covered it
    (reply(pending=[PENDING]), DOWN, 0, None),
    (reply(refused=[REFUSED]), DOWN, 1, None),
]


@pytest.mark.parametrize("given,problem,code,words", ROWS)
def test_exit_status_of_a_message(given: ChatReply, problem: str | None, code: int, words: str | None) -> None:
    outcome = ask_outcome(given, model_problem=problem, server="http://ollama:11434")
    assert outcome.exit_code == code
    if words is None:
        assert outcome.problem is None
    else:
        assert words in (outcome.problem or "") and "\n" not in (outcome.problem or "")
    assert outcome.model_failed == (problem is not None and code == 1 and not given.refused)
