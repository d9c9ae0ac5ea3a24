"""Autoscalers from the raw JSON of their list calls: HPAs (autoscaling/v2), KEDA ScaledObjects
(keda.sh/v1alpha1) and HTTPScaledObjects (http.keda.sh/v1alpha1). Pure, no I/O.

What it is for: turning each into an `Autoscaler` that names the workload whose replicas it owns,
its bounds, KEDA's paused-replicas annotation and the conditions that say whether it can act.
An HPA that KEDA made for a ScaledObject (owned by it) is left out: the ScaledObject is the one
to talk to. Request bodies for the two autoscaler writes live here too (pause, bounds).

What it must not do: talk to the API server, or trust anything but these objects for ownership.
"""

from __future__ import annotations

from typing import Any

from opsagent.model import PAUSED_REPLICAS, Autoscaler, WorkloadRef

KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KEDA_HTTP = ("http.keda.sh", "v1alpha1", "httpscaledobjects")
KEDA_DEFAULT_MAX = 100


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or () if c.get("type") == kind), {})


def _target(namespace: str, ref: dict[str, Any]) -> WorkloadRef | None:
    name = ref.get("name") or ref.get("deployment")
    kind = ref.get("kind") or "Deployment"
    if not name or kind not in ("Deployment", "StatefulSet"):
        return None
    return WorkloadRef(namespace=namespace, name=name, kind=kind)


def _flag(cond: dict[str, Any]) -> bool | None:
    return {"True": True, "False": False}.get(cond.get("status"))  # type: ignore[arg-type]


def hpa(obj: dict[str, Any]) -> Autoscaler | None:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if any(ref.get("kind") == "ScaledObject" for ref in meta.get("ownerReferences") or ()):
        return None  # KEDA's own HPA: the ScaledObject owns the replicas
    target = _target(meta.get("namespace", ""), spec.get("scaleTargetRef") or {})
    if target is None:
        return None
    able, active, limited = (_condition(status, k) for k in ("AbleToScale", "ScalingActive", "ScalingLimited"))
    failing = next((c for c in (able, active) if c.get("status") == "False"), None) or (
        limited if limited.get("status") == "True" else {})
    return Autoscaler(
        kind="HorizontalPodAutoscaler", namespace=meta.get("namespace", ""), name=meta.get("name", ""), target=target,
        min_replicas=max(0, _int(spec.get("minReplicas")) or 1), max_replicas=max(0, _int(spec.get("maxReplicas")) or 1),
        current_replicas=_int(status.get("currentReplicas")), desired_replicas=_int(status.get("desiredReplicas")),
        able_to_scale=_flag(able), scaling_active=_flag(active), scaling_limited=_flag(limited),
        reason=failing.get("reason"), message=failing.get("message"))


def scaled_object(obj: dict[str, Any], *, http: bool = False) -> Autoscaler | None:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    target = _target(meta.get("namespace", ""), spec.get("scaleTargetRef") or {})
    if target is None:
        return None
    bounds = spec.get("replicas") or {} if http else spec
    low = _int(bounds.get("min" if http else "minReplicaCount"))
    high = _int(bounds.get("max" if http else "maxReplicaCount"))
    ready = _condition(status, "Ready")
    paused = _int(((meta.get("annotations") or {}).get(PAUSED_REPLICAS)))
    return Autoscaler(
        kind="HTTPScaledObject" if http else "ScaledObject", namespace=meta.get("namespace", ""),
        name=meta.get("name", ""), target=target, min_replicas=max(0, low or 0),
        max_replicas=max(0, high if high is not None else KEDA_DEFAULT_MAX),
        paused_replicas=paused if paused is not None and paused >= 0 else None,
        able_to_scale=_flag(ready), reason=ready.get("reason") if ready.get("status") == "False" else None,
        message=ready.get("message") if ready.get("status") == "False" else None,
        hosts=tuple(str(h) for h in spec.get("hosts") or ()))


def autoscalers(hpas: list[dict[str, Any]], scaled: list[dict[str, Any]] | None,
                http: list[dict[str, Any]] | None) -> tuple[Autoscaler, ...]:
    found = [a for a in map(hpa, hpas) if a is not None]
    found += [a for a in (scaled_object(o) for o in scaled or ()) if a is not None]
    found += [a for a in (scaled_object(o, http=True) for o in http or ()) if a is not None]
    return tuple(sorted(found, key=lambda a: (a.namespace, a.name, a.kind)))


def pause_body(replicas: int | None) -> dict[str, Any]:
    """KEDA's pause: the paused-replicas annotation (None removes it, so KEDA scales again)."""
    return {"metadata": {"annotations": {PAUSED_REPLICAS: None if replicas is None else str(replicas)}}}


def bounds_body(kind: str, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    if kind == "HorizontalPodAutoscaler":
        return {"spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas}}
    if kind == "HTTPScaledObject":
        return {"spec": {"replicas": {"min": min_replicas, "max": max_replicas}}}
    return {"spec": {"minReplicaCount": min_replicas, "maxReplicaCount": max_replicas}}
