"""A tag that does not exist, on the kube adapter against the kmock emulator: read, diagnosed, rolled back.

Spec: the dice-roller Deployment (the ReplicaSet fixtures at nginx:1.14.1 and
1.14.2) is rolled to nginx:1.99.0, a tag the registry has not. Its new pod
waits in ImagePullBackOff and the kubelet's `Failed` event says "not found".
From the real object shapes the snapshot yields an `image_pull_failed` finding
naming the image and the cause, proposing nginx:1.14.2 (from the ReplicaSets,
not from any text); the playbook's call, run through the tool, sends one
strategic-merge patch of that container. A refused pull (401) proposes nothing.
"""

from __future__ import annotations

import copy

import pytest
from kube_harness import Emulator, fixture
from test_kube_read import NOW, dice_roller

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.detect import detect
from opsagent.playbooks.loader import load_playbooks
from opsagent.playbooks.render import render_steps
from test_images import ROOT
from tools import REGISTRY
from tools.base import ToolContext

MISSING = "nginx:1.99.0"
NOT_FOUND = (f'Failed to pull image "{MISSING}": rpc error: code = NotFound desc = failed to pull and unpack image '
             f'"docker.io/library/{MISSING}": failed to resolve reference "docker.io/library/{MISSING}": '
             f'docker.io/library/{MISSING}: not found')
REFUSED = (f'Failed to pull image "{MISSING}": rpc error: code = Unknown desc = failed to pull and unpack image '
           f'"docker.io/library/{MISSING}": failed to authorize: failed to fetch oauth token: 401 Unauthorized')


def objects(event_message: str) -> list[dict]:
    dep = dice_roller()
    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = MISSING
    dep["status"].update(updatedReplicas=1, unavailableReplicas=1, conditions=[
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
         "message": 'ReplicaSet "dice-roller-7d5f9c8b4" is progressing.', "lastUpdateTime": "2026-01-05T11:50:00Z",
         "lastTransitionTime": "2026-01-05T11:50:00Z"}])
    rs3 = copy.deepcopy(fixture("replicaset-dice-roller-rev2.json"))
    rs3["metadata"].update(name="dice-roller-7d5f9c8b4", uid="7d5f9c8b-0000-4000-8000-000000000003",
                           creationTimestamp="2026-01-05T11:50:00Z")
    rs3["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    rs3["metadata"]["labels"]["pod-template-hash"] = "7d5f9c8b4"
    rs3["spec"]["selector"]["matchLabels"]["pod-template-hash"] = "7d5f9c8b4"
    rs3["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = "7d5f9c8b4"
    rs3["spec"]["template"]["spec"]["containers"][0]["image"] = MISSING
    pod = copy.deepcopy(fixture("pod-imagepullbackoff.yaml"))
    name = "dice-roller-7d5f9c8b4-x2x7q"
    container = rs3["spec"]["template"]["spec"]["containers"][0]["name"]
    pod["metadata"].update(name=name, namespace="default", uid="7d5f9c8b-0000-4000-8000-00000000000a",
                           labels={"app": "dice-roller", "pod-template-hash": "7d5f9c8b4"},
                           ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                             "name": "dice-roller-7d5f9c8b4", "uid": rs3["metadata"]["uid"]}])
    pod["spec"]["containers"][0].update(name=container, image=MISSING)
    pod["status"]["containerStatuses"][0].update(name=container, image=MISSING, state={"waiting": {
        "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{MISSING}"'}})
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{name}.1", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": name, "namespace": "default"},
             "type": "Warning", "reason": "Failed", "message": event_message, "count": 7,
             "firstTimestamp": "2026-01-05T11:50:10Z", "lastTimestamp": "2026-01-05T11:58:00Z"}
    return [dep, fixture("replicaset-dice-roller-rev1-assembled.json"), fixture("replicaset-dice-roller-rev2.json"),
            rs3, pod, event]


@pytest.fixture()
def kube(request):
    with Emulator() as emu:
        for obj in objects(request.param):
            emu.seed(obj)
        yield KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW)), emu


@pytest.mark.parametrize("kube", [NOT_FOUND], indirect=True)
def test_a_missing_tag_is_diagnosed_from_real_shapes_and_rolled_back_with_one_patch(kube):
    cluster, emu = kube
    snap = cluster.snapshot()
    [finding] = [f for f in detect(snap, intents=[], now=NOW) if f.kind == "image_pull_failed"]
    assert finding.subject == "default/dice-roller"
    assert (finding.details["image"], finding.details["cause"], finding.details["reason"]) == (
        MISSING, "not_found", "ImagePullBackOff")
    assert (finding.details["next_action"], finding.details["rollback_image"]) == ("set_image", "nginx:1.14.2")
    assert not any(f.kind == "rollout_failed" for f in detect(snap, intents=[], now=NOW))

    playbook = load_playbooks(ROOT / "playbooks").for_finding(finding, snap)
    [call] = render_steps(playbook, finding, snap)
    tool = REGISTRY[call["tool"]]
    before = len(emu.requests())
    out = tool.run(ToolContext(cluster=cluster, clock=cluster.clock, observe=cluster.snapshot),
                   tool.input_model.model_validate(call["args"]))
    assert out.status == "ok" and out.data["ran_before"], out.message
    [patch] = [r for r in emu.requests()[before:] if r["method"] == "PATCH"]
    assert patch["path"] == "/apis/apps/v1/namespaces/default/deployments/dice-roller"
    assert patch["body"] == {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx:1.14.2"}]}}}}


@pytest.mark.parametrize("kube", [REFUSED], indirect=True)
def test_a_refused_pull_proposes_no_image(kube):
    cluster, _ = kube
    [finding] = [f for f in detect(cluster.snapshot(), intents=[], now=NOW) if f.kind == "image_pull_failed"]
    assert (finding.details["cause"], finding.details["next_action"]) == ("unauthorized", "escalate")
