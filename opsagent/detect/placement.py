"""Where GPUs are and where they should be: `drift`, `topology_mismatch`, `unschedulable_gpu`.

`drift`: spec replicas outside the intent's bounds (zero is fine for an intent
with an idle rule: the workload was slept), or pods holding GPUs that break
the intent's placement (link narrower than `min_link_width`, a coherent
replica spread over switch groups, a GPU count other than declared). For
tensor-parallel workloads the link and coherence part is left to
`topology_mismatch`, so one problem is one finding.

`topology_mismatch`: a tensor-parallel replica whose GPUs are not one
coherent wide set (mixed link widths, several switch groups or nodes, or
narrower than required), with whether a free coherent set exists.

`unschedulable_gpu`: pods Pending as Unschedulable that ask for GPUs.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from datetime import datetime

from opsagent.detect.config import waits_for_claim
from opsagent.detect.common import Intents, devices, free_gpus, gpu_pods, intent_of, make, short
from opsagent.model import Finding, GpuDevice, Snapshot, Workload
from opsagent.policy.intents import Intent

DEFAULT_TP_WIDTH = 16


def set_problems(gpus: Sequence[GpuDevice], *, min_width: int | None, coherent: bool) -> list[str]:
    """What keeps these devices from meeting the requirement (empty when they do)."""
    problems = []
    widths = {g.pcie_link_width for g in gpus}
    if min_width is not None and any(w < min_width for w in widths):
        problems.append(f"link width x{min(widths)} below x{min_width}")
    if coherent:
        if len({g.node for g in gpus}) > 1:
            problems.append("spans nodes")
        elif len({g.switch_group for g in gpus}) > 1:
            problems.append("spans switch groups")
        if len(widths) > 1:
            problems.append("mixed link widths " + "/".join(f"x{w}" for w in sorted(widths)))
    return problems


def _device_rows(gpus: Sequence[GpuDevice]) -> list[dict]:
    return [{"id": g.id, "node": g.node, "link_width": g.pcie_link_width, "switch_group": g.switch_group}
            for g in sorted(gpus, key=lambda g: g.id)]


def free_coherent_set(snapshot: Snapshot, count: int, min_width: int) -> list[str]:
    """Ids of `count` free devices on one node and switch group, all at least `min_width` wide."""
    groups: dict[tuple[str, str], list[GpuDevice]] = {}
    for gpu in free_gpus(snapshot):
        if gpu.pcie_link_width >= min_width:
            groups.setdefault((gpu.node, gpu.switch_group), []).append(gpu)
    for key in sorted(groups):
        if count > 0 and len(groups[key]) >= count:
            return sorted(g.id for g in groups[key])[:count]
    return []


def _tp_width(workload: Workload, intent: Intent | None) -> int:
    if intent and intent.placement and intent.placement.min_link_width:
        return intent.placement.min_link_width
    return workload.gpu_requirement.min_link_width or DEFAULT_TP_WIDTH


def topology_mismatch(snapshot: Snapshot, intents: Intents, now: datetime) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        if not workload.tensor_parallel:
            continue
        width = _tp_width(workload, intent_of(intents, workload))
        replicas: list[dict[str, Any]] = []
        for pod in sorted(gpu_pods(snapshot, workload), key=lambda p: p.name):
            gpus = devices(snapshot, pod)
            problems = set_problems(gpus, min_width=width, coherent=True)
            if problems:
                replicas.append({"pod": pod.name, "devices": _device_rows(gpus), "problems": problems})
        if not replicas:
            continue
        count = workload.gpus_per_replica or len(replicas[0]["devices"])
        candidate = free_coherent_set(snapshot, count, width)
        findings.append(make(
            "topology_mismatch", workload.key,
            f"{workload.key} shards one model over GPUs that are not a coherent x{width} set "
            f"({'; '.join(replicas[0]['problems'])}); running at {workload.throughput_factor:.0%} throughput",
            now,
            throughput_factor=workload.throughput_factor,
            required_link_width=width,
            gpus_per_replica=count,
            replicas=replicas,
            coherent_set_free=bool(candidate),
            free_coherent_set=candidate,
        ))
    return findings


def drift(snapshot: Snapshot, intents: Intents, now: datetime) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        intent = intent_of(intents, workload)
        if intent is None:
            continue
        details: dict = {"aspects": [], "intent": intent.name, "replicas": workload.replicas}
        parts = []
        bounds = intent.replicas
        slept = workload.replicas == 0 and intent.idle is not None
        if snapshot.autoscaler_of(workload.ref) is not None:
            bounds = None  # an autoscaler owns the replicas: its own min/max are the bounds that count
        # With no max declared the ceiling is the replicas it runs now: only too few replicas is drift,
        # and raising them to the min is a change the policy sends to a person.
        top = bounds.max if bounds is not None and bounds.max is not None else None
        if bounds is not None and not slept and not (bounds.min <= workload.replicas and (top is None or workload.replicas <= top)):
            desired = max(workload.replicas, bounds.min) if top is None else min(max(workload.replicas, bounds.min), top)
            details["aspects"].append("replicas")
            details.update(min=bounds.min, max=top, desired_replicas=desired)
            parts.append(f"replicas {workload.replicas} outside {bounds.min}..{top if top is not None else workload.replicas}")
        placement = intent.placement
        if placement is not None:
            violations: list[dict[str, Any]] = []
            if placement.gpus is not None and placement.gpus != workload.gpus_per_replica:
                violations.append({"pod": None, "problems": [
                    f"{workload.gpus_per_replica} GPU(s) per replica, intent says {placement.gpus}"]})
            if not workload.tensor_parallel:  # tensor-parallel placement is topology_mismatch's
                for pod in sorted(gpu_pods(snapshot, workload), key=lambda p: p.name):
                    gpus = devices(snapshot, pod)
                    problems = set_problems(gpus, min_width=placement.min_link_width, coherent=placement.coherent)
                    if problems:
                        violations.append({"pod": pod.name, "devices": _device_rows(gpus), "problems": problems})
            if violations:
                details["aspects"].append("placement")
                details.update(placement_violations=violations, placement={
                    "gpus": placement.gpus, "min_link_width": placement.min_link_width,
                    "coherent": placement.coherent})
                parts.append("placement: " + violations[0]["problems"][0])
        if parts:
            findings.append(make("drift", workload.key, f"{workload.key} drifted from intent {intent.name}: "
                                 + "; ".join(parts), now, **details))
    return findings


def unschedulable_gpu(snapshot: Snapshot, idle: Sequence[Finding], now: datetime) -> list[Finding]:
    """Every GPU workload counts, governed by an intent or not; idle holders are named, not acted on."""
    findings = []
    for workload in snapshot.workloads:
        if workload.gpus_per_replica <= 0:
            continue
        stuck = sorted((p for p in snapshot.pods_of(workload.ref)
                        if p.phase == "Pending" and p.reason == "Unschedulable" and not waits_for_claim(p)),
                       key=lambda p: p.name)
        if not stuck:
            continue
        free = free_gpus(snapshot)
        findings.append(make(
            "unschedulable_gpu", workload.key,
            f"{len(stuck)} pod(s) of {workload.key} cannot be scheduled: each needs "
            f"{workload.gpus_per_replica} GPU(s), {len(free)} free in the cluster",
            now,
            pods=[p.name for p in stuck],
            gpus_per_replica=workload.gpus_per_replica,
            gpus_wanted=workload.gpus_per_replica * len(stuck),
            free_gpus=len(free),
            message=short(stuck[0].message),
            idle_holder_ids=sorted(f.id for f in idle),
            gpus_held_idle=sum(f.details.get("gpus_held", 0) for f in idle),
        ))
    return findings
