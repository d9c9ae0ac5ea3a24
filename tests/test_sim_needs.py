"""The simulator's model of what pods need: ConfigMaps and Secrets, claims, quotas, Services.

Spec:
- a workload that needs a ConfigMap or Secret that does not exist has pods waiting with
  CreateContainerConfigError and the kubelet's message, never ready; a timeline `config` that
  creates it lets them start; the snapshot lists the objects by name only;
- a claim that fails stays Pending, says why in its events (again after a while, not every tick),
  and keeps the pods that need it unscheduled with the scheduler's wording;
- a GPU quota caps the pods of a namespace and the ReplicaSet reports FailedCreate;
- a Service's endpoints are the pods its selector matches; its workloads are those whose labels match;
- a quota that limits nothing is a scenario error naming the field.
"""

from __future__ import annotations

import pytest
import yaml
from sim_harness import node, workload

from opsagent.cluster.sim import SimCluster
from opsagent.cluster.sim.scenario import ScenarioError, parse_scenario

EMB = "inference/embedder"


def sim_of(**fields) -> SimCluster:
    return SimCluster(parse_scenario(yaml.safe_dump({"start": "2026-01-05T09:00:00Z", "nodes": [node((4, 16, "0"))],
                                                     **fields})))


def test_missing_config_holds_pods_until_it_is_created():
    sim = sim_of(workloads=[workload(EMB, gpus=1, needs={"secrets": ["hf-token"], "config_maps": ["cfg"]})],
                 config_objects=[{"kind": "ConfigMap", "namespace": "inference", "name": "cfg"}],
                 timeline=[{"at": "+20m", "config": {"kind": "Secret", "namespace": "inference", "name": "hf-token"}}])
    sim.advance(600)
    snap = sim.snapshot()
    [pod] = snap.pods_of(EMB)
    assert (pod.reason, pod.message, pod.ready) == ("CreateContainerConfigError", 'secret "hf-token" not found', False)
    assert [o.label for o in snap.config_objects] == ["ConfigMap inference/cfg"]
    assert any(e.reason == "Failed" and "hf-token" in e.message for e in snap.events_for("inference", pod.name))
    sim.advance(1200)
    snap = sim.snapshot()
    assert snap.workload(EMB).ready_replicas == 1
    assert {o.label for o in snap.config_objects} == {"ConfigMap inference/cfg", "Secret inference/hf-token"}


def test_a_failing_claim_stays_pending_and_holds_its_pods():
    sim = sim_of(workloads=[workload(EMB, gpus=1, needs={"volume_claims": ["cache"]})],
                 volume_claims=[{"namespace": "inference", "name": "cache", "storage_class": "fast", "failure": "storage_class_missing"},
                                {"namespace": "inference", "name": "other"}])
    sim.advance(1200)
    snap = sim.snapshot()
    assert [(c.name, c.phase) for c in snap.volume_claims] == [("cache", "Pending"), ("other", "Bound")]
    [pod] = snap.pods_of(EMB)
    assert pod.reason == "Unschedulable" and "unbound immediate PersistentVolumeClaims" in pod.message and not pod.node
    said = [e for e in snap.events_for("inference", "cache") if e.reason == "ProvisioningFailed"]
    assert 3 <= len(said) <= 5 and 'storageclass.storage.k8s.io "fast" not found' in said[0].message
    assert len([e for e in snap.events_for("inference", pod.name) if e.reason == "FailedScheduling"]) == 1


def test_a_gpu_quota_caps_the_namespace():
    sim = sim_of(workloads=[workload(EMB, gpus=1, replicas=3)], quotas=[{"namespace": "inference", "name": "q", "gpus": 2}])
    sim.advance(600)
    snap = sim.snapshot()
    assert len(snap.pods_of(EMB)) == 2 and snap.workload(EMB).ready_replicas == 2
    refusals = [e for e in snap.events if e.reason == "FailedCreate"]
    assert refusals and refusals[-1].kind == "ReplicaSet" and "exceeded quota: q" in refusals[-1].message


def test_service_endpoints_follow_its_selector():
    sim = sim_of(workloads=[workload(EMB, gpus=1, replicas=2, labels={"app": "embedder"})],
                 services=[{"namespace": "inference", "name": "embedder", "selector": {"app": "embedder"},
                            "ports": [{"port": 80, "target_port": 8080}]},
                           {"namespace": "inference", "name": "typo", "selector": {"app": "embeder"}}])
    sim.advance(60)
    by_name = {s.name: s for s in sim.snapshot().services}
    assert (by_name["embedder"].ready_endpoints, by_name["embedder"].workloads) == (2, (EMB,))
    assert (by_name["typo"].ready_endpoints, by_name["typo"].workloads) == (0, ())
    assert by_name["embedder"].cluster_ip and by_name["embedder"].ports[0].port == 80


def test_a_quota_that_limits_nothing_is_an_error():
    with pytest.raises(ScenarioError, match="quotas"):
        sim_of(quotas=[{"namespace": "inference", "name": "q"}])
