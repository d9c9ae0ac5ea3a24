"""PodDisruptionBudgets (policy/v1) from the raw JSON of their list call, and the Eviction body. Pure, no I/O.

What it is for: a `DisruptionBudget` per PDB with its `matchLabels` selector, its minAvailable or
maxUnavailable, and the numbers its status reports (the disruption controller's own count of
what may be evicted now); and the `policy/v1` Eviction that `kubectl drain` posts.

What it must not do: talk to the API server, or compute disruptions itself (the status says).
"""

from __future__ import annotations

from typing import Any

from opsagent.model import DisruptionBudget


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _bound(value: Any) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    text = str(value)
    return int(text) if text.isdigit() else text[:20]


def budget(obj: dict[str, Any]) -> DisruptionBudget | None:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if not meta.get("namespace") or not meta.get("name"):
        return None
    selector = spec.get("selector") or {}
    return DisruptionBudget(
        namespace=meta["namespace"], name=meta["name"],
        selector={str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()},
        min_available=_bound(spec.get("minAvailable")), max_unavailable=_bound(spec.get("maxUnavailable")),
        disruptions_allowed=_count(status.get("disruptionsAllowed")), current_healthy=_count(status.get("currentHealthy")),
        desired_healthy=_count(status.get("desiredHealthy")), expected_pods=_count(status.get("expectedPods")))


def budgets(items: list[dict[str, Any]]) -> tuple[DisruptionBudget, ...]:
    found = [b for b in map(budget, items) if b is not None]
    return tuple(sorted(found, key=lambda b: (b.namespace, b.name)))


def eviction_body(namespace: str, name: str) -> dict[str, Any]:
    """What `kubectl drain` posts to pods/NAME/eviction."""
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
