"""Spend caps across runs: how much of its daily model budget an actor has used, and whether it may ask again.

The caps come from the policy (`spend_caps`: the daemon's finding runs
together, and each person chatting separately); the use is counted from the
audit log's model-call rows (one per call, with its tokens) over the 24
hours before now on the agent's clock, so every process that shares the
database sees the same count and a restart forgets nothing. The check runs
before each model call: the call that crosses a cap is recorded and counted,
the next one is not made (calls already in flight in other processes may
each cross it by one). Pure apart from one indexed query through the recorder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WINDOW = timedelta(hours=24)
DAEMON = "daemon"


@dataclass(frozen=True)
class Spend:
    """Use and cap of one scope (the daemon, or one chat actor) over the last 24 hours."""

    scope: str
    calls: int
    tokens: int
    cap_calls: int | None
    cap_tokens: int | None

    @property
    def remaining_calls(self) -> int | None:
        return None if self.cap_calls is None else max(0, self.cap_calls - self.calls)

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.cap_tokens is None else max(0, self.cap_tokens - self.tokens)

    def problem(self) -> str | None:
        """Why no further model call may be made now, or None."""
        who = "the daemon's" if self.scope == DAEMON else f"{self.scope}'s"
        if self.cap_calls is not None and self.calls >= self.cap_calls:
            return f"{who} daily model budget is used up: {self.calls} of {self.cap_calls} calls in the last 24 hours"
        if self.cap_tokens is not None and self.tokens >= self.cap_tokens:
            return f"{who} daily model budget is used up: {self.tokens} of {self.cap_tokens} tokens in the last 24 hours"
        return None


def cap_for(caps: Any, actor: str) -> Any | None:
    """The policy's cap that governs `actor`: `daemon` for the daemon, `per_actor` for anyone else."""
    if caps is None:
        return None
    return getattr(caps, "daemon", None) if actor == DAEMON else getattr(caps, "per_actor", None)


def spend_of(recorder: Any, caps: Any, *, actor: str, now: datetime) -> Spend | None:
    """`actor`'s use over the last 24 hours against its cap (caps None when none governs it).

    None when the recorder cannot count (no `model_spend`) and no cap applies.
    Under a cap, a recorder that cannot count is treated as a budget already
    used up: a cap the agent cannot check is not lifted.
    """
    cap = cap_for(caps, actor)
    count = getattr(recorder, "model_spend", None)
    if not callable(count):
        return None if cap is None else Spend(scope=actor, calls=0, tokens=0, cap_calls=0, cap_tokens=None)
    calls, tokens = count(since=now - WINDOW, actor=actor)
    return Spend(scope=actor, calls=calls, tokens=tokens, cap_calls=getattr(cap, "calls", None),
                 cap_tokens=getattr(cap, "tokens", None))
