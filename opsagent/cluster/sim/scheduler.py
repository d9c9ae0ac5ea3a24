"""GPU placement for the simulated cluster: which free devices a pod or job gets.

Pure over the engine's mutable node/GPU records: it reads them and returns a
choice; the engine binds the devices. It never mutates state and never reads a
clock.

Rules, as documented in docs/simulator.md:
- all devices of one pod come from one node that is ready and not cordoned;
- default (no requirement): first available, nodes in order, devices in order;
- `min_link_width`: only devices on links at least that wide;
- `coherent`: all devices from one PCIe switch group.

Throughput model for tensor-parallel replicas on the devices they got:
(narrowest link / widest link), halved again when the set spans switch groups.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from opsagent.cluster.sim.state import SimGpu, SimNode
from opsagent.model import GpuRequirement

NO_REQUIREMENT = GpuRequirement()


def choose_devices(
    nodes: Sequence[SimNode], count: int, requirement: GpuRequirement = NO_REQUIREMENT, *, start: int = 0
) -> tuple[SimNode, list[SimGpu]] | None:
    """The first node (from index `start`) that can give `count` devices meeting `requirement`, or None."""
    for i in range(start, len(nodes)):
        node = nodes[i]
        if node.free < count or not node.schedulable:
            continue
        picked = pick_on_node(node, count, requirement)
        if picked is not None:
            return node, picked
    return None


def pick_on_node(node: SimNode, count: int, requirement: GpuRequirement = NO_REQUIREMENT) -> list[SimGpu] | None:
    free: Iterable[SimGpu] = (g for g in node.gpus if g.holder is None)
    if requirement.min_link_width:
        free = (g for g in free if g.link >= requirement.min_link_width)
    free = list(free)
    if len(free) < count:
        return None
    if not requirement.coherent:
        return free[:count]
    groups: dict[str, list[SimGpu]] = {}
    for gpu in free:
        groups.setdefault(gpu.switch, []).append(gpu)
    for group in groups.values():
        if len(group) >= count:
            return group[:count]
    return None


def throughput_factor(devices: Sequence[SimGpu]) -> float:
    """Speed of a tensor-parallel replica on these devices: 1.0 on a matched, single-group set."""
    if len(devices) < 2:
        return 1.0
    widths = [g.link for g in devices]
    factor = min(widths) / max(widths)
    if len({g.switch for g in devices}) > 1:
        factor *= 0.5
    return round(factor, 4)


def unschedulable_message(nodes: Sequence[SimNode], count: int, requirement: GpuRequirement) -> str:
    """kube-scheduler's wording for why no node fits."""
    total = len(nodes)
    if total == 0:
        return "0/0 nodes are available: no nodes registered."
    down = sum(1 for n in nodes if not n.ready)
    cordoned = sum(1 for n in nodes if n.ready and n.cordoned)
    short = total - down - cordoned
    parts = []
    if down:
        parts.append(f"{down} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}")
    if cordoned:
        parts.append(f"{cordoned} node(s) were unschedulable")
    if short:
        what = "Insufficient nvidia.com/gpu"
        if requirement.coherent or requirement.min_link_width:
            what = "didn't match the GPU topology requirement or had Insufficient nvidia.com/gpu"
        parts.append(f"{short} {what}")
    return (
        f"0/{total} nodes are available: {', '.join(parts)}. preemption: 0/{total} nodes are available: "
        f"{total} No preemption victims found for incoming pod."
    )
