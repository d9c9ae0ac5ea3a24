"""Memory, probes and how containers ended, read from real object shapes in kmock; set_probe's patch.

Spec: the crash-looping pod fixture (argoproj's, lastState.terminated with
exit 1), turned into an OOMKilled vLLM pod and a CUDA out-of-memory one,
and a Deployment template with memory requests and limits, ports and three
probes, are seeded into the emulator. A snapshot reads each container's
memory (MiB), declared ports and probes from the template, and each pod's
last termination (reason, exit code, message) and since when it runs,
without one list or get call more than before: the same requests as a
cluster with none of these fields. The detectors then name the cause from
what the adapter read. `set_probe` sends one strategic-merge patch of the
first container's probe, with the handlers it does not use set to null.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from kube_harness import Emulator, fixture

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.health import probe, probe_patch
from opsagent.detect import detect
from opsagent.model import Probe, WorkloadRef

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
GUESTBOOK = WorkloadRef(namespace="default", name="guestbook-ui")
CUDA = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of "
        "44.52 GiB of which 1.06 GiB is free. Including non-PyTorch memory, this process has 43.45 GiB memory in use.")


def _deployment() -> dict:
    """The guestbook Deployment fixture with a serving template: memory, a port and three probes."""
    dep = fixture("deployment-progress-deadline-exceeded.yaml")
    dep["status"]["conditions"] = [c for c in dep["status"]["conditions"] if c["type"] != "Progressing"]
    dep["status"].update(replicas=1, updatedReplicas=1, availableReplicas=1, readyReplicas=0, observedGeneration=4)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"memory": "8Gi", "cpu": "2"}, "limits": {"memory": "16Gi"}}
    container["ports"] = [{"containerPort": 8000, "name": "http", "protocol": "TCP"}]
    container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8000, "scheme": "HTTP"}, "periodSeconds": 5,
                                   "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    container["livenessProbe"] = {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 60, "periodSeconds": 10,
                                  "failureThreshold": 3}
    container["startupProbe"] = {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 30, "failureThreshold": 60}
    return dep


def _replicaset() -> dict:
    """The guestbook Deployment's ReplicaSet at its revision (4), as the Deployment controller makes it."""
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "guestbook-ui-5b8d", "namespace": "default",
                         "annotations": {"deployment.kubernetes.io/revision": "4"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "guestbook-ui",
                                              "uid": _deployment()["metadata"]["uid"], "controller": True}]},
            "spec": {"replicas": 1, "template": _deployment()["spec"]["template"]}, "status": {"replicas": 1}}


def _pod(name: str, *, reason: str, exit_code: int, message: str | None = None) -> dict:
    """The CrashLoopBackOff fixture as a pod of the guestbook ReplicaSet whose last end was `reason`."""
    pod = fixture("pod-crashloopbackoff.yaml")
    pod["metadata"].update(name=name, namespace="default", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "guestbook-ui-5b8d", "uid": "y", "controller": True}])
    pod["spec"]["containers"][0]["name"] = pod["status"]["containerStatuses"][0]["name"] = "guestbook-ui"
    terminated = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    terminated.update(reason=reason, exitCode=exit_code)
    if message is not None:
        terminated["message"] = message
    return pod


def _seed(emu: Emulator, *pods: dict) -> KubeCluster:
    emu.seed(_deployment())
    emu.seed(_replicaset())
    emu.seed(fixture("node-gpu-gfd.json"))
    for pod in pods:
        emu.seed(pod)
    return KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))


def test_template_memory_ports_and_probes_are_read():
    with Emulator() as emu:
        snap = _seed(emu).snapshot()
    [main] = snap.workload(GUESTBOOK).containers
    assert (main.name, main.memory_request_mib, main.memory_limit_mib, main.ports) == ("guestbook-ui", 8192, 16384, (8000,))
    probes = {p.kind: p for p in main.probes}
    assert (probes["readiness"].action, probes["readiness"].path, probes["readiness"].port) == ("http", "/ready", 8000)
    assert (probes["readiness"].period_seconds, probes["readiness"].budget_seconds) == (5, 15)
    assert (probes["liveness"].action, probes["liveness"].port, probes["liveness"].budget_seconds) == ("tcp", "http", 90)
    assert probes["startup"].budget_seconds == 1800


def test_how_containers_last_ended_is_read_from_the_fixture_shape():
    with Emulator() as emu:
        snap = _seed(emu, _pod("oom", reason="OOMKilled", exit_code=137),
                     fixture("pod-crashloopbackoff.yaml")).snapshot()
    [oom] = snap.pod("default", "oom").terminations
    assert (oom.container, oom.reason, oom.exit_code, oom.message) == ("guestbook-ui", "OOMKilled", 137, None)
    assert oom.finished_at == datetime(2018, 12, 2, 9, 20, 25, tzinfo=timezone.utc)
    [plain] = snap.pod("argocd", "my-pod").terminations
    assert (plain.reason, plain.exit_code) == ("Error", 1)
    assert snap.pod("argocd", "my-pod").running_since is None  # waiting in CrashLoopBackOff, not running


