"""An in-memory `Recorder` for tests: the gate's audit entries in a list, ids from 1.

It answers the questions the gate and the agent ask of the audit store (`record`,
`count_recent`, `model_spend`, `find_by_key`, `has_key`, `finished_runs`, ...) the
same way the store does, without a file. Product code always records to the
audit store (`opsagent.audit.AuditStore`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsagent.gate.keys import FINISHED
from opsagent.model import AuditEntry


class _Stored:
    """An entry as read back: its id plus the entry's fields."""

    def __init__(self, audit_id: int, entry: AuditEntry) -> None:
        self.id = audit_id
        self._entry = entry

    def __getattr__(self, name: str) -> Any:
        return getattr(self._entry, name)


class MemoryRecorder:
    """An in-memory Recorder: `entries` in order, ids from 1."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self._keys: dict[str, int] = {}

    def record(self, entry: AuditEntry) -> int:
        """Append; like the audit store, an idempotency key already stored is not written twice."""
        if entry.idempotency_key is not None:
            found = self.find_by_key(entry.idempotency_key)
            if found is not None:
                return found.id
        self.entries.append(entry)
        if entry.idempotency_key is not None:
            self._keys[entry.idempotency_key] = len(self.entries)
        return len(self.entries)

    def count_recent(self, *, tool: str | None, namespace: str | None, actor: str | None, since: datetime, outcome: str = "ok") -> int:
        total = 0
        for e in self.entries:
            if e.kind != "result" or e.outcome != outcome or e.time < since:
                continue
            if tool is not None and e.tool != tool:
                continue
            if namespace is not None and (e.args or {}).get("namespace") != namespace:
                continue
            if actor is not None and e.actor != actor:
                continue
            total += 1
        return total

    def model_spend(self, *, since: datetime, actor: str | None = None) -> tuple[int, int]:
        """(model calls, tokens) since `since`, as the audit store counts them (its model-call rows)."""
        from fnmatch import fnmatchcase

        calls = tokens = 0
        for e in self.entries:
            if e.kind == "run" and e.time >= since and fnmatchcase(e.idempotency_key or "", "*:run:llm[0-9]*") \
                    and (actor is None or e.actor == actor):
                calls += 1
                tokens += (e.prompt_tokens or 0) + (e.completion_tokens or 0)
        return calls, tokens

    def find_by_key(self, key: str) -> Any:
        """The stored entry with this idempotency key (with its `id`), or None."""
        audit_id = self._keys.get(key)
        return _Stored(audit_id, self.entries[audit_id - 1]) if audit_id is not None else None

    def has_key(self, key: str) -> bool:
        return key in self._keys

    def finished_runs(self, *, since: datetime | None, until: datetime) -> list[str]:
        """Run ids whose finish was recorded in [since, until] (all before `until` when since is None), oldest first."""
        return [e.run_id for e in self.entries
                if e.kind == "run" and e.run_id and (e.idempotency_key or "").endswith(FINISHED)
                and (since is None or e.time >= since) and e.time <= until]

    def run_entries(self, *, since: datetime) -> list[AuditEntry]:
        """The `run` entries recorded at or after `since`, oldest first."""
        return [e for e in self.entries if e.kind == "run" and e.time >= since]

    def of_kind(self, kind: str) -> list[AuditEntry]:
        return [e for e in self.entries if e.kind == kind]
