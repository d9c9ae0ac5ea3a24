"""Contract: PodDisruptionBudgets are read in one list call, and evictions go through the Eviction API.

Object shapes from the Kubernetes policy/v1 reference (PodDisruptionBudget, Eviction) and the
API server's answer when a budget forbids an eviction (429 TooManyRequests with a
DisruptionBudget cause):
- a PDB becomes a `DisruptionBudget` with its matchLabels and the numbers its status reports;
- `evict_pod` POSTs a policy/v1 Eviction to pods/NAME/eviction, with dryRun=All on a dry run;
- a 429 from the Eviction API is `DisruptionBlocked`, asked once and never retried (a budget
  does not change in the seconds a retry waits), and it counts as one request.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from kube_harness import Emulator, StatusServer

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.disruption import budgets, eviction_body
from opsagent.cluster.port import DisruptionBlocked, Unavailable
from opsagent.model import Pod

NOW = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)

PDB = {
    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
    "metadata": {"name": "llm", "namespace": "inference"},
    "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "llm"}}},
    "status": {"currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 1,
               "observedGeneration": 1},
}
TOO_MANY = {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": "Cannot evict pod as it would violate the pod's disruption budget.",
    "reason": "TooManyRequests",
    "details": {"causes": [{"reason": "DisruptionBudget",
                            "message": "The disruption budget llm needs 1 healthy pods and has 1 currently"}]},
    "code": 429,
}


def kube(url: str) -> KubeCluster:
    return KubeCluster(api_client_for_url(url), clock=VirtualClock(NOW))


def test_a_pdb_becomes_a_budget_that_selects_by_match_labels():
    (budget,) = budgets([PDB, {"metadata": {}}])
    assert (budget.key, budget.min_available, budget.disruptions_allowed, budget.desired_healthy) == ("inference/llm", 1, 0, 1)
    pod = Pod(namespace="inference", name="llm-1", labels={"app.kubernetes.io/name": "llm", "x": "y"})
    assert budget.selects(pod) and not budget.selects(pod.model_copy(update={"namespace": "render"}))
    assert budgets([{**PDB, "spec": {"maxUnavailable": "25%", "selector": {}}}])[0].max_unavailable == "25%"


def test_snapshot_reads_budgets_in_one_list_call():
    with Emulator() as emu:
        emu.handler.resources["policy/v1/poddisruptionbudgets"] = {"kind": "PodDisruptionBudget", "namespaced": True}
        emu.handler.objects["policy/v1/poddisruptionbudgets", "inference", "llm"] = PDB
        snap = kube(emu.url).snapshot()
        paths = [r["path"] for r in emu.requests()]
    assert [b.key for b in snap.disruption_budgets] == ["inference/llm"]
    assert paths.count("/apis/policy/v1/poddisruptionbudgets") == 1


def test_evict_posts_a_policy_v1_eviction():
    with StatusServer([(201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201})]) as srv:
        kube(srv.url).evict_pod(namespace="inference", name="llm-1", dry_run=True)
    (sent,) = srv.seen
    assert (sent["method"], sent["path"]) == ("POST", "/api/v1/namespaces/inference/pods/llm-1/eviction")
    assert sent["body"] == eviction_body("inference", "llm-1") and sent["params"].get("dryRun") == "All"


def test_a_budget_refusal_is_disruption_blocked_asked_once():
    with StatusServer([(429, TOO_MANY)]) as srv:
        cluster = kube(srv.url)
        with pytest.raises(DisruptionBlocked) as err:
            cluster.evict_pod(namespace="inference", name="llm-1")
    assert "violate the pod's disruption budget" in err.value.message and err.value.retryable
    assert len(srv.seen) == 1 and cluster.requests == 1


def test_other_unavailability_comes_back_after_one_attempt():
    with StatusServer([(503, {"kind": "Status", "code": 503, "message": "etcd leader changed"}),
                       (201, {"kind": "Status", "status": "Success", "code": 201})]) as srv:
        cluster = kube(srv.url)
        with pytest.raises(Unavailable):
            cluster.evict_pod(namespace="inference", name="llm-1")
    assert len(srv.seen) == 1   # an eviction is not retried blindly: the drain or the caller decides
