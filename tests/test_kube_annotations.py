"""Intents from `opsagent.dev/*` workload annotations, and the same read checks on a real cluster.

Spec: annotations map to an Intent scoped to exactly that workload; bad values
name the workload, key and value; no annotations means no intent. With
KUBECONFIG set, a real cluster's snapshot must parse (marked real_cluster).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from opsagent.cluster.kube import AnnotationError, intents_from_annotations
from opsagent.model import Workload, WorkloadRef


def workload(**annotations: str) -> Workload:
    return Workload(ref=WorkloadRef(namespace="llm", name="vllm"), annotations=annotations)


def test_full_set_of_annotations():
    intent = intents_from_annotations(workload(**{
        "opsagent.dev/idle-after": "30m", "opsagent.dev/idle-gpu-below": "5", "opsagent.dev/min-replicas": "0",
        "opsagent.dev/max-replicas": "4", "opsagent.dev/warm-replicas": "2", "opsagent.dev/gpu-min-link-width": "16",
        "opsagent.dev/gpu-coherent": "true", "other.io/x": "y"}))
    assert intent.idle.after == timedelta(minutes=30) and intent.idle.gpu_util_below == 5
    assert (intent.replicas.min, intent.replicas.max, intent.wake.warm_replicas) == (0, 4, 2)
    assert intent.placement.min_link_width == 16 and intent.placement.coherent
    assert intent.selector.matches(workload()) and not intent.selector.matches(
        Workload(ref=WorkloadRef(namespace="llm", name="other")))


def test_no_annotations_no_intent():
    assert intents_from_annotations(workload(**{"app": "x"})) is None


@pytest.mark.parametrize(("key", "value", "match"), [
    ("opsagent.dev/min-replicas", "two", "min-replicas='two' is not a whole number"),
    ("opsagent.dev/gpu-coherent", "maybe", "must be true or false"),
    ("opsagent.dev/idle-after", "soon", "llm/vllm"),
])
def test_bad_values_name_workload_and_key(key, value, match):
    with pytest.raises(AnnotationError, match=match):
        intents_from_annotations(workload(**{key: value}))


def test_min_above_max_is_refused():
    with pytest.raises(AnnotationError, match="above replicas.max"):
        intents_from_annotations(workload(**{"opsagent.dev/min-replicas": "5", "opsagent.dev/max-replicas": "2"}))


@pytest.mark.real_cluster
@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG not set: no real cluster to read")
def test_real_cluster_snapshot_parses():
    from opsagent.cluster.kube import KubeCluster

    kube = KubeCluster.from_config(in_cluster=False)
    snap = kube.snapshot()
    assert snap.source == "kube" and kube.requests <= 9
    for w in snap.workloads:
        assert w.rollout.status in ("progressing", "complete", "failed")
