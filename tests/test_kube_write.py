"""Writing to a cluster: the exact request each port write sends, over real HTTP to kmock.

Spec, per write: HTTP verb, path, content type, body and the dryRun query.
- scale: PATCH .../deployments/NAME/scale, strategic merge, {"spec":{"replicas":N}};
- restart: PATCH the Deployment with the pod-template annotation
  kubectl.kubernetes.io/restartedAt set to the clock's now (as kubectl does);
- undo: GET the Deployment, LIST its namespace's ReplicaSets, then a JSON patch
  replacing /spec/template (the chosen ReplicaSet's, minus pod-template-hash)
  and /metadata/annotations (as kubectl rollout undo does);
- set_template: strategic merge of the first container by name and placement
  annotations on the pod template;
- cordon: PATCH the Node {"spec":{"unschedulable":true}}; delete pod: DELETE;
- annotate: JSON merge patch, None removes a key; create / delete workload.
- dry_run=True adds dryRun=All to the same request.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from kube_harness import Emulator, fixture
from test_kube_read import dice_roller

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.port import Invalid, WorkloadSpec
from opsagent.model import GpuRequirement, WorkloadRef

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
GUESTBOOK = WorkloadRef(namespace="default", name="guestbook-ui")
DICE = WorkloadRef(namespace="default", name="dice-roller")


@pytest.fixture()
def kube():
    with Emulator() as emu:
        for obj in (fixture("deployment-progress-deadline-exceeded.yaml"), dice_roller(),
                    fixture("replicaset-dice-roller-rev1-assembled.json"), fixture("replicaset-dice-roller-rev2.json"),
                    fixture("node-gpu-gfd.json"), fixture("pod-crashloopbackoff.yaml")):
            emu.seed(obj)
        yield KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW)), emu


def writes(emu: Emulator) -> list[dict]:
    return [r for r in emu.requests() if r["method"] != "GET"]


@pytest.mark.parametrize("dry_run", [False, True])
def test_scale_uses_the_scale_subresource(kube, dry_run):
    cluster, emu = kube
    result = cluster.scale(ref=GUESTBOOK, replicas=0, dry_run=dry_run)
    [req] = emu.requests()
    assert req == {"method": "PATCH", "path": "/apis/apps/v1/namespaces/default/deployments/guestbook-ui/scale",
                   "params": {"dryRun": "All"} if dry_run else {},
                   "content_type": "application/strategic-merge-patch+json", "body": {"spec": {"replicas": 0}}}
    assert result.ok and result.dry_run is dry_run and "guestbook-ui to 0" in result.message


def test_restart_sets_restarted_at_like_kubectl(kube):
    cluster, emu = kube
    result = cluster.restart_rollout(ref=GUESTBOOK)
    [req] = writes(emu)
    assert req["path"] == "/apis/apps/v1/namespaces/default/deployments/guestbook-ui"
    assert req["content_type"] == "application/strategic-merge-patch+json"
    assert req["body"] == {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-05T12:00:00Z"}}}}}
    assert result.details["restarted_at"] == "2026-01-05T12:00:00Z"


def test_undo_copies_the_replicaset_template_minus_hash(kube):
    cluster, emu = kube
    result = cluster.undo_rollout(ref=DICE, dry_run=True)
    reqs = emu.requests()
    assert [(r["method"], r["path"]) for r in reqs] == [
        ("GET", "/apis/apps/v1/namespaces/default/deployments/dice-roller"),
        ("GET", "/apis/apps/v1/namespaces/default/replicasets"),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/dice-roller"),
    ]
    patch = reqs[2]
    assert patch["content_type"] == "application/json-patch+json" and patch["params"] == {"dryRun": "All"}
    template_op, annotations_op = patch["body"]
    rev1 = fixture("replicaset-dice-roller-rev1-assembled.json")
    expected = rev1["spec"]["template"]
    del expected["metadata"]["labels"]["pod-template-hash"]
    assert template_op == {"op": "replace", "path": "/spec/template", "value": expected}
    assert annotations_op["path"] == "/metadata/annotations"
    assert annotations_op["value"]["deployment.kubernetes.io/revision"] == "2"  # kept; the controller bumps it
    assert "deployment.kubernetes.io/desired-replicas" not in annotations_op["value"]
    assert result.details["revision"] == 1 and result.dry_run


def test_undo_to_missing_revision_is_invalid_and_sends_no_write(kube):
    cluster, emu = kube
    with pytest.raises(Invalid, match=r"revision 7.*\[1, 2\]"):
        cluster.undo_rollout(ref=DICE, to_revision=7)
    assert writes(emu) == []


def test_undo_to_the_running_template_is_skipped(kube):
    cluster, emu = kube
    result = cluster.undo_rollout(ref=DICE, to_revision=2)
    assert result.details == {"revision": 2, "skipped": True} and writes(emu) == []


def test_set_template_patches_first_container_and_placement(kube):
    cluster, emu = kube
    cluster.set_template(ref=GUESTBOOK, image="gcr.io/heptio-images/ks-guestbook-demo:0.4", gpus_per_replica=2,
                         memory_mib=8192, gpu_requirement=GpuRequirement(min_link_width=16, coherent=True))
    [req] = writes(emu)
    assert req["content_type"] == "application/strategic-merge-patch+json"
    assert req["body"] == {"spec": {"template": {
        "spec": {"containers": [{"name": "guestbook-ui", "image": "gcr.io/heptio-images/ks-guestbook-demo:0.4",
                                 "resources": {"limits": {"nvidia.com/gpu": "2", "memory": "8192Mi"},
                                               "requests": {"nvidia.com/gpu": "2", "memory": "8192Mi"}}}]},
        "metadata": {"annotations": {"opsagent.dev/gpu-min-link-width": "16", "opsagent.dev/gpu-coherent": "true"}},
    }}}
    stored = emu.stored("apps/v1/deployments", "default", "guestbook-ui")
    assert stored["spec"]["template"]["metadata"]["annotations"]["opsagent.dev/gpu-coherent"] == "true"


def test_cordon_uncordon_and_delete_pod(kube):
    cluster, emu = kube
    cluster.cordon(node="nori")
    cluster.cordon(node="nori", cordoned=False, dry_run=True)
    cluster.delete_pod(namespace="argocd", name="my-pod", dry_run=True)
    a, b, c = writes(emu)
    assert (a["method"], a["path"], a["body"], a["params"]) == ("PATCH", "/api/v1/nodes/nori", {"spec": {"unschedulable": True}}, {})
    assert (b["body"], b["params"]) == ({"spec": {"unschedulable": False}}, {"dryRun": "All"})
    assert (c["method"], c["path"], c["params"]) == ("DELETE", "/api/v1/namespaces/argocd/pods/my-pod", {"dryRun": "All"})


def test_annotate_merge_patch_removes_none(kube):
    cluster, emu = kube
    cluster.annotate(ref=GUESTBOOK, annotations={"opsagent.dev/slept-at": "2026-01-05T12:00:00Z", "old": None})
    [req] = writes(emu)
    assert req["content_type"] == "application/merge-patch+json"
    assert req["body"] == {"metadata": {"annotations": {"opsagent.dev/slept-at": "2026-01-05T12:00:00Z", "old": None}}}


def test_create_and_delete_workload(kube):
    cluster, emu = kube
    spec = WorkloadSpec(ref=WorkloadRef(namespace="llm", name="qwen"), image="vllm/vllm-openai:v0.8.2", replicas=1,
                        gpus_per_replica=2, gpu_requirement=GpuRequirement(coherent=True), tensor_parallel=True)
    cluster.create_workload(spec=spec, dry_run=True)
    cluster.delete_workload(ref=GUESTBOOK)
    create, delete = writes(emu)
    assert (create["method"], create["path"], create["params"]) == ("POST", "/apis/apps/v1/namespaces/llm/deployments", {"dryRun": "All"})
    body = create["body"]
    assert body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert body["spec"]["template"]["metadata"]["annotations"] == {"opsagent.dev/gpu-coherent": "true", "opsagent.dev/tensor-parallel": "true"}
    assert body["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "qwen"}}
    assert (delete["method"], delete["path"]) == ("DELETE", "/apis/apps/v1/namespaces/default/deployments/guestbook-ui")


def test_written_template_reads_back_as_the_requirement(kube):
    cluster, _ = kube
    cluster.set_template(ref=GUESTBOOK, gpu_requirement=GpuRequirement(min_link_width=8))
    workload = cluster.snapshot().workload(GUESTBOOK)
    assert workload.gpu_requirement == GpuRequirement(min_link_width=8, coherent=False)


def _two_containers(emu: Emulator) -> WorkloadRef:
    """guestbook-ui with a sidecar: set_image must pick the container by name."""
    import copy

    dep = copy.deepcopy(fixture("deployment-progress-deadline-exceeded.yaml"))
    dep["metadata"]["name"] = "guestbook-sidecar"
    dep["metadata"].pop("uid", None)
    dep["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoyproxy/envoy:v1.30.1"})
    emu.seed(dep)
    return WorkloadRef(namespace="default", name="guestbook-sidecar")


@pytest.mark.parametrize("dry_run", [False, True])
def test_set_image_patches_one_container_by_name(kube, dry_run):
    cluster, emu = kube
    ref = _two_containers(emu)
    result = cluster.set_image(ref=ref, image="envoyproxy/envoy:v1.30.2", container="proxy", dry_run=dry_run)
    [req] = writes(emu)
    assert req == {"method": "PATCH", "path": "/apis/apps/v1/namespaces/default/deployments/guestbook-sidecar",
                   "params": {"dryRun": "All"} if dry_run else {},
                   "content_type": "application/strategic-merge-patch+json",
                   "body": {"spec": {"template": {"spec": {"containers": [
                       {"name": "proxy", "image": "envoyproxy/envoy:v1.30.2"}]}}}}}
    assert result.details == {"container": "proxy", "image": "envoyproxy/envoy:v1.30.2",
                              "image_before": "envoyproxy/envoy:v1.30.1"}


def test_set_image_without_a_container_sets_the_first(kube):
    cluster, emu = kube
    cluster.set_image(ref=GUESTBOOK, image="gcr.io/heptio-images/ks-guestbook-demo:0.4")
    [req] = writes(emu)
    assert req["body"]["spec"]["template"]["spec"]["containers"] == [
        {"name": "guestbook-ui", "image": "gcr.io/heptio-images/ks-guestbook-demo:0.4"}]
    snap = cluster.snapshot()
    assert snap.workload(GUESTBOOK).image == "gcr.io/heptio-images/ks-guestbook-demo:0.4"


@pytest.mark.parametrize("image,container,why", [
    ("envoyproxy/envoy:v1.30.2", "sidecar", "no container 'sidecar' in the pod template; containers: guestbook-ui, proxy"),
    ("envoyproxy/envoy", "proxy", "names no tag or digest"),
    ("envoyproxy/envoy:latest", "proxy", "uses the tag latest"),
])
def test_set_image_refuses_unknown_containers_and_moving_tags_without_writing(kube, image, container, why):
    cluster, emu = kube
    ref = _two_containers(emu)
    with pytest.raises(Invalid, match=why):
        cluster.set_image(ref=ref, image=image, container=container)
    assert writes(emu) == []


def test_set_image_to_the_running_image_is_skipped(kube):
    cluster, emu = kube
    ref = _two_containers(emu)
    result = cluster.set_image(ref=ref, image="envoyproxy/envoy:v1.30.1", container="proxy")
    assert result.ok and result.details["skipped"] and writes(emu) == []
