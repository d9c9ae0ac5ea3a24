"""What the watched cache keeps of each kind (shapes.py) gives the same view as the whole objects.

Spec:
- every object shape the tests know (tests/fixtures/kube, /work/shared/fixtures/kubernetes, the
  autoscaler, budget and needs samples, the benchmark's real-shaped lists and the golden cases of
  test_kube_build_equivalence), served as a list page and as watch events, decoded by its kind's
  decoder, builds the same Snapshot as the whole objects: equal records and the same JSON;
- so do the adapter's own reads of cached objects (owners, nodes, claims, resourceVersion, ready
  replicas);
- nothing of a Secret's or ConfigMap's contents is kept, even when a server sends whole objects or
  kubectl's last-applied-configuration copies them into an annotation; no object keeps managedFields or
  last-applied-configuration, and a Snapshot never shows that annotation;
- equal strings and records of one list are kept once, and the shaped objects are not mutated by a snapshot;
- lists are read in pages (`limit` and the continue token), the pages joined in order; a continue token
  that expired (410) lists again in one call; every page of one kind is shaped as it arrives.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_harness import StatusServer, _strings
from test_kube_autoscalers import HPA, HTTP_SCALED_OBJECT, KEDA_HPA, SCALED_OBJECT
from test_kube_build_equivalence import CASES, _bench
from test_kube_disruption import PDB

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.informer import Informer, list_all
from opsagent.cluster.kube.read import LAST_APPLIED, Metrics, RawLists, _pod_owners, build_snapshot, controller_ref
from opsagent.cluster.kube.shapes import NAMES_ONLY, SHAPES, decoder_for
from opsagent.cluster.kube.waiting import ready_replicas, version_of

NOW = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
HERE = Path(__file__).parent
FIXTURE_DIRS = (HERE / "fixtures" / "kube", Path("/work/shared/fixtures/kubernetes"))

# RawLists slot -> the kind's name in the adapter's list calls
SLOTS = {
    "deployments": "deployments", "statefulsets": "statefulsets", "replicasets": "replicasets", "pods": "pods",
    "nodes": "nodes", "events": "events", "resource_slices": "resourceslices", "resource_claims": "resourceclaims",
    "hpas": "horizontalpodautoscalers", "scaled_objects": "scaledobjects.keda.sh",
    "http_scaled_objects": "httpscaledobjects.http.keda.sh", "disruption_budgets": "poddisruptionbudgets",
    "config_maps": "configmaps", "secrets": "secrets", "volume_claims": "persistentvolumeclaims",
    "services": "services", "endpoint_slices": "endpointslices",
}
KINDS = {
    "Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets", "Pod": "pods",
    "Node": "nodes", "Event": "events", "ResourceSlice": "resource_slices", "ResourceClaim": "resource_claims",
    "HorizontalPodAutoscaler": "hpas", "ScaledObject": "scaled_objects", "HTTPScaledObject": "http_scaled_objects",
    "PodDisruptionBudget": "disruption_budgets", "ConfigMap": "config_maps", "Secret": "secrets",
    "PersistentVolumeClaim": "volume_claims", "Service": "services", "EndpointSlice": "endpoint_slices",
}
EXTRAS = {  # what API servers add to every object that no decoder reads
    "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
    "selfLink": "/api/v1/x", "finalizers": ["x/y"],
}
SECRET_VALUE = "aGZfU0VDUkVUVE9LRU4="


def _fixture_objects() -> list[dict[str, Any]]:
    """Every object of a listed kind in the fixture files (YAML timestamps as the API server writes them)."""
    found = []
    for folder in FIXTURE_DIRS:
        for path in sorted(folder.glob("*")):
            if path.suffix == ".json":
                docs = [json.loads(path.read_text())]
            elif path.suffix == ".yaml":
                docs = [_strings(d) for d in yaml.safe_load_all(path.read_text()) if d]
            else:
                continue
            for doc in docs:
                for obj in doc.get("items") or [doc] if isinstance(doc, dict) else ():
                    if isinstance(obj, dict) and obj.get("kind") in KINDS:
                        if obj["kind"] not in ("Node", "ResourceSlice"):   # listed, a namespaced object has one
                            obj["metadata"].setdefault("namespace", "default")
                        found.append(obj)
    return found


def _samples() -> RawLists:
    """The fixtures, the reference-doc samples of other tests, and the benchmark's real-shaped lists."""
    raw = RawLists(resource_slices=[], resource_claims=[], scaled_objects=[], http_scaled_objects=[])
    objects = _fixture_objects() + [HPA, KEDA_HPA, SCALED_OBJECT, HTTP_SCALED_OBJECT, PDB]
    for obj in objects:
        getattr(raw, KINDS[obj["kind"]]).append(copy.deepcopy(obj))
    edge, _ = CASES["edge-cases"]()   # StatefulSets, Jobs, DRA claims and odd values
    for slot in SLOTS:
        getattr(raw, slot).extend(getattr(edge, slot) or ())
    routes = _bench().build_real(12)
    for slot, kind in SLOTS.items():
        path = next((p for p in routes if p.rsplit("/", 1)[-1] == kind.split(".")[0]), None)
        if path is not None:
            getattr(raw, slot).extend(json.loads(routes[path])["items"])
    return raw


