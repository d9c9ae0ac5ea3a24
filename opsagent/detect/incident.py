"""Incident identity: which of a finding's remembered actions belong to the problem seen now.

A finding id (`rollout_failed:inference/embedder`) names a place, not an
incident: the same workload can fail, recover and fail again for another
reason. Retry budgets, backoff and remembered rejections count one incident
only. An incident starts at the later of

- when the thing that fails now first appeared (for a rollout, the first
  revision of the failing release, retries of it included; for a crash loop,
  the running revision), and
- when a run last saw the finding resolved (a new failure after recovery is
  a new incident).

Pure: no I/O and no clock; callers pass what they remember.
"""

from __future__ import annotations

from datetime import datetime

from opsagent.detect.common import Attempts, History, Rejection, attempts_for
from opsagent.model import Workload


def release_started(workload: Workload, revision: int) -> datetime | None:
    """When the failing release first rolled out: the oldest revision of the trailing run with its image.

    Restarting a rollout makes a new revision of the same image, so retries
    stay in one incident; a rollback (another image) or a new release ends it.
    """
    by_number = sorted(workload.history, key=lambda r: r.revision)
    failing = next((r for r in by_number if r.revision == revision), None)
    if failing is None:
        return None
    start = failing
    for entry in reversed([r for r in by_number if r.revision < revision]):
        if entry.image != failing.image:
            break
        start = entry
    return start.created_at


def revision_started(workload: Workload) -> datetime | None:
    """When the running revision was made (None when the adapter does not know)."""
    return next((r.created_at for r in workload.history if r.revision == workload.revision), None)


def incident_attempts(history: History | None, finding_id: str, *, started_at: datetime | None) -> Attempts:
    """The caller's memory of `finding_id`, cut to the current incident.

    Without per-action times (an old-style history entry) the counts are kept
    as given: there is nothing to cut by.
    """
    seen = attempts_for(history, finding_id)
    starts = [t for t in (started_at, seen.resolved_at) if t is not None]
    if not starts:
        return seen
    start = max(starts)
    rejected = tuple(r for r in seen.rejected if r.at >= start)
    if not seen.actions:
        if seen.attempts and seen.last_action_at is not None and seen.last_action_at < start:
            return Attempts(rejected=rejected, resolved_at=seen.resolved_at)
        return seen.model_copy(update={"rejected": rejected})
    actions = tuple(sorted((a for a in seen.actions if a.at >= start), key=lambda a: a.at))
    return Attempts(attempts=len(actions), last_action_at=actions[-1].at if actions else None, actions=actions,
                    resolved_at=seen.resolved_at, rejected=rejected)


def rejected_tools(seen: Attempts) -> set[str]:
    return {r.tool for r in seen.rejected}


def tools_done(seen: Attempts) -> set[str]:
    return {a.tool for a in seen.actions}


def rejection_rows(seen: Attempts) -> list[dict]:
    """The incident's rejections as JSON-ready rows for a finding's details (reasons are people's words)."""
    return [_row(r) for r in sorted(seen.rejected, key=lambda r: r.at)]


def _row(rejection: Rejection) -> dict:
    return {"tool": rejection.tool, "by": rejection.by, "reason": rejection.reason[:200], "at": rejection.at.isoformat()}


__all__ = ["incident_attempts", "rejected_tools", "rejection_rows", "tools_done", "release_started", "revision_started"]
