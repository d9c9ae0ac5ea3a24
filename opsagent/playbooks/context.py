"""What a playbook sees: the finding and its target workload as plain dicts.

Used for CEL (`when`, `verify`) and for step templates. Only JSON types, so
CEL and templating behave the same everywhere. The target leaves out
annotations and messages: free text from the cluster is data, never a place
a playbook takes instructions or argument values from. Pure, no I/O.
"""

from __future__ import annotations

from typing import Any

from opsagent.model import Finding, Snapshot, Workload


def finding_context(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "kind": finding.kind,
        "subject": finding.subject,
        "summary": finding.summary,
        "severity": finding.severity,
        "details": dict(finding.details),
    }


def workload_context(workload: Workload, snapshot: Snapshot) -> dict[str, Any]:
    pods = snapshot.pods_of(workload.ref)
    return {
        "namespace": workload.ref.namespace,
        "name": workload.ref.name,
        "kind": workload.ref.kind,
        "key": workload.key,
        "replicas": workload.replicas,
        "ready_replicas": workload.ready_replicas,
        "revision": workload.revision,
        "image": workload.image,
        "gpus_per_replica": workload.gpus_per_replica,
        "gpus_held": sum(len(p.gpu_ids) for p in pods),
        "pods": len(pods),
        "tensor_parallel": workload.tensor_parallel,
        "throughput_factor": workload.throughput_factor,
        "request_rate": workload.request_rate,
        "gpu_utilization": workload.gpu_utilization,
        "rollout": {
            "status": workload.rollout.status,
            "reason": workload.rollout.reason,
            "revision": workload.rollout.revision,
        },
        "labels": dict(workload.labels),
    }


def target_context(finding: Finding, snapshot: Snapshot | None) -> dict[str, Any]:
    """The subject workload as a dict, or {} when the subject is not a workload in the snapshot."""
    if snapshot is None or "/" not in finding.subject:
        return {}
    workload = snapshot.workload(finding.subject)
    return workload_context(workload, snapshot) if workload is not None else {}


def playbook_context(finding: Finding, snapshot: Snapshot | None) -> dict[str, Any]:
    found = finding_context(finding)
    return {"finding": found, "target": target_context(finding, snapshot), "details": found["details"]}
