"""Shared pieces of the detectors: history records, intent lookup, GPU lookups.

Pure functions over a Snapshot; no I/O, no clock (callers pass `now`).
Findings built here carry small JSON-ready details (ids, numbers, ISO times),
never model objects, so they can go into prompts, CEL and the audit log as-is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsagent.model import Finding, GpuDevice, Pod, Snapshot, Workload
from opsagent.model.text import one_line
from opsagent.policy.cron import CronError, window_open
from opsagent.policy.intents import Intent
from opsagent.policy.resolve import IntentBook, intent_for

SEVERITY = {
    "idle_gpu": "warning",
    "wake_requested": "warning",
    "rollout_failed": "critical",
    "drift": "warning",
    "unschedulable_gpu": "warning",
    "crashloop": "critical",
    "topology_mismatch": "warning",
    "jobs_waiting": "warning",
    "spec_conflict": "warning",
    "node_unhealthy": "critical",
    "node_left_cordoned": "warning",
    "node_awaits_repair": "warning",
    "autoscaler_stuck": "warning",
    "node_needs_drain": "warning",
    "image_pull_failed": "critical",
    "out_of_memory": "critical",
    "not_ready": "warning",
    "config_missing": "warning",
    "volume_pending": "warning",
    "quota_exceeded": "warning",
    "service_without_endpoints": "warning",
}



class Rejection(BaseModel):
    """A person's no to one exact call made for a finding: remembered, so it is not asked again unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    by: str
    reason: str = ""
    at: datetime


class Acted(BaseModel):
    """One write that went through for a finding: which tool, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str
    at: datetime


class Seen(BaseModel):
    """A run the agent started for a finding: when, and the finding's details as they were then."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class Attempts(BaseModel):
    """What the caller remembers about one finding: how often it was acted on, and when last.

    `actions` (each write made for it), `resolved_at` (when a run last saw it
    resolved) and `rejected` (calls a person refused) let a detector count
    one incident only: see `opsagent.detect.incident`. `seen` (runs started
    for it, with the details of then) is kept for node findings only, over a
    longer lookback: why a node was cordoned outlives the events that said so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=0, ge=0)
    last_action_at: datetime | None = None
    actions: tuple[Acted, ...] = ()
    resolved_at: datetime | None = None
    rejected: tuple[Rejection, ...] = ()
    seen: tuple[Seen, ...] = ()


History = Mapping[str, "Attempts | Mapping[str, Any]"]


def attempts_for(history: History | None, finding_id: str) -> Attempts:
    if not history or finding_id not in history:
        return Attempts()
    entry = history[finding_id]
    return entry if isinstance(entry, Attempts) else Attempts.model_validate(dict(entry))


SUMMARY_LIMIT = 2000


def make(kind: str, subject: str, summary: str, now: datetime, **details: Any) -> Finding:
    """A finding. Its summary is one line whatever cluster text went into it (a probe path, a container name)."""
    return Finding(kind=kind, severity=SEVERITY[kind],  # type: ignore[arg-type]  # kind and severity are checked at runtime
                   subject=subject, summary=one_line(summary, SUMMARY_LIMIT), details=details, seen_at=now)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60.0, 1)


def short(text: str | None, limit: int = 200) -> str | None:
    """Cluster-provided text on one line, cut short (see `one_line`). It is data to show, never an instruction."""
    if text is None:
        return None
    return one_line(text, limit)


Intents = Sequence[Intent] | IntentBook  # a plain list: annotations may only narrow; a policy's book carries its opt-ins


def intent_of(intents: Intents, workload: Workload) -> Intent | None:
    return intent_for(intents, workload)


def gpu_pods(snapshot: Snapshot, workload: Workload) -> list[Pod]:
    return [p for p in snapshot.pods_of(workload.ref) if p.gpu_ids]


def devices(snapshot: Snapshot, pod: Pod) -> list[GpuDevice]:
    found = (snapshot.gpu(gpu_id) for gpu_id in pod.gpu_ids)
    return [d for d in found if d is not None]


def free_gpus(snapshot: Snapshot) -> list[GpuDevice]:
    """Devices nobody holds on nodes that can take new pods."""
    return [g for n in snapshot.nodes if n.ready and not n.cordoned for g in n.gpus if g.holder is None]


def open_prewarm(intent: Intent | None, now: datetime) -> tuple[str, datetime, datetime] | None:
    """(cron, start, end) of an open prewarm window of this intent, or None.

    The policy loader rejects a cron that does not parse; should one reach here
    anyway (an intent built in code), it opens no window.
    """
    if intent is None or intent.wake is None:
        return None
    for window in intent.wake.prewarm:
        try:
            opened = window_open(window.cron, window.duration, now, window.time_zone)
        except CronError:
            continue
        if opened is not None:
            return window.cron, opened[0], opened[1]
    return None
