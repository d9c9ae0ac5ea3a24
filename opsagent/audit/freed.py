"""GPU-hours freed, worked out from the result records themselves.

- A *freeing* is a successful result, not a dry run, whose data says it freed
  GPUs (`gpus_freed` > 0, as `sleep_workload` and `delete_workload` report) of a
  workload.
- A *return* is a successful result, not a dry run, that brings the same
  workload back onto GPUs: `wake_workload`, or `scale_workload` /
  `create_workload` to one or more replicas. The GPUs count as taken again from
  the moment that call started (its time minus its duration), because a wake
  holds them while it waits for the replicas to become ready.

Each freeing counts its GPUs from its own time until the next return of that
workload, or the next freeing of it (something outside opsagent brought it back
in between, at a time the log does not know), or the end of the range,
whichever comes first; the period is then clipped to the range.

Pure: records in, numbers out. `query.stats` selects the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from pydantic import BaseModel

from opsagent.audit.records import AuditRecord
from opsagent.audit.schema import RETURN_TOOLS

__all__ = ["RETURN_TOOLS", "FreedPeriod", "GpuEvent", "event_of", "freed_periods", "gpu_hours_freed", "gpus_freed_by", "return_time", "workload_of"]


class FreedPeriod(BaseModel):
    """GPUs of one workload freed from `start` to `end` (already clipped to the range)."""

    workload: str
    gpus: float
    start: datetime
    end: datetime

    @property
    def gpu_hours(self) -> float:
        return self.gpus * max((self.end - self.start).total_seconds(), 0.0) / 3600.0


def workload_of(record: AuditRecord) -> str | None:
    """namespace/name of the workload a record concerns (SQL twin: `query.WORKLOAD_KEY`)."""
    if record.namespace and record.workload:
        return f"{record.namespace}/{record.workload}"
    named = (record.data or {}).get("workload")
    return str(named) if named else None


def _applied(record: AuditRecord) -> bool:
    return record.kind == "result" and record.outcome == "ok" and not record.dry_run \
        and not (record.data or {}).get("dry_run")


def gpus_freed_by(record: AuditRecord) -> float:
    """GPUs a record freed (0 when it is not a freeing)."""
    if not _applied(record):
        return 0.0
    value = (record.data or {}).get("gpus_freed")
    return float(value) if isinstance(value, (int, float)) and value > 0 else 0.0


def return_time(record: AuditRecord) -> datetime | None:
    """When a return took the workload's GPUs again (the call's start); None when it is not a return."""
    if not _applied(record) or record.tool not in RETURN_TOOLS:
        return None
    replicas = (record.data or {}).get("replicas", (record.args or {}).get("replicas"))
    if record.tool != "wake_workload" and not (isinstance(replicas, int) and replicas > 0):
        return None
    return record.time - timedelta(milliseconds=record.duration_ms or 0.0)


class GpuEvent(NamedTuple):
    """What one record means for GPU-hours: its workload, its time, GPUs it freed (0: none) and,
    for a return, when it took them again (None: not a return). `query` reads these straight
    from SQL (`query.GPU_EVENT_COLUMNS`); `event_of` makes one from a record."""

    workload: str | None
    time: datetime
    gpus: float
    back: datetime | None


def event_of(record: AuditRecord) -> GpuEvent:
    return GpuEvent(workload_of(record), record.time, gpus_freed_by(record), return_time(record))


def freed_periods(records: Iterable[AuditRecord | GpuEvent], *, since: datetime | None,
                  end: datetime) -> list[FreedPeriod]:
    """Periods during which opsagent held GPUs free, from records (or their events) in time order,
    clipped to [since, end]."""
    open_: dict[str, tuple[datetime, float]] = {}
    periods: list[FreedPeriod] = []

    def close(workload: str, at: datetime) -> None:
        start, gpus = open_.pop(workload)
        lo = max(start, since) if since is not None else start
        hi = min(at, end)
        if hi > lo:
            periods.append(FreedPeriod(workload=workload, gpus=gpus, start=lo, end=hi))

    for item in records:
        workload, at, gpus, back = item if isinstance(item, GpuEvent) else event_of(item)
        if workload is None:
            continue
        if back is not None and workload in open_:
            close(workload, back)
        if gpus > 0:
            if workload in open_:
                close(workload, at)
            open_[workload] = (at, gpus)
    for workload in list(open_):
        close(workload, end)
    return periods


def gpu_hours_freed(records: Iterable[AuditRecord | GpuEvent], *, since: datetime | None, end: datetime) -> float:
    return round(sum(p.gpu_hours for p in freed_periods(records, since=since, end=end)), 4)