def test_reading_these_fields_costs_no_request_more():
    with Emulator() as plain_emu:
        plain = _seed(plain_emu, fixture("pod-crashloopbackoff.yaml"))
        plain.snapshot()
        bare = sorted((r["method"], r["path"]) for r in plain_emu.requests())
    with Emulator() as emu:
        many = [_pod(f"oom-{i}", reason="OOMKilled", exit_code=137) for i in range(20)]
        kube = _seed(emu, *many)
        snap = kube.snapshot()
        assert sorted((r["method"], r["path"]) for r in emu.requests()) == bare
    assert sum(1 for p in snap.pods if p.terminations) == 20


def test_the_detectors_name_the_cause_from_what_the_adapter_read():
    with Emulator() as emu:
        snap = _seed(emu, _pod("oom", reason="OOMKilled", exit_code=137)).snapshot()
    assert snap.workload(GUESTBOOK).rollout.status == "complete" and snap.pod("default", "oom").workload == GUESTBOOK
    [found] = [f for f in detect(snap, intents=[], now=NOW) if f.kind in ("out_of_memory", "crashloop", "not_ready")]
    assert found.id == "out_of_memory:default/guestbook-ui" and found.details["memory"] == "host"
    assert (found.details["limit_mib"], found.details["request_mib"], found.details["proposed_memory_mib"]) == (
        16384, 8192, 24576)


def test_a_cuda_message_is_kept_as_the_termination_message():
    with Emulator() as emu:
        snap = _seed(emu, _pod("cuda", reason="Error", exit_code=1, message=CUDA)).snapshot()
    [ended] = snap.pod("default", "cuda").terminations
    assert ended.message == CUDA


@pytest.mark.parametrize("body, expected", [
    ({"httpGet": {"path": "/h", "port": 80}}, ("http", "/h", 80, 10, 3)),
    ({"tcpSocket": {"port": "grpc"}, "periodSeconds": 5}, ("tcp", None, "grpc", 5, 3)),
    ({"exec": {"command": ["cat", "/tmp/ok"]}, "failureThreshold": 30}, ("exec", None, None, 10, 30)),
    ({"grpc": {"port": 9000}, "periodSeconds": "x"}, ("grpc", None, 9000, 10, 3)),
])
def test_probe_shapes(body, expected):
    found = probe("liveness", body)
    assert (found.action, found.path, found.port, found.period_seconds, found.failure_threshold) == expected


def test_set_probe_patches_the_first_containers_probe_with_unused_handlers_null():
    with Emulator() as emu:
        kube = _seed(emu)
        new = Probe(kind="readiness", path="/health", port=8000, period_seconds=5)
        result = kube.set_probe(ref=GUESTBOOK, probe=new)
        kube.set_probe(ref=GUESTBOOK, probe=new, dry_run=True)
        writes = [r for r in emu.requests() if r["method"] != "GET"]
        stored = emu.stored("apps/v1/deployments", "default", "guestbook-ui")
    assert result.ok
    assert [(r["method"], r["path"], r["content_type"], r["params"]) for r in writes] == [
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/guestbook-ui", "application/strategic-merge-patch+json", {}),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/guestbook-ui", "application/strategic-merge-patch+json",
         {"dryRun": "All"})]
    assert writes[0]["body"] == {"spec": {"template": {"spec": {"containers": [{"name": "guestbook-ui", "readinessProbe": {
        "httpGet": {"path": "/health", "port": 8000}, "tcpSocket": None, "grpc": None, "exec": None,
        "initialDelaySeconds": 0, "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3}}]}}}}
    assert stored["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"


def test_a_command_probe_keeps_its_command():
    dep = _deployment()
    patch = probe_patch(dep, Probe(kind="liveness", action="exec", failure_threshold=10))
    body = patch["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert "exec" not in body and body["failureThreshold"] == 10 and body["httpGet"] is None
    assert copy.deepcopy(dep) == dep


def test_decoding_keeps_only_the_numbers_of_container_ports_and_leaves_service_ports_whole():
    import json

    from opsagent.cluster.kube.health import containers
    from opsagent.cluster.kube.shapes import decoder_for

    [deployment] = decoder_for("deployments")(json.dumps({"items": [_deployment()]}))["items"]
    [service] = decoder_for("services")(json.dumps(
        {"items": [{"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8000}]}}]}))["items"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == (8000,)
    assert service["spec"]["ports"] == ({"port": 80, "targetPort": 8000},)
    assert containers(deployment["spec"]["template"]["spec"])[0].ports == (8000,)