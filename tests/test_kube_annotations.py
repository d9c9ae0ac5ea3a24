"""Intents from `opsagent.dev/*` workload annotations, and the same read checks on a real cluster.

Spec: annotations map to an Intent scoped to exactly that workload; bad values
name the workload, key and value; no annotations means no intent. The one
intent lookup (`intent_for`) gives a matching policy intent first and the
annotation intent otherwise (only where a policy file opts the namespace in;
test_policy_narrowing.py holds those promises), and never raises on bad annotations: the kube
snapshot's notes name the workload and annotation instead. With KUBECONFIG
set, a real cluster's snapshot must parse (marked real_cluster).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from opsagent.cluster.kube import AnnotationError, intents_from_annotations
from opsagent.model import Workload, WorkloadRef
from opsagent.policy.intents import Intent, Selector, annotation_problem
from opsagent.policy.optin import AnnotationOptIn, OptIn
from opsagent.policy.resolve import IntentBook, intent_for

LLM_OPTS_IN = (OptIn(AnnotationOptIn(namespaces=("llm",), max_replicas=4, min_idle_after=timedelta(minutes=10)), file="p.yaml"),)


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
    ("opsagent.dev/idle-after", "soon", "llm/vllm: annotation opsagent.dev/idle-after='soon': bad duration"),
    ("opsagent.dev/warm-replicas", "0", "warm-replicas='0': Input should be greater than or equal to 1"),
    ("opsagent.dev/idle-gpu-below", "5", "idle-gpu-below='5' needs opsagent.dev/idle-after"),
])
def test_bad_values_name_workload_and_key(key, value, match):
    with pytest.raises(AnnotationError, match=match):
        intents_from_annotations(workload(**{key: value}))


def test_min_above_max_is_refused():
    with pytest.raises(AnnotationError, match="min-replicas='5', opsagent.dev/max-replicas='2': .*above replicas.max"):
        intents_from_annotations(workload(**{"opsagent.dev/min-replicas": "5", "opsagent.dev/max-replicas": "2"}))


def test_the_parser_lives_in_the_policy_package():
    from opsagent.policy.intents import intents_from_annotations as pure

    assert intents_from_annotations is pure


POLICY_INTENT = Intent(name="llm-policy", selector=Selector(namespace="llm", names=("vllm",)), protected=True)
OTHER_INTENT = Intent(name="elsewhere", selector=Selector(namespace="render"))


def test_a_matching_policy_intent_wins_over_annotations():
    annotated = workload(**{"opsagent.dev/idle-after": "30m"})
    assert intent_for((OTHER_INTENT, POLICY_INTENT), annotated) is POLICY_INTENT
    own = intent_for(IntentBook((OTHER_INTENT,), LLM_OPTS_IN), annotated)
    assert own.name == "annotations:llm/vllm" and own.idle.after == timedelta(minutes=30)
    assert intent_for((OTHER_INTENT,), annotated) is None  # no opt-in: reported, not obeyed
    assert intent_for(IntentBook((OTHER_INTENT,), LLM_OPTS_IN), workload(app="x")) is None


def test_bad_annotations_give_no_intent_and_a_problem_not_an_exception():
    bad = workload(**{"opsagent.dev/idle-after": "30m", "opsagent.dev/protected": "ture"})
    assert intent_for(IntentBook((), LLM_OPTS_IN), bad) is None  # never half an intent: a protected workload must not become sleepable
    assert annotation_problem(bad) == "llm/vllm: annotation opsagent.dev/protected='ture' must be true or false"
    assert annotation_problem(workload(**{"opsagent.dev/idle-after": "30m"})) is None


def test_a_bad_annotation_is_a_snapshot_note_not_a_crash():
    from datetime import datetime, timezone

    from opsagent.cluster.kube.read import RawLists, build_snapshot

    deployment = {"metadata": {"name": "vllm", "namespace": "llm",
                               "annotations": {"opsagent.dev/min-replicas": "two"}},
                  "spec": {"replicas": 1}, "status": {}}
    snap = build_snapshot(RawLists(deployments=[deployment]), now=datetime(2026, 1, 5, tzinfo=timezone.utc))
    assert snap.workload("llm/vllm") is not None
    assert any(n.startswith("llm/vllm: annotation opsagent.dev/min-replicas='two' is not a whole number") for n in snap.notes)


@pytest.mark.real_cluster
@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG not set: no real cluster to read")
def test_real_cluster_snapshot_parses():
    from opsagent.cluster.kube import KubeCluster

    kube = KubeCluster.from_config(in_cluster=False)
    snap = kube.snapshot()
    assert snap.source == "kube" and kube.requests <= 9
    for w in snap.workloads:
        assert w.rollout.status in ("progressing", "complete", "failed")
