"""Hand-built snapshots and intents for the detector and playbook tests (no simulator)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from opsagent.model import (
    Autoscaler, ConfigObject, Container, Event, GpuDevice, GpuRequirement, Job, Node, NodeCondition, Pod, Probe, Revision,
    RolloutState, Service, ServicePort, Snapshot, Termination, VolumeClaim, Workload, WorkloadRef)
from opsagent.policy.intents import Intent

UTC = timezone.utc
NOW = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # a Monday


def intent(name: str, namespace: str, names: list[str] | None = None, **rest) -> Intent:
    return Intent.model_validate({"name": name, "selector": {"namespace": namespace, "names": names or []}, **rest})


def gpu(id_: str, node: str = "gpu-a", *, link: int = 16, switch: str = "0", holder: str | None = None) -> GpuDevice:
    return GpuDevice(id=id_, node=node, model="A100", memory_mib=81920, pcie_link_width=link, switch_group=switch,
                     holder=holder)


def workload(ns: str, name: str, **rest) -> Workload:
    return Workload(ref=WorkloadRef(namespace=ns, name=name), **rest)


def pod(ns: str, name: str, owner: str, *, gpu_ids=(), started=None, **rest) -> Pod:
    return Pod(namespace=ns, name=name, workload=WorkloadRef(namespace=ns, name=owner), gpu_ids=tuple(gpu_ids),
               started_at=started, node="gpu-a" if gpu_ids else None, **rest)


def healthy() -> tuple[Snapshot, list[Intent]]:
    """Everything as declared: busy GPU workloads, a completed rollout, no queue."""
    snap = Snapshot(
        time=NOW,
        nodes=(Node(name="gpu-a", gpus=(gpu("a0", holder="render/ui-1"), gpu("a1", holder="inference/llm-1"),
                                          gpu("a2", holder="inference/llm-1"), gpu("a3"))),),
        workloads=(
            workload("render", "ui", replicas=1, ready_replicas=1, gpus_per_replica=1,
                     last_request_at=NOW - timedelta(minutes=2), request_rate=3.0, gpu_utilization=40.0),
            workload("inference", "llm", replicas=1, ready_replicas=1, gpus_per_replica=2, tensor_parallel=True,
                     last_request_at=NOW - timedelta(seconds=5), request_rate=5.0),
            workload("chat", "chat-ui", replicas=0, gpus_per_replica=1, request_rate=0.0),
        ),
        pods=(
            pod("render", "ui-1", "ui", gpu_ids=["a0"], started=NOW - timedelta(hours=5), phase="Running", ready=True,
                revision=1),
            pod("inference", "llm-1", "llm", gpu_ids=["a1", "a2"], started=NOW - timedelta(hours=5), phase="Running",
                ready=True, revision=1),
        ),
    )
    intents = [
        intent("ui", "render", ["ui"], replicas={"min": 0, "max": 2}, idle={"after": "30m", "gpu_util_below": 2}),
        intent("llm", "inference", ["llm"], replicas={"min": 0, "max": 2},
               placement={"gpus": 2, "min_link_width": 16, "coherent": True}, idle={"after": "1h"}),
        intent("chat", "chat", idle={"after": "20m"}),
    ]
    return snap, intents


def troubled() -> tuple[Snapshot, list[Intent]]:
    """One snapshot with every finding kind in it."""
    snap = Snapshot(
        time=NOW,
        nodes=(
            Node(name="gpu-a", gpus=(gpu("a0", holder="render/ui-1"), gpu("a1", holder="inference/llm-1"),
                                     gpu("a2", link=4, switch="1", holder="inference/llm-1"), gpu("a3", link=4, switch="1"))),
            Node(name="gpu-b", gpus=(gpu("b0", "gpu-b", holder="inference/embedder-1"),
                                     gpu("b1", "gpu-b", holder="batch/worker-1")),
                 conditions=(NodeCondition(type="GpuXidError", reason="Xid79", message="GPU has fallen off the bus"),)),
            Node(name="gpu-c", cordoned=True, gpus=(gpu("c0", "gpu-c"), gpu("c1", "gpu-c"))),
            Node(name="cpu-d", cordoned=True, conditions=(NodeCondition(type="DiskPressure", reason="KubeletHasDiskPressure"),)),
        ),
        workloads=(
            workload("render", "ui", replicas=1, gpus_per_replica=1, last_request_at=NOW - timedelta(hours=2),
                     request_rate=0.0),
            workload("inference", "llm", replicas=1, gpus_per_replica=2, tensor_parallel=True, throughput_factor=0.25,
                     last_request_at=NOW, request_rate=4.0),
            workload("inference", "embedder", replicas=1, gpus_per_replica=1, revision=3, image="emb:2.4.0",
                     rollout=RolloutState(status="failed", reason="ProgressDeadlineExceeded", revision=3,
                                          since=NOW - timedelta(minutes=20)),
                     history=(Revision(revision=1, image="emb:2.2"), Revision(revision=2, image="emb:2.3"),
                              Revision(revision=3, image="emb:2.4.0")), request_rate=10.0, last_request_at=NOW),
            workload("chat", "chat-ui", replicas=0, gpus_per_replica=1, pending_requests=3),
            workload("web", "api", replicas=7, gpus_per_replica=0, request_rate=1.0),
            workload("batch", "worker", replicas=2, gpus_per_replica=1, revision=5),
            workload("inference", "reranker", replicas=1, gpus_per_replica=1,
                     gpu_requirement=GpuRequirement(min_link_width=32)),
            workload("search", "ranker", replicas=1, revision=2, image="reg/ranker:9.9",
                     rollout=RolloutState(status="progressing", revision=2),
                     history=(Revision(revision=1, image="reg/ranker:1.0"), Revision(revision=2, image="reg/ranker:9.9"))),
            workload("tools", "coder", replicas=1, containers=(
                Container(name="main", memory_request_mib=16384, memory_limit_mib=16384),)),
            workload("tools", "search", replicas=1, containers=(Container(name="main", ports=(8000,), probes=(
                Probe(kind="readiness", path="/ready", port=8000), Probe(kind="liveness", path="/health", port=8000))),)),
        ),
        pods=(
            pod("render", "ui-1", "ui", gpu_ids=["a0"], started=NOW - timedelta(hours=6), phase="Running", ready=True,
                revision=1),
            pod("inference", "llm-1", "llm", gpu_ids=["a1", "a2"], started=NOW - timedelta(hours=1), phase="Running",
                ready=True, revision=1),
            pod("inference", "embedder-1", "embedder", gpu_ids=["b0"], phase="Running", ready=True, revision=2),
            pod("inference", "embedder-2", "embedder", phase="Pending", reason="ImagePullBackOff", revision=3),
            pod("batch", "worker-1", "worker", gpu_ids=["b1"], phase="Running", reason="CrashLoopBackOff", restarts=7,
                revision=5, message="exit code 1"),
            pod("batch", "worker-2", "worker", phase="Pending", reason="Unschedulable",
                message="0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),
            Pod(namespace="web", name="api-1", workload=WorkloadRef(namespace="web", name="api"), node="cpu-d",
                phase="Running", ready=True),
            pod("search", "ranker-2", "ranker", phase="Pending", reason="ErrImagePull", revision=2,
                message='failed to pull and unpack image "reg/ranker:9.9": not found'),
            pod("tools", "coder-1", "coder", phase="Running", reason="CrashLoopBackOff", restarts=4, revision=1,
                terminations=(Termination(container="main", reason="OOMKilled", exit_code=137),)),
            pod("tools", "search-1", "search", phase="Running", revision=1, running_since=NOW - timedelta(minutes=30)),
        ),
        events=(Event(time=NOW, namespace="search", kind="Pod", name="ranker-2", type="Warning", reason="Failed",
                      message='Failed to pull image "reg/ranker:9.9": manifest unknown'),
                Event(time=NOW - timedelta(minutes=25), namespace="tools", kind="Pod", name="search-1", type="Warning",
                      reason="Unhealthy", message="Readiness probe failed: HTTP probe failed with statuscode: 404")),
        jobs=(Job(namespace="training", name="finetune-7", gpus=2, submitted_at=NOW - timedelta(hours=1)),),
        autoscalers=(Autoscaler(kind="HorizontalPodAutoscaler", namespace="batch", name="worker",
                                target=WorkloadRef(namespace="batch", name="worker"), min_replicas=1, max_replicas=3,
                                current_replicas=1, able_to_scale=True, scaling_active=False,
                                reason="FailedGetResourceMetric", message="missing request for cpu in container worker"),),
        config_objects=(ConfigObject(kind="ConfigMap", namespace="web", name="api-config"),),
        volume_claims=(VolumeClaim(namespace="web", name="search-index", storage_class="fast-nvme",
                                   created_at=NOW - timedelta(hours=1)),),
        services=(Service(namespace="web", name="api", selector={"app": "apii"}, ports=(ServicePort(port=80),)),),
    )
    snap = snap.model_copy(update={"pods": (*snap.pods, Pod(
        namespace="web", name="report-1", phase="Pending", reason="CreateContainerConfigError",
        message='secret "report-creds" not found')), "events": (*snap.events, Event(
        time=NOW - timedelta(minutes=2), namespace="web", kind="ReplicaSet", name="api-7d9f8c", type="Warning",
        reason="FailedCreate", message='Error creating: pods "api-7d9f8c-x1" is forbidden: exceeded quota: web-quota, '
                                       "requested: pods=1, used: pods=4, limited: pods=4"))})
    intents = [
        intent("ui", "render", ["ui"], replicas={"min": 0, "max": 2}, idle={"after": "30m"}),
        intent("llm", "inference", ["llm"], placement={"gpus": 2, "min_link_width": 16, "coherent": True}),
        intent("embedder", "inference", ["embedder"], rollout={"max_attempts": 3, "backoff": "2m"}),
        intent("chat", "chat", idle={"after": "20m"}, wake={"warm_replicas": 1}),
        intent("api", "web", replicas={"min": 1, "max": 4}),
        intent("batch", "batch", replicas={"min": 1, "max": 4}),
    ]
    return snap, intents
