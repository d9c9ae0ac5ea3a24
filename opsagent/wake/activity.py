"""Last request time per workload, as seen by the wake proxy, shared with the daemon.

On a real cluster the proxy and the daemon are different processes; the idle
detector needs to know when each workload last got traffic even without
Prometheus. The proxy notes requests in memory (no I/O on the request path) and
flushes them to a small SQLite table every few seconds; the daemon reads the
table and merges the times into its snapshot (`merge_activity`).

Plain sqlite3 (this is a tiny key-value table, not the audit log).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from opsagent.clock import Clock
from opsagent.model import Snapshot, WorkloadRef

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workload_activity (
    workload TEXT PRIMARY KEY,
    last_request_at TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0
)
"""


def activity_path_for(db: Path) -> Path:
    """Where the proxy writes last-request times beside the main database: `opsagent.db` -> `opsagent.activity.db`."""
    return Path(db).with_suffix(".activity.db")


class Tally:
    """Requests noted in memory since the last `take()`: no I/O on the request path."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pending: dict[str, tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def note(self, ref: WorkloadRef) -> None:
        """Record one request now, in memory. Cheap enough for every request."""
        now = self._clock.now()
        key = str(ref)
        with self._lock:
            _, count = self._pending.get(key, (now, 0))
            self._pending[key] = (now, count + 1)

    def take(self) -> dict[str, tuple[datetime, int]]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def restore(self, seen: dict[str, tuple[datetime, int]]) -> None:
        """Put back what a failed flush took, merged with anything noted since."""
        with self._lock:
            for key, (at, count) in seen.items():
                now_at, now_count = self._pending.get(key, (at, 0))
                self._pending[key] = (max(at, now_at), count + now_count)


class ActivityLog:
    def __init__(self, path: str | Path, *, clock: Clock) -> None:
        self._path = str(path)
        self._tally = Tally(clock)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def note(self, ref: WorkloadRef) -> None:
        self._tally.note(ref)

    def flush(self) -> int:
        """Write noted requests to SQLite; returns how many workloads were written."""
        return self.record(self._tally.take())

    def record(self, seen: dict[str, tuple[datetime, int]]) -> int:
        """Merge request times ({"NS/NAME": (last, count)}), e.g. sent by a proxy in another pod."""
        if not seen:
            return 0
        with self._connect() as db:
            db.executemany(
                "INSERT INTO workload_activity (workload, last_request_at, requests) VALUES (?, ?, ?) "
                "ON CONFLICT(workload) DO UPDATE SET "
                "last_request_at = max(last_request_at, excluded.last_request_at), "
                "requests = requests + excluded.requests",
                [(key, at.isoformat(), count) for key, (at, count) in seen.items()],
            )
        return len(seen)

    def last_requests(self) -> dict[str, datetime]:
        with self._connect() as db:
            rows = db.execute("SELECT workload, last_request_at FROM workload_activity").fetchall()
        return {key: datetime.fromisoformat(at) for key, at in rows}


def merge_activity(snapshot: Snapshot, last_requests: dict[str, datetime]) -> Snapshot:
    """A snapshot whose workloads' last_request_at includes the proxy's observations."""
    if not last_requests:
        return snapshot
    changed = []
    for workload in snapshot.workloads:
        seen = last_requests.get(workload.key)
        if seen is not None and (workload.last_request_at is None or seen > workload.last_request_at):
            workload = workload.model_copy(update={"last_request_at": seen})
        changed.append(workload)
    return snapshot.model_copy(update={"workloads": tuple(changed)})
