"""Work waiting for a sleeping workload: the `wake_requested` detector.

Two triggers: requests waiting for a workload scaled to zero (the adapter's
`opsagent.dev/pending-requests` annotation, or a request rate above zero while
`replicas == 0`), and a prewarm window of the workload's intent that is open
now while the workload runs fewer replicas than `wake.warm_replicas`.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from opsagent.detect.common import intent_of, iso, make, open_prewarm, pending_requests
from opsagent.model import Finding, Snapshot
from opsagent.policy.intents import Intent, WakeRule


def wake_requested(snapshot: Snapshot, intents: Sequence[Intent], now: datetime) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        intent = intent_of(intents, workload)
        if intent is None:
            continue
        wake = intent.wake or WakeRule()
        waiting = pending_requests(workload)
        if workload.replicas == 0 and wake.on_request and (waiting > 0 or (workload.request_rate or 0) > 0):
            findings.append(make(
                "wake_requested", workload.key,
                f"{workload.key} is at zero replicas with "
                + (f"{waiting} request(s) waiting" if waiting else f"{workload.request_rate:g} req/s arriving"),
                now,
                trigger="requests",
                pending_requests=waiting,
                request_rate=workload.request_rate,
                replicas=workload.replicas,
                warm_replicas=wake.warm_replicas,
                wake_timeout_seconds=int(wake.timeout.total_seconds()),
                last_request_at=iso(workload.last_request_at),
                intent=intent.name,
            ))
            continue
        window = open_prewarm(intent, now)
        if window is not None and workload.replicas < wake.warm_replicas:
            cron, start, end = window
            findings.append(make(
                "wake_requested", workload.key,
                f"prewarm window '{cron}' is open until {end:%Y-%m-%d %H:%M} UTC; "
                f"{workload.key} runs {workload.replicas} of {wake.warm_replicas} warm replica(s)",
                now,
                trigger="prewarm",
                pending_requests=waiting,
                request_rate=workload.request_rate,
                replicas=workload.replicas,
                warm_replicas=wake.warm_replicas,
                wake_timeout_seconds=int(wake.timeout.total_seconds()),
                window_cron=cron,
                window_start=iso(start),
                window_end=iso(end),
                intent=intent.name,
            ))
    return findings
