"""Reading a cluster: the kube adapter against kmock's emulator over real HTTP.

Spec:
- a snapshot costs one list call per kind (Deployments, StatefulSets,
  ReplicaSets, Pods, Nodes, Events, ResourceSlices, ResourceClaims) plus one
  API discovery call the first time; never a call per object;
- restricted to namespaces, it costs one list call per kind per namespace;
- rollout state reads like `kubectl rollout status`, history like
  `kubectl rollout history`;
- pod reasons come from container waiting states and PodScheduled;
- GPUs come from DRA ResourceSlices where a node publishes them and from
  allocatable + GFD labels elsewhere; pods hold them through device-plugin
  requests or allocated ResourceClaims;
- without Prometheus the snapshot says request rate and GPU use are unknown;
- GPU Jobs come from the pods a batch/v1 Job owns (one Job per owner), at no
  extra request: Pending without a node is queued, Running is running, then
  Succeeded or Failed.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from kube_harness import Emulator, fixture

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.read import NO_METRICS_NOTE, rollout_state

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def dice_roller() -> dict:
    """A Deployment owning the two dice-roller ReplicaSet fixtures, at revision 2."""
    dep = fixture("deployment-new-replicaset-available.json")
    rs2 = fixture("replicaset-dice-roller-rev2.json")
    dep["metadata"].update(name="dice-roller", uid="7551e949-42d1-4061-83c5-9da107186e47",
                           annotations={"deployment.kubernetes.io/revision": "2", "opsagent.dev/idle-after": "30m"})
    template = copy.deepcopy(rs2["spec"]["template"])
    template["metadata"]["labels"].pop("pod-template-hash")
    dep["spec"]["template"] = template
    dep["spec"]["replicas"] = 10
    dep["status"].update(replicas=10, updatedReplicas=10, availableReplicas=10, readyReplicas=10)
    return dep


def vllm_objects() -> list[dict]:
    """llm/vllm-llama: Deployment, its ReplicaSet, one pending pod (fixture) and one running GPU pod."""
    dep = fixture("deployment-new-replicaset-available.json")
    dep["metadata"].update(name="vllm-llama", namespace="llm", uid="11111111-2222-4333-8444-555555555555",
                           annotations={"deployment.kubernetes.io/revision": "1"})
    dep["metadata"]["labels"] = {"app": "vllm-llama", "tier": "gpu"}
    pending = fixture("pod-pending-unschedulable-gpu-assembled.yaml")
    dep["spec"]["template"] = {"metadata": {"labels": {"app": "vllm-llama"}}, "spec": copy.deepcopy(pending["spec"])}
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "1"
    dep["spec"]["replicas"] = 2
    dep["status"].update(replicas=2, updatedReplicas=2, availableReplicas=1, readyReplicas=1)
    rs = fixture("replicaset-dice-roller-rev2.json")
    rs["metadata"].update(name="vllm-llama-5c7f9d8b6d", namespace="llm", uid="1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                          annotations={"deployment.kubernetes.io/revision": "1"},
                          ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm-llama",
                                            "uid": dep["metadata"]["uid"], "controller": True}])
    running = copy.deepcopy(pending)
    running["metadata"]["name"] = "vllm-llama-5c7f9d8b6d-r7k4m"
    running["spec"]["nodeName"] = "nori"
    running["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
    running["status"] = {"phase": "Running", "startTime": "2026-01-05T10:00:00Z",
                         "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                         "containerStatuses": [{"name": "vllm", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                                                "state": {"running": {"startedAt": "2026-01-05T10:00:00Z"}}}]}
    return [dep, rs, pending, running]


def dra_objects() -> list[dict]:
    """A second GPU node that publishes a DRA ResourceSlice, and a claim allocated to a pod on it."""
    node = fixture("node-gpu-gfd.json")
    node["metadata"]["name"] = "gpu-node-1"
    node["metadata"]["labels"] = {"kubernetes.io/hostname": "gpu-node-1"}
    node["status"]["capacity"].pop("nvidia.com/gpu")
    node["status"]["allocatable"].pop("nvidia.com/gpu")
    node["spec"]["unschedulable"] = True
    claim = {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
        "metadata": {"name": "trainer-gpu-x7", "namespace": "ml"},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}},
        "status": {"allocation": {"devices": {"results": [
            {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "gpu-node-1", "device": "gpu-0"}]}},
            "reservedFor": [{"resource": "pods", "name": "trainer-0", "uid": "u-1"}]},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer-0", "namespace": "ml"},
           "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "ctr", "image": "trainer:1",
                                                               "resources": {"claims": [{"name": "gpu"}]}}],
                    "resourceClaims": [{"name": "gpu", "resourceClaimName": "trainer-gpu-x7"}]},
           "status": {"phase": "Running", "startTime": "2026-01-05T09:00:00Z"}}
    return [node, fixture("dra-resourceslice-gpu.nvidia.com.yaml"), claim, pod]


def seed_cluster(emu: Emulator) -> None:
    for obj in [
        fixture("deployment-progress-deadline-exceeded.yaml"),
        dice_roller(),
        fixture("replicaset-dice-roller-rev1-assembled.json"),
        fixture("replicaset-dice-roller-rev2.json"),
        fixture("pod-crashloopbackoff.yaml"),
        fixture("pod-imagepullbackoff.yaml"),
        fixture("node-gpu-gfd.json"),
        *vllm_objects(),
        *dra_objects(),
    ]:
        emu.seed(obj)
    emu.seed({"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": "guestbook-ui.1", "namespace": "default"},
              "involvedObject": {"kind": "Deployment", "name": "guestbook-ui", "namespace": "default"},
              "type": "Warning", "reason": "ProgressDeadlineExceeded", "message": "timed out",
              "lastTimestamp": "2026-01-05T11:59:00Z"})


@pytest.fixture()
def cluster():
    with Emulator() as emu:
        seed_cluster(emu)
        yield KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW)), emu


def test_one_list_call_per_kind_and_discovery_once(cluster):
    kube, emu = cluster
    kube.snapshot()
    first = [(r["method"], r["path"]) for r in emu.requests()]
    assert sorted(first) == sorted([
        ("GET", "/apis/apps/v1/deployments"), ("GET", "/apis/apps/v1/statefulsets"),
        ("GET", "/apis/apps/v1/replicasets"), ("GET", "/api/v1/pods"), ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/events"), ("GET", "/apis"),
        ("GET", "/apis/resource.k8s.io/v1/resourceslices"), ("GET", "/apis/resource.k8s.io/v1/resourceclaims"),
        ("GET", "/apis/autoscaling/v2/horizontalpodautoscalers"), ("GET", "/apis/keda.sh/v1alpha1/scaledobjects"),
        ("GET", "/apis/http.keda.sh/v1alpha1/httpscaledobjects"), ("GET", "/apis/policy/v1/poddisruptionbudgets"),
        ("GET", "/api/v1/configmaps"), ("GET", "/api/v1/secrets"), ("GET", "/api/v1/persistentvolumeclaims"),
        ("GET", "/api/v1/services"), ("GET", "/apis/discovery.k8s.io/v1/endpointslices"),
    ])
    kube.snapshot()
    second = [(r["method"], r["path"]) for r in emu.requests()][len(first):]
    assert len(second) == 17 and ("GET", "/apis") not in second
    assert kube.requests == 35


def test_rollout_state_and_history(cluster):
    snap = cluster[0].snapshot()
    guestbook = snap.workload("default/guestbook-ui")
    assert guestbook.rollout.status == "failed"
    assert guestbook.rollout.reason == "ProgressDeadlineExceeded"
    assert guestbook.rollout.revision == 4 and guestbook.revision == 4
    assert guestbook.image == "gcr.io/heptio-images/ks-guestbook-demo:0.3"
    dice = snap.workload("default/dice-roller")
    assert dice.rollout.status == "complete" and dice.revision == 2
    assert [(r.revision, r.image) for r in dice.history] == [(1, "nginx:1.14.1"), (2, "nginx:1.14.2")]
    assert dice.annotations["opsagent.dev/idle-after"] == "30m"
    assert dice.request_rate is None and dice.gpu_utilization is None
    assert NO_METRICS_NOTE in snap.notes
    assert snap.source == "kube" and snap.time == NOW


def test_pod_reasons_and_owners(cluster):
    snap = cluster[0].snapshot()
    crash = snap.pod("argocd", "my-pod")
    assert (crash.reason, crash.restarts, crash.workload) == ("CrashLoopBackOff", 3, None)
    pull = [p for p in snap.pods if p.reason == "ImagePullBackOff"]
    assert len(pull) == 1 and pull[0].phase == "Pending"
    pending = snap.pod("llm", "vllm-llama-5c7f9d8b6d-q8w2n")
    assert pending.reason == "Unschedulable" and "Insufficient nvidia.com/gpu" in pending.message
    assert str(pending.workload) == "llm/vllm-llama" and pending.gpu_ids == ()
    events = snap.events_for("default", "guestbook-ui")
    assert [(e.type, e.reason) for e in events] == [("Warning", "ProgressDeadlineExceeded")]


def test_gpus_from_gfd_labels_and_dra(cluster):
    snap = cluster[0].snapshot()
    nori = snap.node("nori")
    assert nori.ready and not nori.cordoned
    assert [(g.id, g.model, g.memory_mib, g.holder) for g in nori.gpus] == [
        ("nori/gpu-0", "NVIDIA-A16-4Q", 4096, "llm/vllm-llama-5c7f9d8b6d-r7k4m")]
    running = snap.pod("llm", "vllm-llama-5c7f9d8b6d-r7k4m")
    assert running.gpu_ids == ("nori/gpu-0",) and running.ready and running.revision == 1
    vllm = snap.workload("llm/vllm-llama")
    assert vllm.gpus_per_replica == 1 and vllm.labels["tier"] == "gpu"
    assert snap.gpus_held_by("llm/vllm-llama") == 1
    dra_node = snap.node("gpu-node-1")
    assert dra_node.cordoned
    [gpu] = dra_node.gpus  # the MIG slice of the same GPU is not a second device
    assert (gpu.id, gpu.model, gpu.memory_mib, gpu.switch_group, gpu.numa_node) == (
        "gpu-node-1/gpu-0", "NVIDIA A100-PCIE-40GB", 40960, "pci0000:64", 0)
    assert gpu.holder == "ml/trainer-0" and gpu.held_since == datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    assert snap.pod("ml", "trainer-0").gpu_ids == ("gpu-node-1/gpu-0",)


def test_namespaces_restrict_to_one_list_per_kind_per_namespace():
    with Emulator() as emu:
        seed_cluster(emu)
        kube = KubeCluster(api_client_for_url(emu.url), namespaces=["default", "llm"], clock=VirtualClock(NOW))
        kube.snapshot()
        paths = [r["path"] for r in emu.requests()]
    assert paths.count("/apis/apps/v1/namespaces/default/deployments") == 1
    assert paths.count("/apis/apps/v1/namespaces/llm/deployments") == 1
    assert "/apis/apps/v1/deployments" not in paths
    assert paths.count("/api/v1/nodes") == 1  # cluster-scoped: once
    # namespaced kinds x2, nodes, discovery, slices, claims x2, HPAs x2, PDBs x2, and one 404 for each KEDA kind it lacks,
    # then ConfigMaps, Secrets, PVCs, Services and EndpointSlices x2
    assert len(paths) == 5 * 2 + 1 + 1 + 1 + 2 + 2 + 2 + 1 + 1 + 5 * 2


@pytest.mark.parametrize(("status", "generation", "expected"), [
    ({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}, 1, "progressing"),
    ({"observedGeneration": 1, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}, 1, "progressing"),
    ({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}, 1, "progressing"),
    ({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, 2, "progressing"),
    ({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, 1, "complete"),
])
def test_rollout_status_table(status, generation, expected):
    dep = {"metadata": {"generation": generation, "annotations": {"deployment.kubernetes.io/revision": "3"}},
           "spec": {"replicas": 3}, "status": status}
    state = rollout_state(dep)
    assert state.status == expected and state.revision == 3


def test_gpu_jobs_come_from_the_pods_jobs_own_without_another_list_call():
    from kube_samples import finished_job_pod, job_pod

    with Emulator() as emu:
        seed_cluster(emu)
        kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))
        kube.snapshot()
        baseline = kube.requests
        emu.seed(job_pod("finetune", "finetune-a"))
        emu.seed(job_pod("finetune", "finetune-b"))  # parallelism 2: still one Job
        emu.seed(finished_job_pod("eval-3", "eval-3-x", "Succeeded"))
        emu.seed(finished_job_pod("eval-4", "eval-4-x", "Failed"))
        emu.seed(finished_job_pod("eval-4", "eval-4-y", "Succeeded"))  # a retry that worked
        cpu_only = job_pod("report", "report-x")
        cpu_only["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
        emu.seed(cpu_only)
        snap = kube.snapshot()
        assert kube.requests - baseline == baseline - 1  # the same lists as before, minus the one-off discovery
    jobs = {j.key: j for j in snap.jobs}
    assert sorted(jobs) == ["ml/eval-3", "ml/eval-4", "ml/finetune"]  # the CPU-only Job is not GPU work
    finetune = jobs["ml/finetune"]
    assert (finetune.state, finetune.gpus, finetune.node) == ("queued", 2, None)
    assert finetune.submitted_at == datetime(2025, 3, 19, 23, 20, 11, tzinfo=timezone.utc)
    assert jobs["ml/eval-3"].state == "succeeded" and jobs["ml/eval-4"].state == "succeeded"
    assert jobs["ml/eval-3"].finished_at == datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    assert snap.pod("ml", "finetune-a").workload is None


def test_job_states_follow_their_pods():
    from opsagent.cluster.kube.jobs import jobs_from_pods
    from opsagent.cluster.kube.read import RawLists, build_snapshot
    from kube_samples import finished_job_pod, job_pod

    running = finished_job_pod("train", "train-x", "Running")
    running["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "2026-01-05T08:00:05Z"}}
    node = fixture("node-gpu-gfd.json")  # nori: one device-plugin GPU
    snap = build_snapshot(RawLists(pods=[running, finished_job_pod("lost", "lost-x", "Failed")], nodes=[node]), now=NOW)
    jobs = {j.key: j for j in snap.jobs}
    train = jobs["ml/train"]
    assert (train.state, train.node, train.started_at) == ("running", "nori", datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc))
    assert train.gpu_ids == ("nori/gpu-0",)
    assert jobs["ml/lost"].state == "failed"
    not_batch = job_pod("x", "x-1")
    not_batch["metadata"]["ownerReferences"][0]["apiVersion"] = "example.com/v1"  # some other kind named Job
    assert jobs_from_pods([not_batch], build_snapshot(RawLists(pods=[not_batch]), now=NOW).pods) == ()


def test_dra_notes_say_why_gpus_come_from_node_labels_once():
    from opsagent.cluster.kube.read import RawLists, build_snapshot

    refused = build_snapshot(RawLists(dra_unreadable="resourceslices is forbidden"), now=NOW).notes
    absent = build_snapshot(RawLists(), now=NOW).notes
    assert [n for n in refused if "DRA" in n or "resource.k8s.io" in n] == [
        "DRA objects not readable (resourceslices is forbidden); GPUs come from node allocatable and GFD labels"]
    assert [n for n in absent if "DRA" in n or "resource.k8s.io" in n] == [
        "the API has no resource.k8s.io ResourceSlices: GPUs come from node allocatable and GFD labels"]
