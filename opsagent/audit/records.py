"""Conversions between `AuditEntry` (what callers record) and stored audit rows.

`entry_to_row` makes the exact column values that are inserted and hashed
(tool arguments over `MAX_ARGS_BYTES`, which the gate refuses anyway, are
kept as their size, SHA-256 and a short prefix, never whole, and so is a
`data` object that large);
`AuditRecord` is a stored row read back (with id and hashes). Pure: no database here.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from opsagent.model import AuditEntry, bounded_json, canonical_json

UTC = timezone.utc


def iso(value: datetime) -> str:
    """UTC, fixed width, so stored times sort and compare as text."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def target_of(args: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(namespace, workload) named by tool arguments, for filtering."""
    if not args:
        return None, None
    namespace = args.get("namespace")
    workload = args.get("name") if namespace else None
    ref = args.get("workload")
    if isinstance(ref, str) and "/" in ref:
        namespace, workload = ref.split("/", 1)
    elif isinstance(ref, dict):
        namespace = ref.get("namespace", namespace)
        workload = ref.get("name", workload)
    return (str(namespace) if namespace is not None else None,
            str(workload) if workload is not None else None)


def entry_to_row(entry: AuditEntry) -> dict[str, Any]:
    args = bounded_json(entry.args) if entry.args is not None else None
    namespace, workload = target_of(args)
    return {
        "time": iso(entry.time),
        "kind": entry.kind,
        "actor": entry.actor,
        "channel": str(entry.channel) if entry.channel is not None else None,
        "run_id": entry.run_id,
        "finding_id": entry.finding_id,
        "message": entry.message,
        "tool": entry.tool,
        "args": canonical_json(args) if args is not None else None,
        "namespace": namespace,
        "workload": workload,
        "risk": entry.risk,
        "decision": entry.decision,
        "rule_file": entry.rule_file,
        "rule_name": entry.rule_name,
        "approval_id": entry.approval_id,
        "dry_run": 1 if entry.dry_run else 0,
        "outcome": entry.outcome,
        "summary": entry.summary,
        # stored as REAL; hash the value exactly as it reads back
        "duration_ms": float(entry.duration_ms) if entry.duration_ms is not None else None,
        "model": entry.model,
        "prompt_tokens": entry.prompt_tokens,
        "completion_tokens": entry.completion_tokens,
        "idempotency_key": entry.idempotency_key,
        "data": canonical_json(bounded_json(entry.data)) if entry.data is not None else None,
    }


class AuditRecord(BaseModel):
    """One stored audit row, as read back."""

    id: int
    time: datetime
    kind: str
    actor: str
    channel: str | None = None
    run_id: str | None = None
    finding_id: str | None = None
    message: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    namespace: str | None = None
    workload: str | None = None
    risk: str | None = None
    decision: str | None = None
    rule_file: str | None = None
    rule_name: str | None = None
    approval_id: int | None = None
    dry_run: bool = False
    outcome: str | None = None
    summary: str | None = None
    duration_ms: float | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    idempotency_key: str | None = None
    data: dict[str, Any] | None = None
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "AuditRecord":
        values = dict(row)
        for name in ("args", "data"):
            if values.get(name) is not None:
                values[name] = json.loads(values[name])
        values["dry_run"] = bool(values.get("dry_run"))
        return cls.model_validate(values)

    def flat(self) -> dict[str, Any]:
        """Column values for CSV and tables: JSON columns as compact text."""
        out = self.model_dump(mode="json")
        for name in ("args", "data"):
            if out[name] is not None:
                out[name] = canonical_json(out[name])
        return out
