"""GPU jobs, derived from the pods a snapshot already lists. Pure, no I/O.

What it is for: the `jobs_waiting` detector needs the GPU work queued behind
idle workloads. On a real cluster that work is batch/v1 Jobs; their pods carry
an ownerReference of kind Job, so the Pods list alone says everything needed,
without a list call for Jobs. One `Job` per owning Job, from its pods that
request GPUs (device-plugin `nvidia.com/gpu` or allocated DRA claims):

- any pod Running, or Pending on a node (starting) -> running;
- else any pod Pending without a node (Unschedulable, or not scheduled yet) -> queued;
- else any pod Succeeded -> succeeded; else (all Failed) -> failed.

`gpus` is the most any one pod of the Job asks for: what must fit on one node.
`submitted_at` is the first pod's creation time (the Job's own is not listed).

What it must not do: call the API, or count pods that ask for no GPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from opsagent.cluster.kube import gpus as gpu_parse
from opsagent.cluster.kube.timestamps import parse_time
from opsagent.model import Job, Pod

BATCH_API = "batch/"


def job_owner(item: dict[str, Any]) -> str | None:
    """The name of the batch Job owning this raw pod, or None."""
    for ref in (item.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Job" and str(ref.get("apiVersion", "")).startswith(BATCH_API):
            return ref.get("name")
    return None


def _finished(item: dict[str, Any]) -> datetime | None:
    ends = [parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for cs in (item.get("status") or {}).get("containerStatuses") or []]
    found = [e for e in ends if e is not None]
    return max(found) if found else None


def _state(pods: Sequence[Pod]) -> str:
    if any(p.phase == "Running" or (p.phase == "Pending" and p.node) for p in pods):
        return "running"
    if any(p.phase == "Pending" for p in pods):
        return "queued"
    if any(p.phase == "Succeeded" for p in pods):
        return "succeeded"
    return "failed"


JobMember = tuple[str, dict[str, Any], Pod, int]
"""One pod of a Job: (Job name, the pod's raw JSON, the `Pod` built from it, GPUs its spec requests)."""


def jobs_from_pods(items: Sequence[dict[str, Any]], pods: Sequence[Pod]) -> tuple[Job, ...]:
    """The GPU Jobs behind `pods`; `items` are the same pods' raw JSON, in the same order."""
    members = []
    for item, pod in zip(items, pods):
        owner = job_owner(item)
        if owner is not None:
            members.append((owner, item, pod, gpu_parse.readable_gpus(item.get("spec") or {}, "", {})))
    return jobs_from_members(members)


def jobs_from_members(members: Iterable[JobMember]) -> tuple[Job, ...]:
    """The GPU Jobs formed by Job-owned pods, given in pod-list order (see `JobMember`).

    For callers that already know each pod's owner and GPU request (the snapshot
    builder does), so nothing is read twice."""
    grouped: dict[tuple[str, str], list[tuple[dict[str, Any], Pod, int]]] = {}
    for owner, item, pod, requested in members:
        wanted = max(requested, len(pod.gpu_ids))
        if wanted <= 0:
            continue
        grouped.setdefault((pod.namespace, owner), []).append((item, pod, wanted))
    jobs = []
    for (namespace, name), members in sorted(grouped.items()):
        pods_of = [pod for _, pod, _ in members]
        state = _state(pods_of)
        active = [pod for pod in pods_of if pod.phase == "Running" or (pod.phase == "Pending" and pod.node)]
        created = [t for t in (parse_time((item.get("metadata") or {}).get("creationTimestamp")) for item, _, _ in members) if t]
        started = [pod.started_at for pod in active if pod.started_at is not None]
        finished = [t for t in (_finished(item) for item, _, _ in members) if t] if state in ("succeeded", "failed") else []
        jobs.append(Job(
            namespace=namespace,
            name=name,
            gpus=max(wanted for _, _, wanted in members),
            state=state,  # type: ignore[arg-type]
            submitted_at=min(created) if created else None,
            started_at=min(started) if started else None,
            finished_at=max(finished) if finished else None,
            node=active[0].node if active else None,
            gpu_ids=tuple(g for pod in active for g in pod.gpu_ids),
        ))
    return tuple(jobs)
