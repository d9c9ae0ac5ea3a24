"""The LLM breaker: after the model server could not be reached, skip the model for a while.

A connection-level failure (connection refused, a host name that does not
resolve, a timeout while connecting) says nothing about the model's answers
and will very likely happen again on the next call, so asking three times in
every run only delays the work. The breaker opens on such a failure and stays
open for `AgentConfig.llm_cooldown_seconds` of the agent's clock; while it is
open, runs plan with the offline planner from their first round, and the graph
records that the model was skipped and why. Failures of the model's answers
(malformed calls, unknown tools, empty answers, a slow answer, an HTTP error
from a server that is up) do not open it: they keep the failures-in-a-row rule.

One breaker per `Agent`, so per process. It does no I/O and never talks to
the model: it only classifies exceptions and remembers when it opened.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx


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

    def trip(self, reason: str, *, now: datetime) -> None:
        """Open (or re-open) the breaker: the model was unreachable at `now`."""
        self.reason, self.opened_at = reason, now

    def until(self) -> datetime | None:
        if self.opened_at is None or self.cooldown_seconds <= 0:
            return None
        return self.opened_at + timedelta(seconds=self.cooldown_seconds)

    def open_reason(self, *, now: datetime) -> str | None:
        """Why the model is being skipped now, or None when it may be asked."""
        until = self.until()
        if until is None or now >= until:
            return None
        return (f"the model could not be reached at {self.opened_at.isoformat()} ({self.reason}); "  # type: ignore[union-attr]
                f"not asking it again until {until.isoformat()}")
