"""The snapshot conversion step (`build_snapshot`) reproduces stored golden snapshots exactly.

Spec:
- each case is a fixed set of raw list items (plus metrics) fed straight into
  `build_snapshot`; its `model_dump_json()` must equal the golden file byte for
  byte, so any change to the conversion's output shows up here;
- the cases: the objects the kube read tests seed into the emulator (with and
  without Prometheus metrics), the benchmark's real-shaped and minimal lists
  for 40 Deployments (with DRA objects and metrics added), and a hand-made set
  of edge cases (odd revisions, missing fields, bad timestamps and quantities,
  StatefulSets, Jobs, more events than are kept);
- every snapshot survives a JSON round trip unchanged.

Golden files live in tests/fixtures/kube/golden/. They are written only when
OPSAGENT_WRITE_GOLDEN=1 is set and a file is missing; an existing golden file
is never rewritten by this module.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from kube_samples import finished_job_pod, job_pod
from test_kube_read import dra_objects, seed_cluster

from opsagent.cluster.kube.read import Metrics, RawLists, build_snapshot
from opsagent.model import Snapshot

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "fixtures" / "kube" / "golden"
FIELDS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets", "Pod": "pods",
          "Node": "nodes", "Event": "events", "ResourceSlice": "resource_slices", "ResourceClaim": "resource_claims"}


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("kube_snapshot_bench", ROOT / "evals/bench/kube_snapshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class Seeder:
    """Collects what `seed_cluster` would store in the emulator, keyed as the emulator keys it."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self.objects[obj["kind"], meta.get("namespace"), meta["name"]] = copy.deepcopy(obj)
        return obj

    def raw(self) -> RawLists:
        raw = RawLists(resource_slices=[], resource_claims=[])
        for (kind, _, _), obj in self.objects.items():
            getattr(raw, FIELDS[kind]).append(obj)
        return raw


def _emulator_seed() -> RawLists:
    seeder = Seeder()
    seed_cluster(seeder)  # type: ignore[arg-type]
    for obj in (job_pod("finetune", "finetune-a"), job_pod("finetune", "finetune-b"),
                finished_job_pod("eval-3", "eval-3-x", "Succeeded"), finished_job_pod("eval-4", "eval-4-x", "Failed"),
                finished_job_pod("eval-4", "eval-4-y", "Succeeded")):
        seeder.seed(obj)
    return seeder.raw()


def _emulator_metrics() -> Metrics:
    return Metrics(pod_gpu_utilization={"llm/vllm-llama-5c7f9d8b6d-r7k4m": 37.5, "ml/trainer-0": 120.0},
                   request_rate={"llm/vllm-llama": 0.0, "default/dice-roller": 2.5}, notes=("from Prometheus",))


def _bench_lists(builder: str, n: int) -> RawLists:
    """The benchmark's list bodies, parsed, plus a DRA node, slice, claim and the pod holding it."""
    routes = getattr(_bench(), builder)(n)
    items = {path: json.loads(body).get("items") for path, body in routes.items()}
    raw = RawLists(deployments=items["/apis/apps/v1/deployments"], statefulsets=items["/apis/apps/v1/statefulsets"],
                   replicasets=items["/apis/apps/v1/replicasets"], pods=items["/api/v1/pods"],
                   nodes=items["/api/v1/nodes"], events=items["/api/v1/events"], resource_slices=[], resource_claims=[])
    node, resource_slice, claim, pod = dra_objects()
    raw.nodes.append(node)
    raw.resource_slices.append(resource_slice)
    raw.resource_claims.append(claim)
    raw.pods.append(pod)
    return raw


def _bench_metrics(n: int) -> Metrics:
    util = {f"team-{i % 20}/svc-{i}-rs2-{k}": float((i * 7 + k * 13) % 101) for i in range(0, n, 4) for k in range(2)}
    util["ml/trainer-0"] = 55.0
    rates = {f"team-{i % 20}/svc-{i}": round(i * 0.25, 2) for i in range(0, n, 3)}
    return Metrics(pod_gpu_utilization=util, request_rate=rates, notes=("bench metrics",))


