"""Idle GPU holders and the jobs they keep waiting: the `idle_gpu` and `jobs_waiting` detectors.

A workload is idle when its intent's idle rule says so: no requests for
`idle.after` (from `last_request_at`, or a zero request rate with every
GPU-holding pod started longer ago than the window), or GPU utilisation under
`gpu_util_below` for the whole window (`Workload.low_gpu_since`, which the
runtime's utilisation watch fills in across snapshots; a single low reading
is not enough). Protected intents, workloads inside an open prewarm window
and workloads a time-boxed wake keeps up (`leased`, see opsagent.leases) are
never idle.

Against sleep/wake flapping (a service with a trickle of requests and low
utilisation, slept and woken a minute later): a workload woken soon after the
daemon slept it (sooner than its idle window) gets a longer window, doubled
for each sleep of it in the last day, at most `MAX_STRETCH` times, and while
that holds only a quiet spell counts: low utilisation already proved a poor
signal for it that day. The finding reports the stretch (`hysteresis`), so the
audit log shows it.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from opsagent.detect.common import History, Intents, attempts_for, gpu_pods, intent_of, iso, make, minutes, open_prewarm
from opsagent.model import Finding, Snapshot, Workload
from opsagent.policy.intents import Intent


MAX_STRETCH = 4
FLAP_MEMORY = timedelta(days=1)


def _stretch(workload: Workload, snapshot: Snapshot, window: timedelta, history: History | None,
             now: datetime) -> dict | None:
    """The hysteresis applied when the workload was woken soon after the daemon slept it, else None."""
    seen = attempts_for(history, f"idle_gpu:{workload.key}")
    sleeps = sorted(a.at for a in seen.actions if a.tool == "sleep_workload" and now - a.at <= FLAP_MEMORY)
    starts = [p.started_at for p in gpu_pods(snapshot, workload) if p.started_at is not None]
    if not sleeps or not starts:
        return None
    slept, woken = sleeps[-1], min(starts)
    if woken < slept or woken - slept >= window:
        return None
    factor = min(MAX_STRETCH, 2 ** len(sleeps))
    return {"slept_at": iso(slept), "woken_at": iso(woken), "factor": factor,
            "base_idle_after_minutes": minutes(window), "sleeps_last_day": len(sleeps)}


def _idle_since(workload: Workload, snapshot: Snapshot, intent: Intent, now: datetime,
                window: timedelta, *, by_utilisation: bool = True) -> tuple[datetime, str] | None:
    """When the workload went idle and why, if it has been idle at least `window`."""
    assert intent.idle is not None
    quiet_since = snapshot.quiet_since(workload)
    if quiet_since is not None and now - quiet_since >= window:
        return quiet_since, "no_requests"
    low_since = workload.low_gpu_since
    if by_utilisation and intent.idle.gpu_util_below is not None and low_since is not None and now - low_since >= window:
        return low_since, "low_gpu_utilization"
    return None


def idle_gpu(snapshot: Snapshot, intents: Intents, now: datetime,
             history: History | None = None, leased: Collection[str] = ()) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        intent = intent_of(intents, workload)
        if intent is None or intent.idle is None or intent.protected or workload.key in leased:
            continue
        owner = snapshot.autoscaler_of(workload.ref)
        if owner is not None and not owner.pausable:
            continue  # an HPA keeps its minimum and cannot be paused: its bounds are a person's (set_autoscaler_bounds)
        pods = gpu_pods(snapshot, workload)
        held = sum(len(p.gpu_ids) for p in pods)
        if held == 0 or open_prewarm(intent, now) is not None:
            continue
        hysteresis = _stretch(workload, snapshot, intent.idle.after, history, now)
        window = intent.idle.after * (hysteresis["factor"] if hysteresis else 1)
        idle = _idle_since(workload, snapshot, intent, now, window, by_utilisation=hysteresis is None)
        if idle is None:
            continue
        since, reason = idle
        idle_for = now - since
        wasted = round(held * idle_for.total_seconds() / 3600.0, 2)
        why = "no requests" if reason == "no_requests" else f"GPU utilisation {workload.gpu_utilization:.0f}%"
        findings.append(make(
            "idle_gpu", workload.key,
            f"{workload.key} holds {held} GPU(s) idle for {minutes(idle_for):.0f} min ({why}); "
            f"idle rule {intent.name}: after {minutes(window):.0f} min"
            + (f" (x{hysteresis['factor']}: woken soon after it was slept)" if hysteresis else ""),
            now,
            reason=reason,
            gpus_held=held,
            gpu_ids=sorted(g for p in pods for g in p.gpu_ids),
            replicas=workload.replicas,
            idle_minutes=minutes(idle_for),
            idle_after_minutes=minutes(window),
            hysteresis=hysteresis,
            idle_since=iso(since),
            last_request_at=iso(workload.last_request_at),
            gpu_utilization=workload.gpu_utilization,
            gpu_hours_wasted_so_far=wasted,
            intent=intent.name,
        ))
    return findings


def jobs_waiting(snapshot: Snapshot, idle: Sequence[Finding], now: datetime) -> list[Finding]:
    """Queued GPU jobs that cannot start on free devices while idle workloads hold GPUs."""
    queued = sorted((j for j in snapshot.jobs if j.state == "queued"), key=lambda j: (j.submitted_at or now, j.key))
    if not queued or not idle:
        return []
    free_by_node = snapshot.free_gpus_by_node()
    widest = max(free_by_node.values(), default=0)
    blocked = [j for j in queued if j.gpus > widest]
    if not blocked:
        return []
    holders = [
        {"namespace": f.subject.split("/", 1)[0], "name": f.subject.split("/", 1)[1],
         "gpus_held": f.details["gpus_held"], "idle_minutes": f.details["idle_minutes"]}
        for f in sorted(idle, key=lambda f: f.subject)
    ]
    oldest = blocked[0]
    waited = minutes(now - oldest.submitted_at) if oldest.submitted_at else None
    releasable = sum(h["gpus_held"] for h in holders)
    return [make(
        "jobs_waiting", "cluster",
        f"{len(blocked)} GPU job(s) waiting ({sum(j.gpus for j in blocked)} GPUs wanted) while "
        f"{len(holders)} idle workload(s) hold {releasable} GPU(s)",
        now,
        jobs=[j.key for j in blocked],
        gpus_wanted=sum(j.gpus for j in blocked),
        oldest_job=oldest.key,
        oldest_wait_minutes=waited,
        free_gpus=sum(free_by_node.values()),
        idle_holders=holders,
        idle_holder_ids=[f.id for f in sorted(idle, key=lambda f: f.subject)],
        gpus_releasable=releasable,
    )]
