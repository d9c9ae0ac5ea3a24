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
so a restarted daemon can recover them at once. Keys come from
`opsagent.gate.keys`; this module only reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from opsagent.gate.keys import FINISHED, call_id, claim_key, result_key, result_of_claim, status_of
from opsagent.model import AuditEntry, ToolResult

__all__ = ["FINISHED", "RECOVERY_WINDOW", "Journal", "Ledger", "call_id", "claim_key", "finished_runs", "has_key", "interrupted_runs",
           "recorded_result", "result_key"]

RECOVERY_WINDOW = timedelta(days=7)  # how far back a restart looks for claims without a result


@runtime_checkable
class Ledger(Protocol):
    """What the ledger reads from the audit log (the audit store and the in-memory recorder both answer it)."""

    def has_key(self, key: str) -> bool: ...

    def find_by_key(self, key: str) -> Any: ...

    def finished_runs(self, *, since: datetime | None, until: datetime) -> list[str]: ...

    def run_entries(self, *, since: datetime) -> list[Any]:
        """The `run` entries recorded at or after `since`, oldest first."""


@runtime_checkable
class Journal(Ledger, Protocol):
    """The audit log as the agent uses it: the ledger's reads, plus recording (the gate's `Recorder`)."""

    def record(self, entry: AuditEntry) -> int: ...


def has_key(recorder: Ledger, key: str) -> bool:
    return bool(recorder.has_key(key))


def recorded_result(recorder: Ledger, key: str, *, tool: str) -> ToolResult | None:
    """The result already recorded under `key`, or None if the call never finished."""
    record = recorder.find_by_key(key)
    if record is None:
        return None
    return ToolResult(status=status_of(record.outcome), tool=tool, message=record.summary or "", data=dict(record.data or {}),
                      approval_id=record.approval_id, audit_id=record.id)


def finished_runs(recorder: Ledger, *, since: datetime | None, until: datetime) -> list[str]:
    """Run ids whose finish was recorded in [since, until] (all before `until` when since is None), oldest first."""
    return list(recorder.finished_runs(since=since, until=until))


def interrupted_runs(recorder: Ledger, *, since: datetime) -> list[str]:
    """Run ids with a claim recorded at or after `since` and no result under the claim's key, oldest first."""
    runs: list[str] = []
    for row in recorder.run_entries(since=since):
        result = result_of_claim(row.idempotency_key or "")
        if result is not None and row.run_id and row.run_id not in runs and not recorder.has_key(result):
            runs.append(row.run_id)
    return runs
