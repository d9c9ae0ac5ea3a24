"""Autoscalers own replicas: the built-in guard that keeps opsagent from fighting one.

What it is for: deciding, from a snapshot alone, whether a call that writes a workload's
replicas must be refused because an autoscaler (an HPA, a KEDA ScaledObject or
HTTPScaledObject) owns them. A direct replica write (`scale_workload`) of an owned workload
is always refused: the autoscaler would undo it on its next pass, and the two would fight.
A sleep or wake may go through the autoscaler instead (KEDA's paused-replicas annotation),
so it is refused only when the autoscaler cannot be paused (an HPA). Bounds go through the
autoscaler's own min/max (`set_autoscaler_bounds`, architectural).

No policy can loosen this guard, and cluster text cannot widen it: ownership comes from the
autoscaler objects the adapter reads, never from an annotation on the workload.

What it must not do: any I/O, or look at who asks (authority is the policy's business).
"""

from __future__ import annotations

from opsagent.model import ReplicaWrite, Snapshot, WorkloadRef


def autoscaler_refusal(mode: ReplicaWrite | None, ref: WorkloadRef | None, snapshot: Snapshot | None) -> str | None:
    """Why this replica write must not run, or None when no autoscaler owns `ref` (or the call writes no replicas)."""
    if mode is None or ref is None or snapshot is None:
        return None
    owner = snapshot.autoscaler_of(ref)
    if owner is None or (mode == "pausable" and owner.pausable):
        return None
    ways = ("sleep_workload and wake_workload pause and resume it (autoscaling.keda.sh/paused-replicas); "
            if owner.pausable else "it cannot be paused; ")
    return (f"{ref} is scaled by {owner.label} (replicas {owner.min_replicas}..{owner.max_replicas}): opsagent never "
            f"writes the replicas of a workload an autoscaler owns, the autoscaler would undo it; {ways}"
            f"propose set_autoscaler_bounds to change its bounds")
