"""How a one-shot chat message ended, as an exit status: did the person get what they asked for?

`opsagent ask` exits 0 only when the message was understood and answered:
not understood, refused, failed, or a free-form request that the model could
not serve (unreachable, or failing until the run fell back to the offline
planner, which cannot act on chat) all exit 1 with a line saying why. A model
failure does not count when the offline answer still covered the request (it
did something, filed an approval, or refused by a rule).

`ask_outcome` is pure. `model_problem` reads why a run fell back from the audit
log, where the agent recorded it. Nothing here changes the reply or decides policy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from opsagent.chat.service import ChatReply


class AskOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)
    exit_code: int
    problem: str | None = None   # one line for stderr when exit_code is not 0
    model_failed: bool = False   # the request needed the model and the model could not serve it


def model_problem(store: Any, run_id: str | None) -> str | None:
    """Why the agent run `run_id` gave up on its model (the audit row recorded when it fell back), or None."""
    if store is None or not run_id:
        return None
    for record in store.list(run_id=run_id, kind="run", outcome="error", limit=50):
        data = record.data or {}
        if data.get("to") == "offline":
            return str(data.get("reason") or record.summary or "the model failed")
    return None


def ask_outcome(reply: ChatReply, *, model_problem: str | None = None, server: str | None = None) -> AskOutcome:
    """The exit status of one message: 0 answered, 1 not understood, refused, failed or not served by the model."""
    if reply.refused or reply.failed:
        return AskOutcome(exit_code=1)   # the reply itself says what was refused or failed
    if not reply.understood:
        reason = reply.data.get("reason") or "not a request opsagent understands"
        return AskOutcome(exit_code=1, problem=f"not understood: {reason}")
    covered = bool(reply.done or reply.pending)
    if model_problem and not covered:
        where = f" at {server}" if server else ""
        return AskOutcome(exit_code=1, model_failed=True,
                          problem=f"the model server{where} could not answer ({model_problem}); "
                                  "the offline planner does not act on free-form requests")
    return AskOutcome(exit_code=0)
