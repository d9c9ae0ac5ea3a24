"""Work waiting for a sleeping workload: the `wake_requested` detector.

Two triggers: requests waiting for a workload scaled to zero
(`Workload.pending_requests`, counted by the wake proxy or the simulator, or a
request rate above zero from metrics while `replicas == 0`; never an
annotation, which anyone who can edit the Deployment could plant), and a prewarm window of the workload's intent that is open
now while the workload runs fewer replicas than `wake.warm_replicas`.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from datetime import datetime

from opsagent.detect.common import Intents, intent_of, iso, make, open_prewarm
from opsagent.model import Finding, Snapshot
from opsagent.policy.intents import WakeRule


def wake_requested(snapshot: Snapshot, intents: Intents, now: datetime) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        intent = intent_of(intents, workload)
        owner = snapshot.autoscaler_of(workload.ref)
        if intent is None or (owner is not None and owner.paused_replicas is None):
            continue  # an autoscaler that is not paused wakes its workload itself
        wake = intent.wake or WakeRule()
        waiting = workload.pending_requests
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
