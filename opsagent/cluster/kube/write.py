"""Request bodies for every write the kube adapter sends. Pure functions, no I/O.

What it is for: building exactly the patch (or manifest) `kubectl` would send
for the same action, so tests can assert bodies without a server:
- scale: the scale subresource, `{"spec": {"replicas": N}}`;
- restart: `kubectl rollout restart`'s pod-template annotation
  `kubectl.kubernetes.io/restartedAt`;
- undo: `kubectl rollout undo`'s JSON patch that replaces `/spec/template` with
  the chosen ReplicaSet's template (minus `pod-template-hash`) and
  `/metadata/annotations` with the Deployment's, carrying the ReplicaSet's
  non-bookkeeping annotations (e.g. change-cause);
- template fields, GPU placement (pod-template annotations), cordon,
  annotations, and a new Deployment manifest.

What it must not do: send anything, or read the clock (callers pass `now`).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from opsagent.cluster.kube.gpus import GPU_RESOURCE
from opsagent.cluster.kube.read import COHERENT, MIN_LINK_WIDTH, REVISION, TENSOR_PARALLEL
from opsagent.cluster.port import Invalid, WorkloadSpec
from opsagent.model import GpuRequirement

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
POD_TEMPLATE_HASH = "pod-template-hash"
# kubectl's annotationsToSkip: bookkeeping annotations never copied from a ReplicaSet.
ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


def scale_body(replicas: int) -> dict[str, Any]:
    if replicas < 0:
        raise Invalid(f"replicas must be 0 or more, got {replicas}")
    return {"spec": {"replicas": replicas}}


def restart_body(now: datetime) -> dict[str, Any]:
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except (TypeError, ValueError):
        return 0


def pick_revision(replicasets: list[dict[str, Any]], to_revision: int | None) -> dict[str, Any]:
    """The ReplicaSet to roll back to: `to_revision`, or the one before the latest (kubectl's 0)."""
    by_revision = {r: rs for rs in replicasets if (r := _revision(rs)) > 0}
    if not by_revision:
        raise Invalid("no rollout history: the Deployment owns no ReplicaSet with a revision annotation")
    if to_revision:
        if to_revision not in by_revision:
            raise Invalid(f"unable to find revision {to_revision}; known revisions: {sorted(by_revision)}")
        return by_revision[to_revision]
    ordered = sorted(by_revision)
    if len(ordered) < 2:
        raise Invalid("no previous revision to roll back to (only revision %d exists)" % ordered[0])
    return by_revision[ordered[-2]]


def undo_body(deployment: dict[str, Any], replicaset: dict[str, Any]) -> list[dict[str, Any]]:
    """kubectl rollout undo's JSON patch (DeploymentRollbacker.Rollback)."""
    template = copy.deepcopy((replicaset.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(POD_TEMPLATE_HASH, None)
    current = (deployment.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in current.items() if k in ANNOTATIONS_TO_SKIP}
    for key, value in ((replicaset.get("metadata") or {}).get("annotations") or {}).items():
        if key not in ANNOTATIONS_TO_SKIP:
            annotations[key] = value
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


def same_template(deployment: dict[str, Any], replicaset: dict[str, Any]) -> bool:
    """kubectl skips a rollback to the template already running."""
    want = copy.deepcopy((replicaset.get("spec") or {}).get("template") or {})
    ((want.get("metadata") or {}).get("labels") or {}).pop(POD_TEMPLATE_HASH, None)
    return want == ((deployment.get("spec") or {}).get("template") or {})


def placement_annotations(requirement: GpuRequirement) -> dict[str, str | None]:
    """How a GPU placement requirement is written: pod-template annotations (None removes)."""
    return {
        MIN_LINK_WIDTH: str(requirement.min_link_width) if requirement.min_link_width else None,
        COHERENT: "true" if requirement.coherent else None,
    }


def template_body(
    deployment: dict[str, Any], *, image: str | None = None, gpus_per_replica: int | None = None,
    memory_mib: int | None = None, gpu_requirement: GpuRequirement | None = None,
) -> dict[str, Any]:
    """A strategic-merge patch of the first container (matched by name) and template annotations."""
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise Invalid("the workload's pod template has no containers")
    container: dict[str, Any] = {"name": containers[0].get("name")}
    if image is not None:
        if not image.strip():
            raise Invalid("image must not be empty")
        container["image"] = image
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if gpus_per_replica is not None:
        if gpus_per_replica < 0:
            raise Invalid(f"gpus_per_replica must be 0 or more, got {gpus_per_replica}")
        value = str(gpus_per_replica) if gpus_per_replica else None
        limits[GPU_RESOURCE] = requests[GPU_RESOURCE] = value
    if memory_mib is not None:
        if memory_mib <= 0:
            raise Invalid(f"memory_mib must be positive, got {memory_mib}")
        limits["memory"] = requests["memory"] = f"{memory_mib}Mi"
    if limits:
        container["resources"] = {"limits": limits, "requests": requests}
    template: dict[str, Any] = {}
    if len(container) > 1:
        template["spec"] = {"containers": [container]}
    if gpu_requirement is not None:
        template["metadata"] = {"annotations": placement_annotations(gpu_requirement)}
    if not template:
        raise Invalid("nothing to change: give image, gpus_per_replica, memory_mib or gpu_requirement")
    return {"spec": {"template": template}}


def annotate_body(annotations: dict[str, str | None]) -> dict[str, Any]:
    if not annotations:
        raise Invalid("no annotations given")
    return {"metadata": {"annotations": dict(annotations)}}


def cordon_body(cordoned: bool) -> dict[str, Any]:
    return {"spec": {"unschedulable": bool(cordoned)}}


def deployment_manifest(spec: WorkloadSpec) -> dict[str, Any]:
    if spec.ref.kind != "Deployment":
        raise Invalid(f"create_workload makes Deployments only, not {spec.ref.kind}")
    labels = {"app.kubernetes.io/name": spec.ref.name, **spec.labels}
    resources: dict[str, Any] = {}
    if spec.gpus_per_replica:
        resources.setdefault("limits", {})[GPU_RESOURCE] = str(spec.gpus_per_replica)
        resources.setdefault("requests", {})[GPU_RESOURCE] = str(spec.gpus_per_replica)
    if spec.memory_mib:
        resources.setdefault("limits", {})["memory"] = f"{spec.memory_mib}Mi"
        resources.setdefault("requests", {})["memory"] = f"{spec.memory_mib}Mi"
    template_annotations = {k: v for k, v in placement_annotations(spec.gpu_requirement).items() if v}
    if spec.tensor_parallel:
        template_annotations[TENSOR_PARALLEL] = "true"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.ref.name, "namespace": spec.ref.namespace, "labels": labels,
                     "annotations": {"app.kubernetes.io/managed-by": "opsagent"}},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": spec.ref.name}},
            "template": {
                "metadata": {"labels": labels, **({"annotations": template_annotations} if template_annotations else {})},
                "spec": {"containers": [{"name": spec.ref.name, "image": spec.image,
                                         **({"resources": resources} if resources else {})}]},
            },
        },
    }
