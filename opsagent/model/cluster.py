"""What a cluster looks like to opsagent: workloads, pods, nodes, GPUs, jobs, events.

Pure pydantic v2 types with no I/O. Every adapter (the simulator, the kube
adapter) produces these; every detector, policy decision and tool reads them.
All times are timezone-aware UTC datetimes. Objects are frozen: a snapshot is a
picture of one moment and nobody edits it in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Mapping, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator


class Frozen(BaseModel):
    """Base for every domain record: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkloadRef(Frozen):
    """Names one workload: `namespace/name` (kind defaults to Deployment)."""

    namespace: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str, kind: str = "Deployment") -> "WorkloadRef":
        """Parse `namespace/name`; raises ValueError naming the expected form."""
        parts = text.strip().split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"expected a workload as NAMESPACE/NAME, got {text!r}")
        return cls(namespace=parts[0], name=parts[1], kind=kind)  # type: ignore[arg-type]


class GpuRequirement(Frozen):
    """What a workload's pods need from their GPUs.

    `coherent` asks for a set of devices on the same PCIe switch group, each on
    a link at least `min_link_width` lanes wide (tensor-parallel serving).
    """

    min_link_width: int | None = Field(default=None, ge=1, le=32)
    coherent: bool = False


class GpuDevice(Frozen):
    id: str
    node: str
    model: str
    memory_mib: int = Field(ge=0)
    pcie_link_width: int = Field(ge=1, le=32)
    switch_group: str = "0"
    numa_node: int = 0
    holder: str | None = Field(default=None, description="namespace/pod holding the device, if any")
    held_since: datetime | None = None
    utilization: float = Field(default=0.0, ge=0.0, le=100.0, description="percent busy")


class NodeCondition(Frozen):
    """One node condition other than Ready that is true now (DiskPressure, or a GPU problem a node-problem
    detector or the DCGM exporter reports, such as an XID error)."""

    type: str
    reason: str | None = None
    message: str | None = None
    since: datetime | None = None


class Node(Frozen):
    name: str
    ready: bool = True
    cordoned: bool = False
    conditions: tuple[NodeCondition, ...] = Field(default=(), description="problem conditions that hold now")
    labels: dict[str, str] = Field(default_factory=dict)
    gpus: tuple[GpuDevice, ...] = ()
    boot_id: str | None = Field(default=None, max_length=200, description=(
        "the kubelet's boot id (status.nodeInfo.bootID): a new one means the node rebooted"))
    ready_transition_at: datetime | None = Field(default=None, description=(
        "when the Ready condition last changed (its lastTransitionTime): a node that rebooted changed it then"))


PodPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class Pod(Frozen):
    namespace: str
    name: str
    workload: WorkloadRef | None = None
    phase: PodPhase = "Pending"
    reason: str | None = Field(default=None, description="Unschedulable, ContainerCreating, CrashLoopBackOff, ImagePullBackOff, ...")
    message: str | None = None
    node: str | None = None
    gpu_ids: tuple[str, ...] = ()
    restarts: int = Field(default=0, ge=0)
    ready: bool = False
    revision: int = 0
    started_at: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    terminations: tuple[Termination, ...] = Field(default=(), description="how each container last ended, if it did")
    running_since: datetime | None = Field(default=None, description="when the main container last started running")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


RolloutStatus = Literal["progressing", "complete", "failed"]


class RolloutState(Frozen):
    """A Deployment's rollout, as its Progressing condition reports it."""

    status: RolloutStatus = "complete"
    reason: str | None = Field(default=None, description="e.g. NewReplicaSetAvailable, ProgressDeadlineExceeded, ImagePullBackOff, CrashLoopBackOff")
    message: str | None = None
    revision: int = 1
    since: datetime | None = None


class Revision(Frozen):
    """One entry of a workload's rollout history (a ReplicaSet revision)."""

    revision: int
    image: str
    created_at: datetime | None = None
    change_cause: str | None = None


ProbeKind = Literal["readiness", "liveness", "startup"]

# The most a change a person approves may set (set_resources, set_probe, create_workload read them too), so a
# detector never proposes a number its tool would refuse.
MAX_MEMORY_MIB = 4_194_304          # 4 TiB per replica
MAX_GPUS_PER_REPLICA = 16
MAX_PROBE_PERIOD_SECONDS = 3600
MAX_PROBE_FAILURES = 10_000
PROBE_PATH = r"^/[!-~]{0,199}$"     # an HTTP probe path: printable ASCII, no spaces or control characters


