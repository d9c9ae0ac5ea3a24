"""Contract: the kube adapter reads what pods need, and never a Secret's contents.

Against kmock's emulator, with object shapes assembled from the Kubernetes API reference and the
kubelet's and controllers' own wording (tests/fixtures/kube/*-assembled.yaml):
- ConfigMaps and Secrets are listed with `Accept: ...;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`
  (a watch asks `as=PartialObjectMetadata`), with no plain-JSON fallback, one call per kind;
- what the adapter keeps of them is kind, namespace and name: not `data`, and not the annotations
  either (kubectl's last-applied-configuration carries the data), even when the server ignores the
  Accept header and sends whole objects (the emulator does), in a list and in watch events;
- a PersistentVolumeClaim keeps its phase, StorageClass and requested size;
- a Service keeps its selector, ports and cluster address, counts ready and not-ready endpoints from
  its EndpointSlices, and names the workloads whose pod template its selector matches;
- a pod waiting with CreateContainerConfigError keeps the kubelet's reason and message;
- once watching, a Secret created at the server reaches the cache as a name and the next snapshot, and a new
  EndpointSlice raises its Service's ready count; a refused Secrets list is a note, not an error.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from kube_harness import Emulator, fixture

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.config import METADATA_LIST, METADATA_WATCH, decode_names

NOW = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
SECRET_VALUE = "aGZfU0VDUkVUVE9LRU4="
NEEDS = ("/api/v1/configmaps", "/api/v1/secrets", "/api/v1/persistentvolumeclaims", "/api/v1/services",
         "/apis/discovery.k8s.io/v1/endpointslices")


def chat_ui_deployment() -> dict:
    from test_kube_read import dice_roller

    dep = dice_roller()
    dep["metadata"].update(name="chat-ui", namespace="chat", uid="5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b")
    dep["spec"]["template"]["metadata"]["labels"] = {"app": "chat-ui"}
    dep["spec"]["selector"] = {"matchLabels": {"app": "chat-ui"}}
    return dep


def seed(emu: Emulator) -> None:
    for name, count in (("secret-and-configmap-assembled.yaml", 2), ("pvc-pending-storageclass-missing-assembled.yaml", 2),
                        ("service-endpointslice-assembled.yaml", 2), ("replicaset-failedcreate-quota-assembled.yaml", 1),
                        ("pod-createcontainerconfigerror-assembled.yaml", 1)):
        for index in range(count):
            emu.seed(fixture(name, index=index))
    emu.seed(chat_ui_deployment())


@pytest.fixture()
def cluster():
    with Emulator() as emu:
        seed(emu)
        yield KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW)), emu


def _everything_kept(kube: KubeCluster, snap) -> str:
    """All the adapter holds after a snapshot, as text: the snapshot and the watched cache if any."""
    held = [snap.model_dump_json()]
    if kube.cache is not None:
        held += [json.dumps(i.items()) for i in kube.cache.informers.values()]
    return "\n".join(held)


def test_config_and_secrets_are_listed_as_metadata_only_once_per_kind(cluster):
    kube, emu = cluster
    snap = kube.snapshot()
    sent = emu.requests(accept=True)
    for path in NEEDS:
        assert [r["path"] for r in sent].count(path) == 1, path
    accept = {r["path"]: r["accept"] for r in sent}
    assert accept["/api/v1/secrets"] == accept["/api/v1/configmaps"] == METADATA_LIST
    assert "application/json," not in METADATA_LIST + "," and ";as=PartialObjectMetadataList" in METADATA_LIST
    assert accept["/api/v1/services"] == "application/json"
    assert [o.label for o in snap.config_objects] == ["Secret inference/hf-token", "ConfigMap inference/ranker-config"]


def test_no_secret_data_is_kept_even_when_the_server_sends_whole_objects(cluster):
    import urllib.request

    kube, emu = cluster
    asked = urllib.request.Request(f"{emu.url}/api/v1/secrets", headers={"Accept": METADATA_LIST})
    assert SECRET_VALUE in urllib.request.urlopen(asked).read().decode()   # the emulator ignores the Accept header
    snap = kube.snapshot()
    kept = _everything_kept(kube, snap)
    assert SECRET_VALUE not in kept and "last-applied-configuration" not in kept and "ignore previous" not in kept


def test_the_watched_cache_keeps_names_only_and_watches_as_metadata(cluster):
    kube, emu = cluster
    kube.start_watching()
    try:
        snap = kube.snapshot()
        secrets = next(i for i in kube.cache.informers.values() if i.what == "secrets")
        with secrets.changed:
            secrets.changed.wait_for(lambda: secrets.generation > 1, 20)   # its watch is open
        emu.seed({**fixture("secret-and-configmap-assembled.yaml"), "metadata": {
            **fixture("secret-and-configmap-assembled.yaml")["metadata"], "name": "db-creds"}})
        assert [sorted(o) for o in secrets.items()] == [["metadata"]]
        kept = _everything_kept(kube, snap)
    finally:
        kube.stop_watching()
    watches = [r for r in emu.requests(accept=True) if r["path"] == "/api/v1/secrets" and r["params"].get("watch") == "true"]
    assert watches and {r["accept"] for r in watches} == {METADATA_WATCH}
    assert SECRET_VALUE not in kept and "last-applied-configuration" not in kept


def test_decode_names_keeps_names_and_versions_and_a_watch_error_whole():
    body = json.dumps({"kind": "List", "metadata": {"resourceVersion": "9"}, "items": [fixture("secret-and-configmap-assembled.yaml")]})
    assert decode_names(body) == {"metadata": {"resourceVersion": "9"}, "items": [
        {"metadata": {"namespace": "inference", "name": "hf-token", "resourceVersion": "1201"}}]}
    gone = {"type": "ERROR", "object": {"kind": "Status", "metadata": {}, "code": 410, "message": "too old"}}
    assert decode_names(json.dumps(gone)) == gone
    event = {"type": "MODIFIED", "object": fixture("secret-and-configmap-assembled.yaml")}
    assert decode_names(json.dumps(event))["object"] == {
        "metadata": {"namespace": "inference", "name": "hf-token", "resourceVersion": "1201"}}


def test_claims_services_endpoints_and_config_errors(cluster):
    snap = cluster[0].snapshot()
    [claim] = snap.volume_claims
    assert (claim.key, claim.phase, claim.storage_class, claim.requested) == ("inference/model-cache", "Pending", "fast-nvme", "200Gi")
    [svc] = snap.services
    assert (svc.key, svc.cluster_ip, svc.selector, svc.workloads) == ("chat/chat-ui", "10.96.14.7", {"app": "chat-ui"}, ("chat/chat-ui",))
    assert [(p.name, p.port, p.target_port) for p in svc.ports] == [("http", 80, 8080)]
    assert (svc.ready_endpoints, svc.not_ready_endpoints) == (1, 1)
    pod = snap.pod("inference", "embedder-6b8f9c7d4-x2k9p")
    assert (pod.reason, pod.message) == ("CreateContainerConfigError", 'configmap "embedder-config" not found')
    reasons = {(e.kind, e.reason) for e in snap.events}
    assert {("PersistentVolumeClaim", "ProvisioningFailed"), ("ReplicaSet", "FailedCreate")} <= reasons


def test_an_account_without_the_secrets_grant_still_gets_a_snapshot_with_a_note(cluster):
    kube, emu = cluster
    emu.handler["get /api/v1/secrets"] << 403 << {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": 'secrets is forbidden: User "system:serviceaccount:opsagent:opsagent" cannot list resource "secrets" '
                   'in API group "" at the cluster scope'}
    snap = kube.snapshot()
    assert [o.label for o in snap.config_objects] == ["ConfigMap inference/ranker-config"] and snap.services
    [note] = [n for n in snap.notes if "ConfigMaps and Secrets not readable" in n]
    assert "cannot list resource \"secrets\"" in note
    kube.snapshot()
    assert [r["path"] for r in emu.requests()].count("/api/v1/secrets") == 2   # each snapshot lists (no cache): asked again


def _until(informer, done, timeout: float = 20) -> bool:
    with informer.changed:
        return informer.changed.wait_for(done, timeout)


def test_changes_reach_the_next_snapshot_through_the_watch_and_a_new_secret_as_a_name(cluster):
    kube, emu = cluster
    kube.start_watching()
    try:
        before = kube.snapshot()
        informers = {i.what: i for i in kube.cache.informers.values()}
        for informer in informers.values():   # every watch is open
            assert _until(informer, lambda i=informer: i.generation > 1)
        secrets, slices = informers["secrets"], informers["endpointslices"]
        new_secret = {**fixture("secret-and-configmap-assembled.yaml"), "metadata": {"name": "hf-token-2", "namespace": "inference"}}
        kube.chokepoint.read_json("create secret", kube.core.create_namespaced_secret, "inference", new_secret)
        second = fixture("service-endpointslice-assembled.yaml", index=1)   # the controller adds a slice for a new pod
        second["metadata"]["name"], second["endpoints"] = "chat-ui-9zq4w", second["endpoints"][:1]
        kube.chokepoint.read_json("create slice", kube.custom.create_namespaced_custom_object, "discovery.k8s.io", "v1",
                                  "chat", "endpointslices", second)
        def holds(informer, name: str) -> bool:
            return any(o["metadata"]["name"] == name for o in informer._objects.values())   # under its lock

        assert _until(secrets, lambda: holds(secrets, "hf-token-2")) and _until(slices, lambda: holds(slices, "chat-ui-9zq4w"))
        after = kube.snapshot()
        kept = json.dumps(secrets.items())
    finally:
        kube.stop_watching()
    assert "Secret inference/hf-token-2" in [o.label for o in after.config_objects]
    assert SECRET_VALUE not in kept and all(sorted(o) == ["metadata"] for o in secrets.items())
    assert (before.services[0].ready_endpoints, after.services[0].ready_endpoints) == (1, 2)