def _served(raw: RawLists, *, events: bool = False) -> RawLists:
    """`raw` as the adapter keeps it: each list sent as a response body (each object with what servers add),
    decoded by its kind's decoder, as one list page or (`events`) as one watch event per object."""
    out = copy.deepcopy(raw)
    for slot, kind in SLOTS.items():
        items = getattr(out, slot)
        if items is None:
            continue
        for item in items:
            item.setdefault("metadata", {}).update(copy.deepcopy(EXTRAS))
        decode = decoder_for(kind)
        if events:
            shaped = [decode(json.dumps({"type": "ADDED", "object": item}).encode())["object"] for item in items]
        else:
            shaped = decode(json.dumps({"metadata": {"resourceVersion": "9"}, "items": items}).encode())["items"]
        setattr(out, slot, list(shaped))
    return out


def _whole(raw: RawLists) -> RawLists:
    out = copy.deepcopy(raw)
    for slot in SLOTS:
        items = getattr(out, slot)
        if items is not None:
            setattr(out, slot, json.loads(json.dumps(items)))
    return out


def _same(raw: RawLists, metrics: Metrics | None) -> None:
    whole = build_snapshot(_whole(raw), now=NOW, metrics=metrics)
    for events in (False, True):
        shaped = _served(raw, events=events)
        before = copy.deepcopy(shaped)
        snap = build_snapshot(shaped, now=NOW, metrics=metrics)
        assert snap == whole
        assert snap.model_dump_json() == whole.model_dump_json()
        assert shaped == before   # building a snapshot reads the cached objects, never changes them


def test_every_kind_the_adapter_lists_has_a_shape():
    assert set(SLOTS.values()) == set(SHAPES) | NAMES_ONLY
    assert decoder_for("pods in team-a") is not None   # a kind read per namespace has the same shape
    with pytest.raises(KeyError):
        decoder_for("leases")


def test_the_samples_cover_every_kind():
    raw = _samples()
    assert all(getattr(raw, slot) for slot in SLOTS), [slot for slot in SLOTS if not getattr(raw, slot)]


def test_shaped_fixture_objects_build_the_same_snapshot():
    _same(_samples(), None)


@pytest.mark.parametrize("obj", _fixture_objects() + [HPA, KEDA_HPA, SCALED_OBJECT, HTTP_SCALED_OBJECT, PDB],
                         ids=lambda o: f"{o['kind']}-{o['metadata'].get('name')}")
def test_each_object_alone_builds_the_same_snapshot(obj):
    raw = RawLists(resource_slices=[], resource_claims=[], scaled_objects=[], http_scaled_objects=[])
    getattr(raw, KINDS[obj["kind"]]).append(copy.deepcopy(obj))
    _same(raw, Metrics(pod_gpu_utilization={}, request_rate={}))


@pytest.mark.parametrize("name", sorted(CASES))
def test_shaped_golden_cases_build_the_same_snapshot(name):
    raw, metrics = CASES[name]()
    _same(raw, metrics)


