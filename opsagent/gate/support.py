"""Small pieces the gate uses: the in-memory recorder,
built-in decisions, and the formatting of errors and results for the audit log.

Nothing here decides whether a call may run; `opsagent.gate` does. The
`MemoryRecorder` stands in for the audit store in tests and demos: it keeps
entries in a list and answers the same two questions.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Iterable

from pydantic import ValidationError

from opsagent.cluster.port import ReadOnlyCluster  # noqa: F401 (imported from here before the port had it)
from opsagent.gate.keys import FINISHED
from opsagent.model import AuditEntry, Decision, RuleRef

# MAX_ARGS_BYTES (from opsagent.model) is imported from here by the gate: it refuses arguments over it.
BUILTIN = "<builtin>"


def builtin(effect: str, name: str, reason: str) -> Decision:
    """A decision the gate makes itself (fail closed, guards no policy can loosen)."""
    return Decision(effect=effect, rule=RuleRef(file=BUILTIN, name=name), reason=reason)  # type: ignore[arg-type]


def target_key(target: Any) -> str | None:
    """What a write touches, for the blast radius: `namespace/name` or `node:NAME`."""
    if getattr(target, "workload", None) is not None:
        return str(target.workload)
    if getattr(target, "node", None):
        return f"node:{target.node}"
    return None


def format_validation_error(exc: ValidationError) -> str:
    """One line per field, naming the field and what was wrong, so a model can fix it."""
    parts = []
    for err in exc.errors()[:10]:
        field = ".".join(str(p) for p in err.get("loc", ())) or "(arguments)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (not allowed)"
        shown = ""
        if "input" in err and err.get("type") != "missing" and not isinstance(err["input"], dict):
            shown = f" (got {repr(err['input'])[:60]})"
        parts.append(f"{field}: {msg}{shown}")
    more = exc.error_count() - 10
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def small_data(data: dict[str, Any], *, read: bool) -> dict[str, Any]:
    """What of a tool's result goes into the audit log: counts for reads, the change for writes."""
    if read:
        return {k: data[k] for k in ("count", "truncated") if k in data}
    try:
        if len(json.dumps(data, default=str)) <= 4096:
            return dict(data)
    except (TypeError, ValueError):
        pass
    return {"_omitted": True, "keys": sorted(data)[:30]}


def counts_for(recorder: Any, *, known_tools: Iterable[str], run_workloads: Callable[[], Iterable[str]]) -> Any:
    """The policy's `Counts` over a recorder's recent results, plus this run's changed targets."""
    from opsagent.policy.limits import counts_from_recorder

    return counts_from_recorder(recorder, known_tools=known_tools, run_workloads=run_workloads)


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
