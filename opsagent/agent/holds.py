"""Why a finding's next run waits: a rate limit that frees up later, or a call a person already refused.

Pure reads of finished runs' state (the checkpointed `results` rows); the
runner decides what to do with the answers and records them.

- A temporary no is not a final no: a run that ended on a rate-limit deny
  carries when the limit allows the call again (`retry_at`). The next run
  waits for that moment instead of counting the deny as a failed attempt.
- A temporary error (the API answered 503 or timed out) is a "not yet" too:
  runs that got nowhere only for that reason keep being retried, with the
  backoff doubling up to `MAX_RETRY_BACKOFF`, and the first time the playbook's
  retries run out a person is told once.
- A person's no is remembered: a call an approver rejected is not asked again
  unchanged for the same incident (runs since the finding was last resolved);
  the playbook moves on when the detector's stage changes (e.g. rollback
  after a rejected restart), or the finding waits for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from opsagent.model import canonical_json


MAX_RETRY_BACKOFF = timedelta(minutes=30)


def call_key(tool: str, args: dict[str, Any]) -> str:
    return tool + canonical_json(args or {})


def limit_wait(values: dict[str, Any]) -> tuple[datetime, dict[str, Any]] | None:
    """(when the limit frees up, the refused row) if this run ended on a rate-limit deny, else None."""
    rows = list(values.get("results") or [])
    if not rows or rows[-1].get("status") != "denied" or not rows[-1].get("retry_at"):
        return None
    try:
        return datetime.fromisoformat(str(rows[-1]["retry_at"])), rows[-1]
    except ValueError:
        return None


def retryable_failure(values: dict[str, Any]) -> bool:
    """This run ended on an error the cluster called temporary (503, timeout, conflict): a "not yet"."""
    rows = list(values.get("results") or [])
    return bool(rows) and rows[-1].get("status") == "error" and bool(rows[-1].get("retryable"))


def went_unanswered(values: dict[str, Any]) -> bool:
    """This run ended because its approval request expired with nobody deciding: a "not yet", not a no."""
    rows = list(values.get("results") or [])
    return bool(rows) and rows[-1].get("status") == "denied" and rows[-1].get("approval_id") is not None \
        and "was expired" in str(rows[-1].get("message") or "")


def rejected_calls(finished: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """call key -> the row of each call a person rejected, in the trailing runs since the finding was resolved."""
    out: dict[str, dict[str, Any]] = {}
    for _, values in reversed(finished):
        if values.get("resolved") is True:
            break
        for row in values.get("results") or []:
            if row.get("status") == "denied" and row.get("approval_id") is not None \
                    and "was rejected" in str(row.get("message") or ""):
                out.setdefault(call_key(str(row.get("tool")), dict(row.get("args") or {})), row)
    return out


__all__ = ["call_key", "limit_wait", "rejected_calls", "retryable_failure", "went_unanswered"]
