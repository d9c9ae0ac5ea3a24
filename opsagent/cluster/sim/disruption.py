"""PodDisruptionBudgets and evictions in the simulator.

What it is for: computing each budget's status the way the disruption controller does
(healthy = ready pods it selects; required = `min_available`, or the pods expected minus
`max_unavailable`; allowed = healthy - required, never below zero; expected = the replicas
of the workloads whose pods it selects) and evicting a pod the way the Eviction API does:
refused with 429 naming the budget when any budget selecting it allows no disruption,
otherwise the pod goes and its workload replaces it (on a schedulable node).

What it must not do: read the system clock, or evict anything a budget protects.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from opsagent.model import DisruptionBudget

if TYPE_CHECKING:
    from opsagent.cluster.sim.engine import SimCluster
    from opsagent.cluster.sim.scenario import DisruptionBudgetDecl
    from opsagent.cluster.sim.state import SimPod


def _selects(decl: "DisruptionBudgetDecl", pod: "SimPod") -> bool:
    return pod.namespace == decl.namespace and all(pod.labels.get(k) == v for k, v in decl.selector.items())


def budgets(sim: "SimCluster", namespaces: Collection[str] | None = None) -> tuple[DisruptionBudget, ...]:
    """The budgets as the view shows them; only those in `namespaces` when given."""
    out = []
    for decl in sim.scenario.disruption_budgets:
        if namespaces is not None and decl.namespace not in namespaces:
            continue
        pods = [p for w in sim.workloads.values() for p in w.pods if _selects(decl, p)]
        owners = {p.workload for p in pods}
        expected = sum(sim.workloads[key].replicas for key in owners) if owners else len(pods)
        healthy = sum(1 for p in pods if p.ready)
        required = decl.min_available if decl.min_available is not None else max(0, expected - (decl.max_unavailable or 0))
        out.append(DisruptionBudget(
            namespace=decl.namespace, name=decl.name, selector=dict(decl.selector), min_available=decl.min_available,
            max_unavailable=decl.max_unavailable, disruptions_allowed=max(0, healthy - required),
            current_healthy=healthy, desired_healthy=required, expected_pods=expected))
    return tuple(out)


def blocking(sim: "SimCluster", pod: "SimPod") -> DisruptionBudget | None:
    """The first budget that selects `pod` and allows no disruption now (None: it may be evicted)."""
    by_key = {b.key: b for b in budgets(sim)}
    for decl in sim.scenario.disruption_budgets:
        budget = by_key[f"{decl.namespace}/{decl.name}"]
        if _selects(decl, pod) and budget.disruptions_allowed < 1:
            return budget
    return None
