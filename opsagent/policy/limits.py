"""Rate limits and blast radius: what `decide()` needs to know about recent actions.

`decide()` stays pure: the caller hands it a `Counts`, which answers "how many
successful calls matching this limit happened since T" and "which workloads has
this run already changed". Build one from a recorder (`counts_from_recorder`),
from audit entries (`Counts.from_entries`, handy in tests), or use `NO_COUNTS`.
Nothing here reads a clock or a database by itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable

from opsagent.model import AuditEntry
from opsagent.policy.toolrisk import matches_any


class Counts:
    """Answers for rate limits and the blast radius. The base class counts nothing."""

    def count(self, *, limit_name: str, tools: tuple[str, ...], namespace: str | None, actor: str | None, since: datetime) -> int:
        """Successful calls of any of `tools` (names or globs) since `since`, in `namespace` / by `actor` when given."""
        return 0

    def times(self, *, limit_name: str, tools: tuple[str, ...], namespace: str | None, actor: str | None,
              since: datetime) -> list[datetime] | None:
        """When the calls `count` counts were made, oldest first; None when unknown."""
        return None

    def run_workloads(self) -> frozenset[str]:
        """`namespace/name` of the workloads the current run has already changed."""
        return frozenset()

    @staticmethod
    def from_entries(entries: Iterable[AuditEntry], *, run_workloads: Iterable[str] = ()) -> "EntryCounts":
        return EntryCounts(entries, run_workloads=run_workloads)


NO_COUNTS = Counts()


class EntryCounts(Counts):
    """Counts over a list of audit entries: `result` entries with outcome `ok`."""

    def __init__(self, entries: Iterable[AuditEntry], *, run_workloads: Iterable[str] = ()) -> None:
        self._entries = [e for e in entries if e.kind == "result" and e.outcome == "ok" and e.tool]
        self._run = frozenset(run_workloads)

    def count(self, *, limit_name: str, tools: tuple[str, ...], namespace: str | None, actor: str | None, since: datetime) -> int:
        return len(self.times(limit_name=limit_name, tools=tools, namespace=namespace, actor=actor, since=since))

    def times(self, *, limit_name: str, tools: tuple[str, ...], namespace: str | None, actor: str | None,
              since: datetime) -> list[datetime]:
        found = []
        for entry in self._entries:
            if entry.time < since or not matches_any(entry.tool or "", tools):
                continue
            if namespace is not None and (entry.args or {}).get("namespace") != namespace:
                continue
            if actor is not None and entry.actor != actor:
                continue
            found.append(entry.time)
        return sorted(found)

    def run_workloads(self) -> frozenset[str]:
        return self._run


class RecorderCounts(Counts):
    """Counts through anything with the Recorder's `count_recent(*, tool, namespace, actor, since, outcome)`.

    Globs in a limit's tool list are expanded against `known_tools` (names only:
    the recorder counts one tool at a time).
    """

    def __init__(self, recorder: Any, *, known_tools: Iterable[str], run_workloads: Iterable[str] | Callable[[], Iterable[str]] = ()) -> None:
        self._recorder = recorder
        self._known = tuple(known_tools)
        self._run = run_workloads

    def count(self, *, limit_name: str, tools: tuple[str, ...], namespace: str | None, actor: str | None, since: datetime) -> int:
        names = [t for t in self._known if matches_any(t, tools)]
        return sum(self._recorder.count_recent(tool=t, namespace=namespace, actor=actor, since=since) for t in names)

    def times(self, *, limit_name: str, tools: tuple[str, ...], namespace: str | None, actor: str | None,
              since: datetime) -> list[datetime] | None:
        read = getattr(self._recorder, "times_recent", None)
        if not callable(read):
            return None
        names = [t for t in self._known if matches_any(t, tools)]
        return sorted(t for name in names for t in read(tool=name, namespace=namespace, actor=actor, since=since))

    def run_workloads(self) -> frozenset[str]:
        run = self._run() if callable(self._run) else self._run
        return frozenset(run)


def counts_from_recorder(recorder: Any, *, known_tools: Iterable[str], run_workloads: Iterable[str] | Callable[[], Iterable[str]] = ()) -> RecorderCounts:
    return RecorderCounts(recorder, known_tools=known_tools, run_workloads=run_workloads)
