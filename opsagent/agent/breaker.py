"""The LLM breaker: after the model failed a run, skip it for a while.

Two things open it. A connection-level failure (connection refused, a host
name that does not resolve, a timeout while connecting) says nothing about
the model's answers and will very likely happen again, so one is enough. A
run that fell back because the model's turns were unusable (`max_failures`
in a row: garbled bodies, cut streams, unknown tools, refused calls, no
progress) opens it too: a model that answered badly three times will very
likely do it again on the next finding. While it is open, runs plan with the
offline planner from their first round, and the graph records that the model
was skipped and why.

The cool-down is `AgentConfig.llm_cooldown_seconds` of the agent's clock,
doubled each time the breaker opens again without a usable model turn in
between (at most 32 times), and back to one cool-down once the model gives a
usable turn. A single bad answer does not open it.

One breaker per `Agent`, so per process. It does no I/O and never talks to
the model: it only classifies exceptions and remembers when it opened.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

MAX_DOUBLINGS = 5


def is_unreachable(exc: BaseException) -> bool:
    """True when `exc` means the model server could not be reached at all (nothing was asked of the model)."""
    for cause in causes(exc):  # the openai client wraps its transport's ConnectError in its own error
        if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, socket.gaierror)):
            return True
        if type(cause).__name__ in ("ConnectError", "ConnectTimeout"):  # the same errors of httpx's fork (httpx2)
            return True
        # the ollama client turns httpx.ConnectError into the builtin ConnectionError; ConnectionRefusedError is one too
        if isinstance(cause, ConnectionError):
            return True
    return False


def causes(exc: BaseException, *, limit: int = 8) -> list[BaseException]:
    """`exc` and what it was raised from or while handling, outermost first (at most `limit`)."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(out) < limit and all(current is not e for e in out):
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


@dataclass
class Breaker:
    cooldown_seconds: float
    reason: str | None = None
    opened_at: datetime | None = None
    unreachable: bool = True
    trips: int = 0                   # times opened since the model last gave a usable turn

    def trip(self, reason: str, *, now: datetime, unreachable: bool = True) -> None:
        """Open (or re-open) the breaker: the model was unreachable, or its turns unusable, at `now`."""
        self.reason, self.opened_at, self.unreachable = reason, now, unreachable
        self.trips += 1

    def reset(self) -> None:
        """The model gave a usable turn: the next opening waits one cool-down again."""
        self.trips = 0

    def until(self) -> datetime | None:
        if self.opened_at is None or self.cooldown_seconds <= 0:
            return None
        factor = 2 ** min(max(self.trips - 1, 0), MAX_DOUBLINGS)
        return self.opened_at + timedelta(seconds=self.cooldown_seconds * factor)

    def open_reason(self, *, now: datetime) -> str | None:
        """Why the model is being skipped now, or None when it may be asked."""
        until = self.until()
        if until is None or now >= until:
            return None
        what = "could not be reached" if self.unreachable else "gave unusable answers"
        return (f"the model {what} at {self.opened_at.isoformat()} ({self.reason}); "  # type: ignore[union-attr]
                f"not asking it again until {until.isoformat()}")
