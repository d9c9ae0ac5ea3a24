"""Containers that run out of memory: the `out_of_memory` detector.

Two kinds of memory, told apart by how the container ended:

- **host memory**: the kernel killed the container at its memory limit (`OOMKilled` as the
  last termination). The finding names the container, its request and limit, and proposes a
  limit half as large again (rounded up to a GiB) for the workload's main container; a person
  decides (`set_resources` is architectural).
- **GPU memory**: the process ended with CUDA's out-of-memory error in its termination
  message. What the message reports (what it tried to allocate, what it held) is compared
  with what one device of the pod has, read from the node, to say whether the model can fit
  one device at all (per model: shard it over more GPUs) or fits but found the device full
  (per device: another process, or the server's own cache reservation; more GPUs would not
  help). Only the first is proposed as a change: twice the GPUs per replica, for a
  tensor-parallel workload, if a node has that many.

A raise that a person approved rolls out a new revision; when that one runs out of memory
too (the need was more than half as large again), the finding stays this one, with the next
proposal from the new limit: it is not a failed release, and rolling it back would undo the
raise (`memory_fix_rolling`).

Cluster text only narrows: a termination message picks between those two readings and is
quoted cut short; every proposed number comes from the pod template and the node, never from
the message, so a message asking for a terabyte proposes nothing of the kind.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from opsagent.detect.common import History, attempts_for, make, short
from opsagent.detect.incident import release_started
from opsagent.model import MAX_GPUS_PER_REPLICA, MAX_MEMORY_MIB, Container, Finding, Pod, Snapshot, Termination, Workload

OOM_KILLED = "OOMKilled"
_CUDA_OOM = re.compile(r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError", re.IGNORECASE)
# A size as CUDA prints it: at most 12 digits, and never from the middle of a longer number, so a message of a
# few thousand digits is read in one pass (unbounded, each start position rescanned them all) and reports nothing.
_QTY = r"(?<![0-9.])([0-9]{1,12}(?:\.[0-9]{1,6})?)\s*([KMGT]i?B)"
_TRIED = re.compile(r"Tried to allocate " + _QTY, re.IGNORECASE)
_CAPACITY = re.compile(r"total capacity of " + _QTY + "|" + _QTY + r" total capacity", re.IGNORECASE)
_IN_USE = re.compile(r"this process has " + _QTY + r" memory in use|" + _QTY + r" already allocated", re.IGNORECASE)
_TO_MIB = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 * 1024}
GROWTH = 1.5  # a new limit is the old one times this, rounded up to a GiB

Memory = Literal["host", "gpu"]


def _mib(match: re.Match[str] | None) -> float | None:
    if match is None:
        return None
    number, unit = next((g for g in zip(match.groups()[::2], match.groups()[1::2]) if g[0] is not None), (None, None))
    if number is None or unit is None:
        return None
    return round(float(number) * _TO_MIB[unit[0].upper()], 1)


def cause(pod: Pod) -> tuple[Termination, Memory] | None:
    """The termination that says `pod` ran out of memory, and which memory; None when none does."""
    for ended in pod.terminations:
        if ended.reason == OOM_KILLED:
            return ended, "host"
        if ended.message and _CUDA_OOM.search(ended.message):
            return ended, "gpu"
    return None


def reported(message: str | None) -> dict[str, float | None]:
    """What a CUDA out-of-memory message reports, in MiB (None where it says nothing): data for a person."""
    text = message or ""
    return {"tried_mib": _mib(_TRIED.search(text)), "in_use_mib": _mib(_IN_USE.search(text)),
            "capacity_mib": _mib(_CAPACITY.search(text))}


def proposed_limit(limit_mib: int) -> int | None:
    """The limit half as large again, rounded up to a GiB; None when that is more than set_resources may set."""
    if limit_mib > MAX_MEMORY_MIB:
        return None
    proposal = int(math.ceil(limit_mib * GROWTH / 1024.0) * 1024)
    return proposal if proposal <= MAX_MEMORY_MIB else None


def _container(workload: Workload, name: str) -> tuple[Container | None, bool]:
    """The template's container of that name, and whether it is the main (first) one."""
    for i, spec in enumerate(workload.containers):
        if spec.name == name:
            return spec, i == 0
    return None, False


def _host(workload: Workload, ended: Termination) -> dict[str, Any]:
    spec, main = _container(workload, ended.container)
    limit = spec.memory_limit_mib if spec else None
    proposal = proposed_limit(limit) if limit and main else None
    return {"limit_mib": limit, "request_mib": spec.memory_request_mib if spec else None,
            "main_container": main, "proposed_memory_mib": proposal}


