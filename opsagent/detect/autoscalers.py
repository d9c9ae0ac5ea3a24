"""Autoscalers that cannot act: the `autoscaler_stuck` detector.

An autoscaler owns its workload's replicas (opsagent never writes them), so when it cannot
act nobody scales the workload at all. It fires, per owned workload, when the autoscaler
reports that it cannot scale (`AbleToScale` False: no access to the scale subresource, a
target that is gone), cannot compute a replica count (`ScalingActive` False: no metrics, or
pods without the resource requests a utilisation target needs), or wants more replicas than
its maximum while already at it (a target that can never be met). The fix is a person's:
metrics, requests and bounds are architecture, and a KEDA object paused on purpose is left
alone.

Pure: no I/O and no clock; `now` is passed in. Cluster text (reason, message) is data.
"""

from __future__ import annotations

from datetime import datetime

from opsagent.detect.common import make, short
from opsagent.model import Autoscaler, Finding, Snapshot


def problem_of(scaler: Autoscaler) -> str | None:
    """`cannot_scale`, `cannot_compute` or `at_max`, or None when it can act."""
    if scaler.paused_replicas is not None:
        return None
    if scaler.able_to_scale is False:
        return "cannot_scale"
    if scaler.scaling_active is False and scaler.reason != "ScalingDisabled":  # an HPA on a target at zero is off, not stuck
        return "cannot_compute"
    if (scaler.scaling_limited and scaler.current_replicas is not None and scaler.current_replicas >= scaler.max_replicas
            and (scaler.desired_replicas or 0) >= scaler.max_replicas):
        return "at_max"
    return None


_SAYS = {
    "cannot_scale": "cannot scale its target",
    "cannot_compute": "cannot compute a replica count (no metrics, or pods without resource requests)",
    "at_max": "wants more replicas than its maximum and is already at it",
}


def autoscaler_stuck(snapshot: Snapshot, now: datetime) -> list[Finding]:
    found = []
    for scaler in snapshot.autoscalers:
        problem = problem_of(scaler)
        if problem is None or snapshot.workload(scaler.target) is None:
            continue
        found.append(make(
            "autoscaler_stuck", str(scaler.target), f"{scaler.label} {_SAYS[problem]}; nobody scales {scaler.target}", now,
            autoscaler=scaler.label, problem=problem, reason=short(scaler.reason, 100), message=short(scaler.message),
            min_replicas=scaler.min_replicas, max_replicas=scaler.max_replicas,
            current_replicas=scaler.current_replicas, desired_replicas=scaler.desired_replicas))
    return found