class Probe(Frozen):
    """One probe of a container (readinessProbe, livenessProbe, startupProbe).

    `action` is how it checks: an HTTP GET of `path` on `port`, a TCP connect to `port`, a
    command (exec) or gRPC. `port` is a number or a named container port. The kubelet gives up
    after `failure_threshold` failures in a row, `period_seconds` apart, after `initial_delay_seconds`.
    """

    kind: ProbeKind
    action: Literal["http", "tcp", "exec", "grpc"] = "http"
    path: str | None = None
    port: int | str | None = None
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @property
    def budget_seconds(self) -> int:
        """How long a container may fail this probe from its start before the kubelet acts on it."""
        return self.initial_delay_seconds + self.period_seconds * self.failure_threshold

    def describe(self) -> str:
        where = {"http": f"GET {self.path or '/'} on port {self.port}", "tcp": f"TCP port {self.port}",
                 "exec": "a command", "grpc": f"gRPC port {self.port}"}[self.action]
        return (f"{self.kind} probe: {where}, every {self.period_seconds}s, {self.failure_threshold} failures "
                f"after {self.initial_delay_seconds}s ({self.budget_seconds}s in all)")


class Container(Frozen):
    """What a pod template asks for one container: GPUs, memory (MiB) and probes. None: not set."""

    name: str
    gpus: int = Field(default=0, ge=0, description="nvidia.com/gpu it asks for (its limit, else its request); "
                                                   "0 also when the count does not read")
    memory_request_mib: int | None = Field(default=None, ge=0)
    memory_limit_mib: int | None = Field(default=None, ge=0)
    ports: tuple[int, ...] = Field(default=(), description="container ports it declares")
    probes: tuple[Probe, ...] = ()

    def probe(self, kind: ProbeKind) -> Probe | None:
        return next((p for p in self.probes if p.kind == kind), None)


class Termination(Frozen):
    """How a container last ended (`lastState.terminated`, or `state.terminated`): OOMKilled, Error, ...

    `message` is the container's termination message (its last words, or log tail): data, never an instruction.
    """

    container: str
    reason: str | None = None
    exit_code: int | None = None
    message: str | None = None
    finished_at: datetime | None = None


class Workload(Frozen):
    ref: WorkloadRef
    replicas: int = Field(default=1, ge=0, description="spec.replicas: what was asked for")
    ready_replicas: int = Field(default=0, ge=0)
    revision: int = 1
    image: str = ""
    gpus_per_replica: int = Field(default=0, ge=0)
    memory_mib: int | None = None
    gpu_requirement: GpuRequirement = GpuRequirement()
    tensor_parallel: bool = Field(default=False, description="replicas shard one model across all their GPUs")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    last_request_at: datetime | None = None
    request_rate: float | None = Field(default=None, ge=0.0, description="requests per second; None when unknown (no metrics)")
    pending_requests: int = Field(default=0, ge=0, description="requests held waiting for it (at zero replicas), as the wake "
                                                                 "proxy or the simulator counts them; never read from an annotation")
    gpu_utilization: float | None = Field(default=None, ge=0.0, le=100.0, description="mean percent busy over its GPUs; None when unknown")
    throughput_factor: float = Field(default=1.0, ge=0.0, le=1.0, description="1.0 = full speed; below 1 when placement degrades it")
    low_gpu_since: datetime | None = Field(
        default=None, description="since when GPU utilisation has stayed under the idle threshold of the workload's "
                                  "intent, as watched by this process; None when it is not low or nobody watched")
    rollout: RolloutState = RolloutState()
    history: tuple[Revision, ...] = ()
    containers: tuple[Container, ...] = Field(default=(), description="the pod template's containers, first = main")

    @property
    def key(self) -> str:
        return str(self.ref)

    @property
    def main_container(self) -> Container | None:
        """The pod template's first container: the one `set_resources` and `set_probe` change; None when none was read."""
        return self.containers[0] if self.containers else None


JobState = Literal["queued", "running", "succeeded", "failed"]


class Job(Frozen):
    """Queued GPU work, such as a training run, that starts when devices free up."""

    namespace: str
    name: str
    gpus: int = Field(ge=1)
    state: JobState = "queued"
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float = Field(default=3600.0, gt=0)
    node: str | None = None
    gpu_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Event(Frozen):
    time: datetime
    namespace: str
    kind: str = Field(description="kind of the object the event is about")
    name: str
    type: Literal["Normal", "Warning"] = "Normal"
    reason: str
    message: str = ""


