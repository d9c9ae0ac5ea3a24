"""Specs that cannot be met: the `spec_conflict` detector.

A GPU workload whose pod template contradicts its declared intent, or asks
for something no node in the cluster has, stays Pending forever; no amount of
waiting, freeing or restarting helps. This reads the template and the intent
against the whole GPU inventory (every node, cordoned or not: capacity, not
what is free now) and names each contradiction:

- the template requires a PCIe link width that no GPU in the cluster has;
- the template requires a wider link than the intent's placement declares
  (a narrower one shows as `drift` once its pods hold GPUs);
- the intent itself asks for a link width no GPU has;
- more GPUs per replica than any node holds (or, for a coherent replica,
  than any one switch group holds at the required width).

The fix is architecture (the template or the intent), so the finding names
what would satisfy both, and the playbook proposes it for a person.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from opsagent.detect.common import Intents, intent_of, make
from opsagent.model import Finding, GpuDevice, Snapshot, Workload
from opsagent.policy.intents import Intent


def _largest_set(gpus: Sequence[GpuDevice], *, min_width: int, coherent: bool) -> int:
    """The most devices one replica could get: per node, or per (node, switch group) when coherent."""
    groups: dict[tuple[str, str], int] = {}
    for gpu in gpus:
        if gpu.pcie_link_width >= min_width:
            key = (gpu.node, gpu.switch_group if coherent else "")
            groups[key] = groups.get(key, 0) + 1
    return max(groups.values(), default=0)


class _Inventory:
    """The GPU inventory's answers, each computed once per pass (every workload asks the same few questions)."""

    def __init__(self, gpus: Sequence[GpuDevice]) -> None:
        self.gpus = gpus
        self.widest = max(g.pcie_link_width for g in gpus)
        self._rooms: dict[tuple[int, bool], int] = {}

    def room(self, width: int, coherent: bool) -> int:
        key = (width, coherent)
        if key not in self._rooms:
            self._rooms[key] = _largest_set(self.gpus, min_width=width, coherent=coherent)
        return self._rooms[key]


def _problems(workload: Workload, intent: Intent | None, inventory: _Inventory) -> tuple[list[str], dict]:
    widest = inventory.widest
    template = workload.gpu_requirement
    placement = intent.placement if intent is not None else None
    declared = placement.min_link_width if placement is not None else None
    problems: list[str] = []
    if template.min_link_width is not None and template.min_link_width > widest:
        problems.append(f"template requires x{template.min_link_width} links; the widest GPU link is x{widest}")
    if declared is not None and template.min_link_width is not None and template.min_link_width > declared:
        problems.append(f"template requires x{template.min_link_width}, intent {intent.name} declares x{declared}")  # type: ignore[union-attr]
    if declared is not None and declared > widest:
        problems.append(f"intent {intent.name} declares x{declared}; the widest GPU link is x{widest}")  # type: ignore[union-attr]
    width = min(template.min_link_width or 1, widest)
    coherent = template.coherent  # a tensor-parallel replica spread over groups still runs: topology_mismatch
    room = inventory.room(width, coherent)
    if workload.gpus_per_replica > room:
        where = "one switch group" if coherent else "any node"
        at = f" at x{width} or wider" if width > 1 else ""
        problems.append(f"{workload.gpus_per_replica} GPUs per replica; {where} has at most {room}{at}")
    satisfiable = declared is None or declared <= widest
    fix = {}
    if placement is not None and satisfiable and declared is not None and (template.min_link_width or 0) > declared:
        fix = {"min_link_width": declared, "coherent": bool(placement.coherent)}
    return problems, {"widest_link": widest, "largest_set": room, "proposed_placement": fix or None,
                      "intent_satisfiable": satisfiable}


def spec_conflict(snapshot: Snapshot, intents: Intents, now: datetime) -> list[Finding]:
    gpus = snapshot.gpus()
    if not gpus:
        return []  # a cluster without GPUs says nothing about what GPU templates could get
    inventory = _Inventory(gpus)
    findings = []
    for workload in snapshot.workloads:
        if workload.gpus_per_replica <= 0:
            continue
        intent = intent_of(intents, workload)
        problems, facts = _problems(workload, intent, inventory)
        if not problems:
            continue
        pending = sum(1 for p in snapshot.pods_of(workload.ref) if p.phase == "Pending")
        findings.append(make(
            "spec_conflict", workload.key,
            f"{workload.key} can never be scheduled as specified: " + "; ".join(problems),
            now,
            problems=problems,
            gpus_per_replica=workload.gpus_per_replica,
            required_link_width=workload.gpu_requirement.min_link_width,
            declared_link_width=intent.placement.min_link_width if intent and intent.placement else None,
            pending_pods=pending,
            intent=intent.name if intent else None,
            **facts,
        ))
    return findings


__all__ = ["spec_conflict"]
