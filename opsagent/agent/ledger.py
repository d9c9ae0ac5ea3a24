"""Idempotency for agent steps: a call already executed is never executed again.

Each call the agent submits gets a call id derived from the run step
(`s{step}c{index}`), so the gate's audit keys (`run:call:hash:kind`) are the
same after a restart. Before submitting, the agent asks the recorder for the
`result` entry under that key; when it exists, the recorded result is reused
instead of running the tool a second time. A `claim` entry is written just
before each submit: a claim without a result means the process died while the
call was in flight, and the call is not repeated (at most once, like the
approval queue's execution claim): the gate recovers it instead, recording
what the cluster shows. `interrupted_runs` lists the runs holding such a claim,
so a restarted daemon can recover them at once. This module only computes
keys and reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opsagent.model import ToolCall, ToolResult

RECOVERY_WINDOW = timedelta(days=7)  # how far back a restart looks for claims without a result

_STATUS = {"ok": "ok", "error": "error", "denied": "denied", "pending": "pending_approval", "invalid": "invalid"}


def call_id(step: int, index: int) -> str:
    return f"s{step}c{index}"


def result_key(run_id: str, call: ToolCall, *, nonce: str | None = None) -> str:
    """The key the gate stores a call's `result` entry under."""
    return f"{run_id}:{call.id or nonce}:{call.args_hash()[:12]}:result"


def claim_key(key: str) -> str:
    """The key of the `run` entry written just before a call is submitted."""
    return key.rsplit(":", 1)[0] + ":claim"


def has_key(recorder: Any, key: str) -> bool:
    check = getattr(recorder, "has_key", None)
    if callable(check):
        return bool(check(key))
    return any(e.idempotency_key == key for e in getattr(recorder, "entries", ()))


def recorded_result(recorder: Any, key: str, *, tool: str) -> ToolResult | None:
    """The result already recorded under `key`, or None if the call never finished."""
    find = getattr(recorder, "find_by_key", None)
    if callable(find):
        record = find(key)
        if record is None:
            return None
        outcome, summary, data, approval_id, audit_id = (record.outcome, record.summary, record.data,
                                                        record.approval_id, record.id)
    else:
        entries = getattr(recorder, "entries", None)
        if entries is None:
            return None
        found = [(i + 1, e) for i, e in enumerate(entries) if e.idempotency_key == key]
        if not found:
            return None
        audit_id, entry = found[0]
        outcome, summary, data, approval_id = entry.outcome, entry.summary, entry.data, entry.approval_id
    status = _STATUS.get(outcome or "", "error")
    return ToolResult(status=status, tool=tool, message=summary or "", data=dict(data or {}),  # type: ignore[arg-type]
                      approval_id=approval_id, audit_id=audit_id)


FINISHED = ":run:finished"   # the idempotency-key suffix of the `run` entry a run's finish node writes


def finished_runs(recorder: Any, *, since: datetime | None, until: datetime) -> list[str]:
    """Run ids whose finish was recorded in [since, until] (all before `until` when since is None), oldest first."""
    query = getattr(recorder, "finished_runs", None)
    if callable(query):
        return list(query(since=since, until=until))
    return [e.run_id for e in getattr(recorder, "entries", ())
            if e.kind == "run" and e.run_id and (e.idempotency_key or "").endswith(FINISHED)
            and (since is None or e.time >= since) and e.time <= until]


def interrupted_runs(recorder: Any, *, since: datetime) -> list[str]:
    """Run ids with a claim recorded at or after `since` and no result under the claim's key, oldest first."""
    listing = getattr(recorder, "list", None)
    if callable(listing):
        from opsagent.audit import AuditFilter

        rows = list(reversed(listing(AuditFilter(kind="run", since=since, limit=None))))
    else:
        rows = [e for e in getattr(recorder, "entries", ()) if e.kind == "run" and e.time >= since]
    runs: list[str] = []
    for row in rows:
        key = row.idempotency_key or ""
        if key.endswith(":claim") and row.run_id and row.run_id not in runs \
                and not has_key(recorder, key.removesuffix("claim") + "result"):
            runs.append(row.run_id)
    return runs
