"""Intents declared on the workload itself, through `opsagent.dev/*` annotations.

What it is for: letting a team state a workload's desired state next to its
manifest instead of in a policy file:

    opsagent.dev/idle-after: 30m          -> idle.after
    opsagent.dev/idle-gpu-below: "5"      -> idle.gpu_util_below (percent)
    opsagent.dev/min-replicas: "0"        -> replicas.min
    opsagent.dev/max-replicas: "4"        -> replicas.max
    opsagent.dev/warm-replicas: "1"       -> wake.warm_replicas
    opsagent.dev/gpu-min-link-width: "16" -> placement.min_link_width
    opsagent.dev/gpu-coherent: "true"     -> placement.coherent
    opsagent.dev/protected: "true"        -> protected

What it must not do: widen what the policy allows. An annotation intent is
desired state only; the policy's rules still decide every tool call. Bad
values raise `AnnotationError` naming the workload, key and value.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from opsagent.model import Workload
from opsagent.policy.intents import Intent

PREFIX = "opsagent.dev/"
KEYS = (
    "idle-after", "idle-gpu-below", "min-replicas", "max-replicas", "warm-replicas",
    "gpu-min-link-width", "gpu-coherent", "protected",
)


class AnnotationError(ValueError):
    """An `opsagent.dev/*` annotation has a value that cannot be read."""


def _int(workload: Workload, key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise AnnotationError(f"{workload.key}: annotation {PREFIX}{key}={value!r} is not a whole number") from None


def _bool(workload: Workload, key: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise AnnotationError(f"{workload.key}: annotation {PREFIX}{key}={value!r} must be true or false")


def intents_from_annotations(workload: Workload) -> Intent | None:
    """The intent a workload's `opsagent.dev/*` annotations declare, or None when it has none."""
    found = {k[len(PREFIX):]: v for k, v in workload.annotations.items() if k.startswith(PREFIX)}
    found = {k: v for k, v in found.items() if k in KEYS}
    if not found:
        return None
    data: dict[str, Any] = {
        "name": f"annotations:{workload.key}",
        "selector": {"namespace": workload.ref.namespace, "names": [workload.ref.name]},
    }
    if "idle-after" in found:
        data["idle"] = {"after": found["idle-after"].strip()}
        if "idle-gpu-below" in found:
            try:
                data["idle"]["gpu_util_below"] = float(found["idle-gpu-below"])
            except ValueError:
                raise AnnotationError(f"{workload.key}: annotation {PREFIX}idle-gpu-below={found['idle-gpu-below']!r} "
                                      "is not a number") from None
    if "min-replicas" in found or "max-replicas" in found:
        data["replicas"] = {}
        if "min-replicas" in found:
            data["replicas"]["min"] = _int(workload, "min-replicas", found["min-replicas"])
        if "max-replicas" in found:
            data["replicas"]["max"] = _int(workload, "max-replicas", found["max-replicas"])
    if "warm-replicas" in found:
        data["wake"] = {"warm_replicas": _int(workload, "warm-replicas", found["warm-replicas"])}
    if "gpu-min-link-width" in found or "gpu-coherent" in found:
        data["placement"] = {}
        if "gpu-min-link-width" in found:
            data["placement"]["min_link_width"] = _int(workload, "gpu-min-link-width", found["gpu-min-link-width"])
        if "gpu-coherent" in found:
            data["placement"]["coherent"] = _bool(workload, "gpu-coherent", found["gpu-coherent"])
    if "protected" in found:
        data["protected"] = _bool(workload, "protected", found["protected"])
    try:
        return Intent.model_validate(data)
    except (ValidationError, ValueError) as exc:
        raise AnnotationError(f"{workload.key}: opsagent.dev annotations do not form a valid intent: {exc}") from exc