def _deployment(name: str, *, namespace: str = "edge", annotations: dict | None = None, spec: dict | None = None,
                status: dict | None = None, generation: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    if generation is not None:
        meta["generation"] = generation
    obj: dict[str, Any] = {"kind": "Deployment", "metadata": meta}
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    return obj


def _container(name: str, *, image: str = "img:1", resources: dict | None = None) -> dict[str, Any]:
    return {"name": name, "image": image, **({"resources": resources} if resources is not None else {})}


def _template(*containers: dict[str, Any], annotations: dict | None = None) -> dict[str, Any]:
    meta = {"labels": {"app": "x"}, **({"annotations": annotations} if annotations is not None else {})}
    return {"metadata": meta, "spec": {"containers": list(containers)}}


def _rs(name: str, owner: str | None, revision: Any, *, namespace: str = "edge", image: str = "img:1",
        created: Any = "2026-01-01T00:00:00Z", cause: str | None = None, extra_refs: list | None = None) -> dict:
    annotations: dict[str, Any] = {}
    if revision is not None:
        annotations["deployment.kubernetes.io/revision"] = revision
    if cause is not None:
        annotations["kubernetes.io/change-cause"] = cause
    refs = list(extra_refs or []) + ([{"kind": "Deployment", "name": owner, "controller": True}] if owner else [])
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": annotations, "ownerReferences": refs}
    if created is not None:
        meta["creationTimestamp"] = created
    return {"kind": "ReplicaSet", "metadata": meta, "spec": {"template": _template(_container("c", image=image))}}


def _pod(name: str, *, namespace: str = "edge", owners: list | None = None, node: str | None = None,
         containers: list | None = None, status: dict | None = None, meta: dict | None = None) -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, "ownerReferences": owners or [], **(meta or {})}
    spec: dict[str, Any] = {"containers": containers if containers is not None else [_container("c")]}
    if node is not None:
        spec["nodeName"] = node
    obj: dict[str, Any] = {"kind": "Pod", "metadata": metadata, "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


def _gpu(n: Any, section: str = "limits") -> dict[str, Any]:
    return {section: {"nvidia.com/gpu": n}}


def _edge_cases() -> tuple[RawLists, Metrics]:
    running = {"phase": "Running", "startTime": "2026-01-05T10:00:00+00:00",
               "conditions": [{"type": "Ready", "status": "True"}]}
    deployments = [
        _deployment("unobserved", generation=3, annotations={"deployment.kubernetes.io/revision": "3"},
                    spec={"replicas": 2, "template": _template(_container("c", image="img:3"))},
                    status={"observedGeneration": 2, "conditions": [
                        {"type": "Progressing", "reason": "ReplicaSetUpdated", "message": "m",
                         "lastTransitionTime": "2026-01-05T09:00:00Z"}]}),
        _deployment("short", annotations={"deployment.kubernetes.io/revision": "abc"},
                    spec={"replicas": 3, "template": _template()}, status={"replicas": 3, "updatedReplicas": 1}),
        _deployment("old-left", annotations={"deployment.kubernetes.io/revision": "0"},
                    spec={"replicas": 2}, status={"replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
        _deployment("unavailable", spec={"replicas": "2"},
                    status={"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1, "readyReplicas": "1",
                            "conditions": [{"type": "Available", "status": "False"},
                                           {"type": "Progressing", "reason": "NewReplicaSetAvailable",
                                            "lastUpdateTime": "not a time", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        _deployment("stuck", annotations={"deployment.kubernetes.io/revision": "7"},
                    spec={"replicas": 1}, status={"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                                                  "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded",
                                                                  "message": "timed out", "lastUpdateTime": "2026-01-05T11:00:00Z"}]}),
        _deployment("bare"),
        _deployment("negative", spec={"replicas": -2}, status={"readyReplicas": -1, "updatedReplicas": 0}),
        _deployment("gpu-heavy", annotations={"opsagent.dev/gpu-min-link-width": "8", "opsagent.dev/tensor-parallel": "TRUE",
                                              "deployment.kubernetes.io/revision": "2"},
                    spec={"replicas": 2, "template": _template(
                        _container("a", image="big:1", resources={**_gpu(2), "requests": {"nvidia.com/gpu": "1", "memory": "16Gi"}}),
                        _container("b", image="side:1", resources={"limits": {"memory": "512Mi"}}),
                        _container("c", image="side:2", resources={"requests": {"memory": "lots"}}),
                        _container("d", image="side:3", resources=_gpu(1, "requests")),
                        annotations={"opsagent.dev/gpu-coherent": "True", "opsagent.dev/gpu-min-link-width": "4"})},
                    status={"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
        _deployment("template-intents", spec={"replicas": 1, "template": _template(
            _container("a", resources=_gpu(1)),
            annotations={"opsagent.dev/tensor-parallel": "true", "opsagent.dev/gpu-min-link-width": "64"})}),
        _deployment("wide-zero", annotations={"opsagent.dev/gpu-min-link-width": "0", "opsagent.dev/gpu-coherent": "yes"},
                    spec={"template": {"spec": {"containers": []}}}),
        _deployment("bad-intent", annotations={"opsagent.dev/idle-after": "soon"}, spec={"replicas": 1}),
        _deployment("other-ns", namespace="edge-2", spec={"replicas": 1, "template": _template(_container("a", resources=_gpu(1)))}),
    ]
    replicasets = [
        _rs("unobserved-3", "unobserved", "3", image="img:3", cause="kubectl set image"),
        _rs("unobserved-1", "unobserved", "1", image="img:1", created="2025-12-01 08:00:00+00:00"),
        _rs("unobserved-2", "unobserved", "2", image="img:2", created="garbage", extra_refs=[{"kind": "Other", "name": "x"}]),
        _rs("unobserved-x", "unobserved", "x"),
        _rs("unobserved-neg", "unobserved", "-1"),
        _rs("unobserved-none", "unobserved", None, created=None),
        _rs("orphan-rs", None, "5"),
        _rs("ghost-rs", "ghost", "4"),
        _rs("gpu-heavy-2", "gpu-heavy", "2", created=None),
        _rs("other-ns-1", "other-ns", 1, namespace="edge-2", created=1767225600),
        {"kind": "ReplicaSet", "metadata": {"name": "no-spec", "namespace": "edge",
                                            "ownerReferences": [{"kind": "Deployment", "name": "bare",
                                                                                 "controller": True}],
                                            "annotations": {"deployment.kubernetes.io/revision": "1"}}},
    ]
    statefulsets = [
        {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "edge", "labels": {"tier": "db"}},
         "spec": {"replicas": 3, "template": _template(_container("db", image="pg:16", resources=_gpu("1")))},
         "status": {"replicas": 3, "updatedReplicas": 2, "readyReplicas": 2}},
        {"kind": "StatefulSet", "metadata": {"name": "cache", "namespace": "edge", "annotations": {"deployment.kubernetes.io/revision": "9"}},
         "spec": {"template": _template(_container("cache", image="redis:7"))}, "status": {"updatedReplicas": 1}},
    ]
    rs_ref = lambda name: {"kind": "ReplicaSet", "name": name}  # noqa: E731
    sts_ref = lambda name: {"kind": "StatefulSet", "name": name}  # noqa: E731
    gpu_container = [_container("c", resources=_gpu("1"))]
    pods = [
        _pod("unobserved-3-a", owners=[rs_ref("unobserved-3")], node="plug-a", containers=gpu_container, status=running),
        _pod("unobserved-3-b", owners=[{"kind": "Other", "name": "x"}, rs_ref("unobserved-3")], node="plug-a",
             containers=[_container("c", resources={**_gpu("2"), "requests": {"nvidia.com/gpu": "1"}})],
             status={"phase": "Running", "startTime": "bad", "containerStatuses": [
                 {"name": "c", "restartCount": 2, "state": {"running": {}}}, {"name": "d", "restartCount": "3"},
                 {"name": "e", "restartCount": None}]}),
        _pod("unobserved-1-a", owners=[rs_ref("unobserved-1")], node="plug-a", containers=gpu_container,
             status={"phase": "Pending", "initContainerStatuses": [
                 {"name": "init", "state": {"waiting": {"reason": "PodInitializing"}}}],
                 "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ErrImagePull", "message": "pull failed"}}}]}),
        _pod("unobserved-1-b", owners=[rs_ref("unobserved-1")],
             status={"phase": "Pending", "initContainerStatuses": [
                 {"name": "init", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}],
                 "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no"}]}),
        _pod("unobserved-2-a", owners=[rs_ref("unobserved-2")], containers=gpu_container,
             status={"phase": "Pending", "containerStatuses": [{"name": "c", "state": {"waiting": {}}}],
                     "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": "0/3 nodes are available"}]}),
        _pod("terminating", owners=[rs_ref("unobserved-2")], node="plug-b", containers=gpu_container,
             meta={"deletionTimestamp": "2026-01-05T11:59:00Z", "labels": {"a": "b"}, "annotations": {"c": "d"}},
             status={**running, "reason": "ignored"}),
        _pod("evicted", owners=[rs_ref("orphan-rs")], node="plug-b", containers=gpu_container,
             status={"phase": "Failed", "reason": "Evicted", "message": "low memory"}),
        _pod("done", owners=[rs_ref("ghost-rs")], node="plug-b", containers=gpu_container, status={"phase": "Succeeded"}),
        _pod("unknown-phase", owners=[rs_ref("missing-rs")], status={"phase": "Unknown"}),
        _pod("no-status", owners=[rs_ref("gpu-heavy-2")], node="plug-b",
             containers=[_container("a", resources=_gpu(2)), _container("b", resources=_gpu(1, "requests"))]),
        _pod("gpu-heavy-2-b", owners=[rs_ref("gpu-heavy-2")], node="plug-b",
             containers=[_container("a", resources=_gpu(4))], status=running),
        _pod("db-0", owners=[sts_ref("db")], node="plug-c", containers=gpu_container, status=running),
        _pod("db-1", owners=[rs_ref("not-listed"), sts_ref("db")], node="plug-c", containers=gpu_container, status=running),
        _pod("db-2", owners=[rs_ref("orphan-rs"), sts_ref("db")], node="nowhere", containers=gpu_container, status=running),
        _pod("cache-0", owners=[sts_ref("cache")], status={"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
        _pod("sts-unknown", owners=[sts_ref("gone")], status=running),
        _pod("other-ns-1-a", namespace="edge-2", owners=[rs_ref("other-ns-1")], node="plug-c", containers=gpu_container,
             status=running),
        _pod("claimed", owners=[rs_ref("other-ns-1")], namespace="edge-2", node="dra-a",
             containers=[_container("c", resources={"claims": [{"name": "gpu"}]})], status=running),
        _pod("mixed", node="plug-c", containers=gpu_container, status=running),
        job_pod("edge-train", "edge-train-a", namespace="edge"),
        finished_job_pod("edge-eval", "edge-eval-a", "Failed"),
        _pod("cpu-job", owners=[{"apiVersion": "batch/v1", "kind": "Job", "name": "cpu-job"}], status=running),
    ]
    nodes = [
        {"kind": "Node", "metadata": {"name": "plug-a", "labels": {"nvidia.com/gpu.product": "A100", "nvidia.com/gpu.memory": "40960",
                                                                  "opsagent.dev/gpu-link-width": "8"}},
         "status": {"allocatable": {"nvidia.com/gpu": "2"}, "conditions": [{"type": "Ready", "status": "True"}]}},
        {"kind": "Node", "metadata": {"name": "plug-b", "labels": {"nvidia.com/gpu.memory": "lots", "nvidia.com/gpu.count": "9"}},
         "spec": {"unschedulable": True},
         "status": {"capacity": {"nvidia.com/gpu": "4"}, "conditions": [{"type": "Ready", "status": "False"}]}},
        {"kind": "Node", "metadata": {"name": "plug-c", "labels": {"nvidia.com/gpu.count": "3", "opsagent.dev/gpu-link-width": "x"}},
         "status": {}},
        {"kind": "Node", "metadata": {"name": "cpu-only"}, "status": {"allocatable": {"cpu": "8"}}},
        {"kind": "Node", "metadata": {"name": "dra-a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
    ]
    slices = [{"kind": "ResourceSlice", "metadata": {"name": "dra-a-slice"},
               "spec": {"nodeName": "dra-a", "driver": "gpu.nvidia.com", "pool": {"name": "dra-a"}, "devices": [
                   {"name": "gpu-0", "attributes": {"type": {"string": "gpu"}, "productName": {"string": "H100"},
                                                    "pcieRoot": {"string": "pci0000:01"}, "numaNode": {"int": 1},
                                                    "pcieLinkWidth": {"int": 8}},
                    "capacity": {"memory": {"value": "80Gi"}}},
                   {"name": "gpu-1", "basic": {"attributes": {"productName": {"string": "H100"}, "linkWidth": {"int": 64}},
                                               "capacity": {"memory": "80Gi"}}},
                   {"name": "gpu-0-mig", "attributes": {"type": {"string": "mig"}}}]}}]
    claims = [{"kind": "ResourceClaim", "metadata": {"name": "c1", "namespace": "edge-2"},
               "status": {"allocation": {"devices": {"results": [
                   {"driver": "gpu.nvidia.com", "pool": "dra-a", "device": "gpu-0"},
                   {"driver": "gpu.nvidia.com", "pool": "dra-a", "device": "gpu-1"}]}},
                   "reservedFor": [{"resource": "pods", "name": "claimed"}, {"resource": "things", "name": "x"}]}},
              {"kind": "ResourceClaim", "metadata": {"name": "c2", "namespace": "edge"},
               "status": {"allocation": {"devices": {"results": [{"driver": "other", "pool": "elsewhere", "device": "d"}]}},
                          "reservedFor": [{"name": "mixed"}]}}]
    events = []
    for i in range(520):
        stamp = f"2026-01-05T{10 + i % 3:02d}:00:00Z"
        events.append({"metadata": {"name": f"ev{i}", "namespace": "edge", "creationTimestamp": stamp},
                       "involvedObject": {"kind": "Pod", "name": f"p{i}"}, "type": "Warning" if i % 5 == 0 else "Normal",
                       "reason": "Tick", "message": f"tick {i}"})
    events += [
        {"metadata": {"name": "new-api", "namespace": "edge-2"}, "regarding": {"kind": "Deployment", "name": "other-ns"},
         "eventTime": "2026-01-05T11:30:00.123456Z", "reason": "ScalingReplicaSet", "note": "scaled", "type": "Odd"},
        {"metadata": {"name": "no-reason", "namespace": "edge"}, "lastTimestamp": "2026-01-05T11:00:00Z"},
        {"metadata": {"name": "no-time", "namespace": "edge"}, "reason": "X"},
        {"metadata": {"name": "bad-time", "namespace": "edge"}, "reason": "X", "lastTimestamp": "yesterday"},
        {"metadata": {"name": "first", "namespace": "edge"}, "involvedObject": {"namespace": "other", "name": "n"},
         "firstTimestamp": "2026-01-05T11:45:00+00:00", "reason": "Y"},
    ]
    metrics = Metrics(
        pod_gpu_utilization={"edge/unobserved-3-a": 40.0, "edge/unobserved-3-b": 60.0, "edge/db-0": 10.0,
                             "edge/mixed": 250.0, "edge/edge-eval-a": -5.0, "edge-2/claimed": 99.5},
        request_rate={"edge/unobserved": 1.5, "edge/db": 0.0, "edge/bare": 3.0}, notes=())
    raw = RawLists(deployments=deployments, statefulsets=statefulsets, replicasets=replicasets, pods=pods, nodes=nodes,
                   events=events, resource_slices=slices, resource_claims=claims)
    return raw, metrics


def _edge_without_dra() -> RawLists:
    raw, _ = _edge_cases()
    raw.resource_slices = raw.resource_claims = None
    raw.dra_unreadable = "resourceslices is forbidden"
    return raw


CASES: dict[str, Callable[[], tuple[RawLists, Metrics | None]]] = {
    "emulator-seed": lambda: (_emulator_seed(), None),
    "emulator-seed-metrics": lambda: (_emulator_seed(), _emulator_metrics()),
    "bench-real-40": lambda: (_bench_lists("build_real", 40), _bench_metrics(40)),
    "bench-minimal-40": lambda: (_bench_lists("build_minimal", 40), _bench_metrics(40)),
    "bench-minimal-40-no-metrics": lambda: (_bench_lists("build_minimal", 40), None),
    "edge-cases": _edge_cases,
    "edge-cases-no-dra": lambda: (_edge_without_dra(), Metrics(pod_gpu_utilization={}, request_rate=None)),
}


def _build(name: str) -> Snapshot:
    raw, metrics = CASES[name]()
    before = copy.deepcopy(raw)
    snap = build_snapshot(raw, now=NOW, metrics=metrics)
    assert raw == before, f"{name}: build_snapshot changed its input"
    return snap


@pytest.mark.parametrize("name", sorted(CASES))
def test_snapshot_matches_golden(name):
    snap = _build(name)
    text = snap.model_dump_json(indent=1)
    path = GOLDEN / f"{name}.json"
    if not path.exists():
        if os.environ.get("OPSAGENT_WRITE_GOLDEN") != "1":
            pytest.fail(f"{path} is missing; set OPSAGENT_WRITE_GOLDEN=1 to write it from the current code")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    assert text + "\n" == path.read_text(), f"{name}: snapshot differs from {path}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_snapshot_survives_a_json_round_trip(name):
    snap = _build(name)
    assert Snapshot.model_validate_json(snap.model_dump_json()) == snap


def test_cases_cover_the_branches_the_golden_files_guard():
    """The golden files would pass vacuously if the cases lost their variety: check it is there."""
    edge = _build("edge-cases")
    assert {w.rollout.status for w in edge.workloads} == {"progressing", "complete", "failed"}
    assert {w.ref.kind for w in edge.workloads} == {"Deployment", "StatefulSet"}
    assert len(edge.events) == 500 and edge.jobs and any(n.gpus for n in edge.nodes)
    assert any(w.history for w in edge.workloads) and any(g.holder for n in edge.nodes for g in n.gpus)
    assert any(w.gpu_utilization for w in edge.workloads) and any(w.request_rate for w in edge.workloads)
    assert {p.reason for p in edge.pods} >= {"ErrImagePull", "CrashLoopBackOff", "Unschedulable", "Terminating", "Evicted"}
    real = _build("bench-real-40")
    assert len(real.workloads) == 40 and len(real.pods) == 81 and any(w.gpu_utilization for w in real.workloads)
    assert real.node("gpu-node-1").gpus[0].holder == "ml/trainer-0"


def test_records_keep_the_fields_they_were_always_built_with():
    """Beyond the JSON: each record's `model_fields_set` (what `exclude_unset` dumps) is as it has always been."""
    snap = _build("edge-cases")
    pod_fields = {"namespace", "name", "workload", "phase", "reason", "message", "node", "gpu_ids", "restarts", "ready",
                  "revision", "started_at", "labels", "annotations"}
    assert all(p.model_fields_set - {"terminations", "running_since"} == pod_fields for p in snap.pods)
    # how containers ended and since when the main one runs are set only where the pod reports them
    assert all(("terminations" in p.model_fields_set) == bool(p.terminations) for p in snap.pods)
    assert all(("running_since" in p.model_fields_set) == (p.running_since is not None) for p in snap.pods)
    refs = {p.workload.kind: p.workload.model_fields_set for p in snap.pods if p.workload is not None}
    assert refs == {"Deployment": {"namespace", "name"}, "StatefulSet": {"namespace", "name", "kind"}}
    assert all(w.ref.model_fields_set == {"namespace", "name", "kind"} for w in snap.workloads)
    assert all("last_request_at" not in w.model_fields_set and "rollout" in w.model_fields_set for w in snap.workloads)
    assert {frozenset(w.rollout.model_fields_set) for w in snap.workloads} == {
        frozenset({"status", "reason", "message", "revision", "since"}), frozenset({"status", "revision"})}
    plugin = snap.node("plug-a").gpus[0]
    assert plugin.model_fields_set == {"id", "node", "model", "memory_mib", "pcie_link_width", "holder", "held_since",
                                       "utilization"}
    dra = snap.node("dra-a").gpus[0]
    assert dra.model_fields_set == plugin.model_fields_set | {"switch_group", "numa_node"}
