"""Contract: the kube adapter reads autoscalers and writes to them, never to the replicas they own.

Against kmock's emulator, with object shapes from the Kubernetes autoscaling/v2 and KEDA
(keda.sh/v1alpha1, http.keda.sh/v1alpha1) reference docs:
- an HPA, a ScaledObject and an HTTPScaledObject each become an `Autoscaler` naming its target;
  the HPA KEDA makes for a ScaledObject (owned by it) does not;
- an HPA's failing conditions are kept (ScalingActive False, FailedGetResourceMetric);
- a ScaledObject's paused-replicas annotation is read;
- pausing and resuming a ScaledObject is a merge patch of that annotation on the ScaledObject, and
  bounds on an HPA are a patch of minReplicas/maxReplicas; none touches a Deployment.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from kube_harness import Emulator

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.autoscalers import autoscalers, pause_body

NOW = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)

HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "embedder", "namespace": "inference"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "embedder"},
             "minReplicas": 1, "maxReplicas": 4,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]},
    "status": {"currentReplicas": 1, "desiredReplicas": 1, "conditions": [
        {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
         "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu"}]},
}
KEDA_HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "keda-hpa-llm", "namespace": "inference",
                 "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "llm", "uid": "u1"}]},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"}, "minReplicas": 1, "maxReplicas": 2},
}
SCALED_OBJECT = {
    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
    "metadata": {"name": "llm", "namespace": "inference", "annotations": {"autoscaling.keda.sh/paused-replicas": "0"}},
    "spec": {"scaleTargetRef": {"name": "llm"}, "minReplicaCount": 0, "maxReplicaCount": 2, "cooldownPeriod": 300,
             "triggers": [{"type": "prometheus", "metadata": {"serverAddress": "http://prometheus:9090",
                                                              "query": "sum(rate(vllm:request_success_total[2m]))",
                                                              "threshold": "5"}}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Active", "status": "False"},
                              {"type": "Paused", "status": "True"}]},
}
HTTP_SCALED_OBJECT = {
    "apiVersion": "http.keda.sh/v1alpha1", "kind": "HTTPScaledObject",
    "metadata": {"name": "chat-ui", "namespace": "chat"},
    "spec": {"hosts": ["chat.internal.example"], "scaleTargetRef": {"name": "chat-ui", "kind": "Deployment",
                                                                    "apiVersion": "apps/v1", "service": "chat-ui", "port": 8080},
             "replicas": {"min": 0, "max": 3}},
}


def test_parse_each_kind_and_leave_out_kedas_own_hpa():
    found = {a.label: a for a in autoscalers([HPA, KEDA_HPA], [SCALED_OBJECT], [HTTP_SCALED_OBJECT])}
    assert set(found) == {"HorizontalPodAutoscaler inference/embedder", "ScaledObject inference/llm",
                          "HTTPScaledObject chat/chat-ui"}
    hpa = found["HorizontalPodAutoscaler inference/embedder"]
    assert (hpa.min_replicas, hpa.max_replicas, hpa.scaling_active, hpa.reason) == (1, 4, False, "FailedGetResourceMetric")
    keda = found["ScaledObject inference/llm"]
    assert (keda.target.name, keda.min_replicas, keda.paused_replicas, keda.pausable) == ("llm", 0, 0, True)
    assert found["HTTPScaledObject chat/chat-ui"].hosts == ("chat.internal.example",)


@pytest.fixture()
def emu():
    with Emulator() as emulator:
        for plural, kind in (("keda.sh/v1alpha1/scaledobjects", "ScaledObject"),
                             ("http.keda.sh/v1alpha1/httpscaledobjects", "HTTPScaledObject")):
            emulator.handler.resources[plural] = {"kind": kind, "namespaced": True}
        yield emulator


def test_snapshot_reads_autoscalers_one_list_call_per_kind(emu):
    for obj in (HPA, KEDA_HPA, SCALED_OBJECT, HTTP_SCALED_OBJECT):
        emu.seed(obj)
    kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))
    snap = kube.snapshot()
    assert {a.label for a in snap.autoscalers} == {"HorizontalPodAutoscaler inference/embedder",
                                                   "ScaledObject inference/llm", "HTTPScaledObject chat/chat-ui"}
    assert snap.autoscaler_of("inference/llm").kind == "ScaledObject"
    paths = [r["path"] for r in emu.requests()]
    for path in ("/apis/autoscaling/v2/horizontalpodautoscalers", "/apis/keda.sh/v1alpha1/scaledobjects",
                 "/apis/http.keda.sh/v1alpha1/httpscaledobjects"):
        assert paths.count(path) == 1


def test_pause_and_resume_patch_the_scaled_object_annotation_only(emu):
    emu.seed(SCALED_OBJECT)
    kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))
    kube.pause_autoscaler(kind="ScaledObject", namespace="inference", name="llm", replicas=None)
    resumed = emu.stored("keda.sh/v1alpha1/scaledobjects", "inference", "llm")
    kube.pause_autoscaler(kind="ScaledObject", namespace="inference", name="llm", replicas=0, dry_run=True)
    writes = [r for r in emu.requests() if r["method"] != "GET"]
    assert [(r["method"], r["path"], r["content_type"]) for r in writes] == [
        ("PATCH", "/apis/keda.sh/v1alpha1/namespaces/inference/scaledobjects/llm", "application/merge-patch+json")] * 2
    bodies = [json.loads(r["body"]) if isinstance(r["body"], (str, bytes)) else r["body"] for r in writes]
    assert bodies == [pause_body(None), pause_body(0)]
    assert writes[1]["params"].get("dryRun") == "All"
    assert "autoscaling.keda.sh/paused-replicas" not in (resumed["metadata"].get("annotations") or {})


def test_hpa_bounds_patch_the_hpa(emu):
    emu.seed(HPA)
    kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))
    kube.set_autoscaler_bounds(kind="HorizontalPodAutoscaler", namespace="inference", name="embedder",
                               min_replicas=2, max_replicas=6)
    stored = emu.stored("autoscaling/v2/horizontalpodautoscalers", "inference", "embedder")
    assert (stored["spec"]["minReplicas"], stored["spec"]["maxReplicas"]) == (2, 6)