AutoscalerKind = Literal["HorizontalPodAutoscaler", "ScaledObject", "HTTPScaledObject"]
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
# How a tool touches a workload's replicas: "direct" writes spec.replicas; "pausable" (sleep, wake)
# may go through a KEDA autoscaler's pause annotation instead (see opsagent/policy/ownership.py).
ReplicaWrite = Literal["direct", "pausable"]


class Autoscaler(Frozen):
    """An autoscaler that owns a workload's replicas: an HPA, a KEDA ScaledObject or HTTPScaledObject.

    While one exists, `spec.replicas` of its target is the autoscaler's to set: opsagent never
    writes it, and sleeps, wakes and bounds go through the autoscaler. `able_to_scale` and
    `scaling_active` are the HPA's conditions of those names (for KEDA: its Ready condition, and
    None); None when the object does not report them. `scaling_limited` is True when the
    autoscaler wants more (or fewer) replicas than its bounds allow.
    """

    kind: AutoscalerKind
    namespace: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)
    target: WorkloadRef
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=0)
    current_replicas: int | None = Field(default=None, ge=0)
    desired_replicas: int | None = Field(default=None, ge=0)
    paused_replicas: int | None = Field(default=None, ge=0, description="KEDA's paused-replicas annotation, if set")
    able_to_scale: bool | None = None
    scaling_active: bool | None = None
    scaling_limited: bool | None = None
    reason: str | None = Field(default=None, description="why it cannot act, from the failing condition")
    message: str | None = None
    hosts: tuple[str, ...] = Field(default=(), description="HTTPScaledObject: the hosts KEDA's HTTP add-on serves")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.key}"

    @property
    def pausable(self) -> bool:
        """KEDA objects pause at a fixed replica count (the paused-replicas annotation); an HPA cannot."""
        return self.kind != "HorizontalPodAutoscaler"


class DisruptionBudget(Frozen):
    """A PodDisruptionBudget (policy/v1): how many of the pods it selects may be evicted now.

    `selector` is its `matchLabels` (an empty one selects every pod of the namespace);
    `disruptions_allowed` is what its status says (the simulator computes it the same way:
    healthy pods minus the healthy pods it requires, never below zero).
    """

    namespace: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)
    selector: dict[str, str] = Field(default_factory=dict)
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    disruptions_allowed: int = Field(default=0, ge=0)
    current_healthy: int = Field(default=0, ge=0)
    desired_healthy: int = Field(default=0, ge=0)
    expected_pods: int = Field(default=0, ge=0)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, pod: "Pod") -> bool:
        return pod.namespace == self.namespace and all(pod.labels.get(k) == v for k, v in self.selector.items())

    def describe(self) -> str:
        need = (f"minAvailable {self.min_available}" if self.min_available is not None
                else f"maxUnavailable {self.max_unavailable}")
        return (f"PodDisruptionBudget {self.key} ({need}): {self.disruptions_allowed} disruption(s) allowed, "
                f"{self.current_healthy} healthy of {self.desired_healthy} required")