def test_the_adapters_own_reads_of_cached_objects_are_the_same():
    raw = _samples()
    shaped = _served(raw)
    for whole, kept in zip(raw.pods, shaped.pods):
        assert _pod_owners(kept["metadata"]) == _pod_owners(whole["metadata"])
        assert kept["spec"].get("nodeName") == (whole.get("spec") or {}).get("nodeName")
        assert version_of(kept) == version_of(whole)
    for whole, kept in zip(raw.replicasets, shaped.replicasets):
        assert controller_ref(kept["metadata"], "Deployment") == controller_ref(whole["metadata"], "Deployment")
    for whole, kept in zip(raw.deployments + raw.statefulsets, shaped.deployments + shaped.statefulsets):
        assert ready_replicas(kept) == ready_replicas(whole) and version_of(kept) == version_of(whole)
    for whole, kept in zip(raw.resource_claims or (), shaped.resource_claims or ()):
        assert [c.get("name") for c in kept["status"]["reservedFor"]] == \
            [c.get("name") for c in whole["status"]["reservedFor"]]


def test_no_secret_data_managed_fields_or_last_applied_configuration_is_kept():
    raw = _samples()
    # a server that ignores the metadata-only Accept header: whole Secrets and ConfigMaps, data and all
    whole_secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": "db", "namespace": "app", "labels": {"app": "db"},
                                 "annotations": {LAST_APPLIED: json.dumps({"data": {"password": SECRET_VALUE}})}},
                    "data": {"password": SECRET_VALUE}, "stringData": {"token": SECRET_VALUE}}
    raw.secrets.append(whole_secret)
    raw.config_maps.append({**whole_secret, "kind": "ConfigMap", "binaryData": {"b": SECRET_VALUE}})
    assert SECRET_VALUE in json.dumps(raw.secrets)   # the fixture's Secret carries it too
    for events in (False, True):
        shaped = _served(raw, events=events)
        text = json.dumps([getattr(shaped, slot) for slot in SLOTS])
        assert SECRET_VALUE not in text
        assert "managedFields" not in text and LAST_APPLIED not in text and "selfLink" not in text
        for obj in shaped.secrets + shaped.config_maps:
            assert set(obj) == {"metadata"} and set(obj["metadata"]) <= {"name", "namespace", "resourceVersion"}
    snap = build_snapshot(_whole(raw), now=NOW)
    assert LAST_APPLIED not in snap.model_dump_json()
    assert any(LAST_APPLIED in (d.get("metadata", {}).get("annotations") or {}) for d in raw.deployments)