def _device_mib(snapshot: Snapshot, pod: Pod) -> int | None:
    """Memory of the smallest device the pod holds (else of its node's), as the node reports it."""
    held = [d.memory_mib for d in (snapshot.gpu(i) for i in pod.gpu_ids) if d is not None and d.memory_mib]
    if not held and pod.node and (node := snapshot.node(pod.node)) is not None:
        held = [g.memory_mib for g in node.gpus if g.memory_mib]
    return min(held) if held else None


def _gpu(snapshot: Snapshot, workload: Workload, pod: Pod, ended: Termination) -> dict[str, Any]:
    said = reported(ended.message)
    device = _device_mib(snapshot, pod)
    need = (said["in_use_mib"] or 0.0) + said["tried_mib"] if said["tried_mib"] is not None else None
    fits: bool | None = None if need is None or device is None else need <= device
    gpus = workload.gpus_per_replica
    largest = max((len(n.gpus) for n in snapshot.nodes), default=0)
    proposal = None
    if fits is False and workload.tensor_parallel and gpus >= 1 and gpus * 2 <= min(largest, MAX_GPUS_PER_REPLICA):
        proposal = gpus * 2
    return {"device_memory_mib": device, "reported": said, "need_on_device_mib": need, "fits_one_device": fits,
            "gpus_per_replica": gpus, "tensor_parallel": workload.tensor_parallel, "largest_node_gpus": largest,
            "proposed_gpus_per_replica": proposal}


def _summary(key: str, memory: Memory, facts: dict[str, Any], pods: int, restarts: int) -> str:
    head = f"{pods} pod(s) of {key} ran out of {'memory' if memory == 'host' else 'GPU memory'} ({restarts} restarts)"
    if memory == "host":
        if facts["limit_mib"] is None:
            return f"{head}: OOMKilled with no memory limit on the container"
        tail = (f"; propose {facts['proposed_memory_mib']} MiB as its limit and request" if facts["proposed_memory_mib"] else
                f"; half as much again is more than set_resources may set ({MAX_MEMORY_MIB} MiB): nothing proposed"
                if facts["main_container"] and facts["limit_mib"] else "")
        return f"{head}: OOMKilled at its {facts['limit_mib']} MiB limit{tail}"
    if facts["fits_one_device"] is False:
        tail = (f"; propose {facts['proposed_gpus_per_replica']} GPUs per replica"
                if facts["proposed_gpus_per_replica"] else "")
        return (f"{head}: needs about {facts['need_on_device_mib']:.0f} MiB on a device of "
                f"{facts['device_memory_mib']} MiB, so the model does not fit {facts['gpus_per_replica']} GPU(s){tail}")
    if facts["fits_one_device"]:
        return f"{head}: the model fits one {facts['device_memory_mib']} MiB device, but the device was full"
    return f"{head}: CUDA out of memory"


def memory_fix_rolling(workload: Workload, history: History | None) -> bool:
    """Whether the revision rolling out now carries a resource change made for this workload's out_of_memory
    finding (the same image since before that write): its pods running out of memory again ask for the next
    raise, never for a restart or a rollback that would undo the first."""
    started = release_started(workload, workload.rollout.revision or workload.revision)
    if started is None:
        return False
    seen = attempts_for(history, f"out_of_memory:{workload.key}")
    return any(a.tool == "set_resources" and a.at >= started for a in seen.actions)


def out_of_memory(snapshot: Snapshot, now: datetime, history: History | None = None) -> list[Finding]:
    found = []
    for workload in snapshot.workloads:
        fixing = memory_fix_rolling(workload, history)
        if workload.rollout.status != "complete" and not fixing:
            continue  # a release that fails to start belongs to rollout_failed (its rollback restores what ran)
        revision = workload.rollout.revision or workload.revision if fixing else workload.revision
        hit = sorted(((p, c) for p in snapshot.pods_of(workload.ref)
                      if p.revision == revision and (c := cause(p)) is not None),
                     key=lambda pc: (-pc[0].restarts, pc[0].name))
        if not hit:
            continue
        worst, (ended, memory) = hit[0]
        facts = _host(workload, ended) if memory == "host" else _gpu(snapshot, workload, worst, ended)
        restarts = sum(p.restarts for p, _ in hit)
        found.append(make(
            "out_of_memory", workload.key, _summary(workload.key, memory, facts, len(hit), restarts), now,
            memory=memory, pods=[p.name for p, _ in hit], worst_pod=worst.name, container=ended.container,
            restarts=restarts, exit_code=ended.exit_code, reason=short(ended.reason, 100),
            message=short(ended.message), **facts))
    return found


__all__ = ["cause", "memory_fix_rolling", "out_of_memory", "proposed_limit", "reported"]