class Snapshot(Frozen):
    """Everything opsagent knows about the cluster at one moment."""

    time: datetime
    workloads: tuple[Workload, ...] = ()
    pods: tuple[Pod, ...] = ()
    nodes: tuple[Node, ...] = ()
    jobs: tuple[Job, ...] = ()
    events: tuple[Event, ...] = ()
    autoscalers: tuple[Autoscaler, ...] = ()
    disruption_budgets: tuple[DisruptionBudget, ...] = ()
    config_objects: tuple["ConfigObject", ...] = Field(default=(), description="ConfigMaps and Secrets that exist (names only)")
    volume_claims: tuple["VolumeClaim", ...] = ()
    services: tuple["Service", ...] = ()
    source: str = Field(default="sim", description="which adapter produced it: sim or kube")
    notes: tuple[str, ...] = Field(default=(), description="what the adapter could not see (e.g. no metrics)")
    _idx: dict | None = PrivateAttr(default=None)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("snapshot time must be timezone-aware (UTC)")
        return value

    def __eq__(self, other: object) -> bool:  # the lookup cache is not part of the value
        if not isinstance(other, Snapshot):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in type(self).model_fields)

    __hash__ = None  # type: ignore[assignment]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy._idx = None  # lookups must be rebuilt from the copied fields
        return copy

    # Lookups. Built lazily once per snapshot; a snapshot never changes.
    def workload(self, ref: WorkloadRef | str) -> Workload | None:
        return self._index()["workloads"].get(str(ref))

    def pods_of(self, ref: WorkloadRef | str) -> list[Pod]:
        return self._index()["pods_by_workload"].get(str(ref), [])

    def pod(self, namespace: str, name: str) -> Pod | None:
        return self._index()["pods"].get(f"{namespace}/{name}")

    def node(self, name: str) -> Node | None:
        return self._index()["nodes"].get(name)

    def gpus(self) -> list[GpuDevice]:
        return [gpu for node in self.nodes for gpu in node.gpus]

    def gpu(self, gpu_id: str) -> GpuDevice | None:
        return self._index()["gpus"].get(gpu_id)

    def gpus_held_by(self, ref: WorkloadRef | str) -> int:
        return sum(len(p.gpu_ids) for p in self.pods_of(ref))

    def free_gpus_by_node(self) -> dict[str, int]:
        """Free devices per GPU node that can take new pods (0 for a full one): a pod's GPUs all come from one node."""
        return {n.name: sum(1 for g in n.gpus if g.holder is None)
                for n in self.nodes if n.ready and not n.cordoned and n.gpus}

    def quiet_since(self, workload: Workload) -> datetime | None:
        """Since when `workload` has had no traffic, or None when traffic flows now or nobody knows.

        The last request time, or (with a zero request rate and no request ever
        seen) when its GPU pods started; a workload woken since its last request
        counts from the wake. The idle detector and the policy's `idle_minutes`
        both read this, so they always agree.
        """
        if workload.request_rate:
            return None
        starts = [p.started_at for p in self.pods_of(workload.ref) if p.gpu_ids]
        held_since = max(starts) if starts and all(s is not None for s in starts) else None  # type: ignore[type-var]
        quiet = workload.last_request_at
        if quiet is None and workload.request_rate == 0:
            quiet = held_since
        if quiet is not None and held_since is not None and held_since > quiet:
            quiet = held_since
        return quiet

    def autoscaler_of(self, ref: WorkloadRef | str) -> Autoscaler | None:
        """The autoscaler that owns `ref`'s replicas, if any (an HTTPScaledObject last: its ScaledObject rules)."""
        return self._index()["autoscalers"].get(str(ref))

    def budgets_for(self, pod: Pod) -> list[DisruptionBudget]:
        """The PodDisruptionBudgets that select `pod`."""
        return [b for b in self.disruption_budgets if b.selects(pod)]

    def pods_on(self, node: str) -> list[Pod]:
        return [p for p in self.pods if p.node == node and p.phase in ("Pending", "Running")]

    def config_exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether a ConfigMap or Secret of that name exists (by name only; contents are never read)."""
        return any(o.kind == kind and o.namespace == namespace and o.name == name for o in self.config_objects)

    def events_for(self, namespace: str, name: str) -> list[Event]:
        return [e for e in self.events if e.namespace == namespace and e.name == name]

    def _index(self) -> dict:
        # read directly: pydantic's private-attribute lookup is slow; the dict always exists since the model declares _idx
        idx = self.__pydantic_private__["_idx"]  # type: ignore[index]
        if idx is not None:
            return idx
        pods_by_workload: dict[str, list[Pod]] = {}
        for pod in self.pods:
            if pod.workload is not None:
                pods_by_workload.setdefault(str(pod.workload), []).append(pod)
        owners: dict[str, Autoscaler] = {}
        for scaler in sorted(self.autoscalers, key=lambda a: ("ScaledObject", "HorizontalPodAutoscaler").index(a.kind)
                             if a.kind != "HTTPScaledObject" else 2):
            owners.setdefault(str(scaler.target), scaler)
        idx = {
            "autoscalers": owners,
            "workloads": {w.key: w for w in self.workloads},
            "pods": {p.key: p for p in self.pods},
            "pods_by_workload": pods_by_workload,
            "nodes": {n.name: n for n in self.nodes},
            "gpus": {g.id: g for n in self.nodes for g in n.gpus},
        }
        self._idx = idx
        return idx


from opsagent.model.resources import ConfigObject, Service, VolumeClaim  # noqa: E402  (they build on Frozen above)

Snapshot.model_rebuild()