def test_a_pod_keeps_what_is_read_and_drops_the_rest():
    pod = {"metadata": {"name": "p", "namespace": "a", "resourceVersion": "7", "uid": "u", "generateName": "p-",
                        "labels": {"env": "prod", "ports": "80"}, "annotations": {"command": "kept", LAST_APPLIED: "{}"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "x",
                                             "controller": True}]},
           "spec": {"containers": [{"name": "c", "image": "i:1", "env": [{"name": "A", "value": "1"}],
                                    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "2"}}}],
                    "nodeName": "n1", "tolerations": [{"key": "k"}], "volumes": [{"name": "v"}]},
           "status": {"phase": "Running", "podIP": "10.0.0.1",
                      "conditions": [{"type": "Initialized", "status": "True"},
                                     {"type": "Ready", "status": "True", "lastProbeTime": None}],
                      "containerStatuses": [{"name": "c", "restartCount": 2, "imageID": "sha", "ready": True,
                                             "state": {"running": {"startedAt": "2026-01-05T00:00:00Z"}},
                                             "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                          "containerID": "x"}}}]}}
    [item] = decoder_for("pods")(json.dumps({"items": [pod]}))["items"]
    assert item["metadata"] == {"name": "p", "namespace": "a", "resourceVersion": "7",
                                "ownerReferences": ({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "x",
                                                     "controller": True},),
                                "labels": {"env": "prod", "ports": "80"}, "annotations": {"command": "kept"}}
    assert item["spec"] == {"nodeName": "n1", "containers": ({"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}},)}
    assert item["status"] == {"phase": "Running", "conditions": ({"type": "Ready", "status": "True"},),
                              "containerStatuses": ({"name": "c", "restartCount": 2,
                                                     "state": {"running": {"startedAt": "2026-01-05T00:00:00Z"}},
                                                     "lastState": {"terminated": {"reason": "OOMKilled",
                                                                                  "exitCode": 137}}},)}


def test_a_terminated_state_that_says_nothing_read_still_counts_as_ended():
    """health.terminations takes `state.terminated` over `lastState.terminated` whenever it is there at all."""
    status = {"containerStatuses": [{"name": "c", "state": {"terminated": {"startedAt": "2026-01-05T00:00:00Z"}},
                                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
    pod = {"metadata": {"name": "p", "namespace": "a"}, "status": status}
    raw = RawLists(pods=[pod])
    _same(raw, None)


def test_equal_strings_and_records_of_one_list_are_kept_once():
    routes = _bench().build_real(8)
    body = json.loads(routes["/api/v1/pods"])
    items = decoder_for("pods")(json.dumps(body))["items"]
    ready = [c for item in items for c in item["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert len(ready) == len(items) and len({id(c) for c in ready}) == 1
    namespaces = [item["metadata"]["namespace"] for item in items if item["metadata"]["namespace"] == "team-0"]
    assert len({id(n) for n in namespaces}) == 1


# --- lists in pages ------------------------------------------------------------------------------------------------

def _page(names: list[str], token: str | None) -> dict[str, Any]:
    meta = {"resourceVersion": "41", **({"continue": token} if token else {})}
    return {"kind": "PodList", "metadata": meta, "items": [
        {"metadata": {"name": n, "namespace": "a", "managedFields": [{"manager": "m"}]}, "spec": {"nodeName": "n1"}}
        for n in names]}


def _kube(url: str) -> KubeCluster:
    return KubeCluster(api_client_for_url(url), clock=VirtualClock(NOW))


def test_a_list_is_read_in_pages_and_each_page_is_shaped():
    with StatusServer([(200, _page(["p1", "p2"], "tok-1")), (200, _page(["p3"], "tok-2")),
                       (200, _page([], None))]) as server:
        kube = _kube(server.url)
        items, version = list_all(kube.chokepoint, "pods", kube.core.list_pod_for_all_namespaces)
    assert [i["metadata"]["name"] for i in items] == ["p1", "p2", "p3"] and version == "41"
    assert all("managedFields" not in i["metadata"] for i in items)
    params = [seen["params"] for seen in server.seen]
    assert [p.get("limit") for p in params] == ["500"] * 3
    assert [p.get("continue") for p in params] == [None, "tok-1", "tok-2"]


def test_an_expired_continue_token_lists_again_in_one_call():
    gone = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410,
            "message": "The provided continue parameter is too old"}
    with StatusServer([(200, _page(["p1"], "tok-1")), (410, gone), (200, _page(["p1", "p2"], None))]) as server:
        kube = _kube(server.url)
        items, _ = list_all(kube.chokepoint, "pods", kube.core.list_pod_for_all_namespaces)
    assert [i["metadata"]["name"] for i in items] == ["p1", "p2"]
    assert [seen["params"].get("limit") for seen in server.seen] == ["500", "500", None]


def test_the_cache_lists_in_pages_too():
    with StatusServer([(200, _page(["p1"], "tok-1")), (200, _page(["p2"], None))]) as server:
        kube = _kube(server.url)
        informer = Informer(kube.chokepoint, "pods", kube.core.list_pod_for_all_namespaces, clock=kube.clock)
        informer.relist()
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["p1", "p2"]
    assert informer.version == "41" and informer.lists == 1


# --- the snapshot's records ----------------------------------------------------------------------------------------

def test_records_with_equal_fields_set_share_one_set_and_a_copy_gets_its_own():
    raw, metrics = CASES["bench-real-40"]()
    snap = build_snapshot(raw, now=NOW, metrics=metrics)
    fresh = build_snapshot(_whole(raw), now=NOW, metrics=metrics)
    sets = {id(p.__pydantic_fields_set__) for p in snap.pods if p.model_fields_set == snap.pods[0].model_fields_set}
    assert len(sets) == 1 and len(snap.pods) > 1
    assert {id(w.__pydantic_fields_set__) for w in snap.workloads} == {id(snap.workloads[0].__pydantic_fields_set__)}
    unset = next(name for name in type(snap.workloads[0]).model_fields if name not in snap.workloads[0].model_fields_set)
    before = set(snap.workloads[1].model_fields_set)
    changed = snap.workloads[0].model_copy(update={unset: getattr(snap.workloads[0], unset)})
    assert unset in changed.model_fields_set
    assert snap.workloads[1].model_fields_set == before and unset not in snap.workloads[0].model_fields_set
    assert snap == fresh and snap.model_dump_json(exclude_unset=True) == fresh.model_dump_json(exclude_unset=True)
