"""The simulator's internal, mutable state: plain dataclasses, cheap to update.

The engine mutates these every tick; `snapshot()` copies them into the frozen
pydantic domain types. Nothing here does I/O, reads a clock or validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opsagent.cluster.sim.scenario import ColdStart, FailureRule, ProbesDecl, ServerDecl, Traffic
from opsagent.model import GpuRequirement, WorkloadRef


@dataclass(slots=True)
class SimGpu:
    id: str
    node: str
    model: str
    memory_mib: int
    link: int
    switch: str
    numa: int
    holder: str | None = None  # "namespace/pod" or "namespace/job"
    held_since: datetime | None = None
    utilization: float = 0.0


@dataclass(slots=True)
class SimNode:
    name: str
    index: int
    labels: dict[str, str]
    gpus: list[SimGpu]
    ready: bool = True
    cordoned: bool = False
    not_ready_since: datetime | None = None
    ready_transition_at: datetime | None = None   # the Ready condition's lastTransitionTime
    boots: int = 0   # reboots so far: the boot id changes with each
    free: int = 0
    # problem conditions that hold now: type -> (reason, message, since)
    conditions: dict[str, tuple[str | None, str | None, datetime]] = field(default_factory=dict)

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.cordoned

    @property
    def boot_id(self) -> str:
        return f"{self.name}-boot-{self.boots}"


@dataclass(slots=True)
class SimRevision:
    number: int
    image: str
    created_at: datetime
    change_cause: str | None
    template_hash: str
    fail_mode: str | None = None


# Pod stages: unscheduled -> pulling -> loading -> ready; or pull_failed, crashed, slow.
@dataclass(slots=True)
class SimPod:
    namespace: str
    name: str
    workload: str  # workload key
    revision: int
    created_at: datetime
    fail_mode: str | None = None
    stage: str = "unscheduled"
    until: datetime | None = None  # when the current stage ends
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    node: str | None = None
    gpus: list[SimGpu] = field(default_factory=list)
    restarts: int = 0
    ready: bool = False
    started_at: datetime | None = None
    sched_version: int = -1  # cluster free-capacity version at the last failed attempt
    factor: float = 1.0  # throughput factor of its device set (tensor-parallel only)
    labels: dict[str, str] = field(default_factory=dict)
    # how the container last ended: (reason, exit code, termination message, when); see sim/health.py
    last_end: tuple[str, int, str | None, datetime] | None = None
    running_since: datetime | None = None
    plan: list[tuple[datetime, str, str]] = field(default_factory=list)  # probe outcomes still to come

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class SimWorkload:
    ref: WorkloadRef
    image: str
    replicas: int
    gpus: int
    memory_mib: int | None
    requirement: GpuRequirement
    tensor_parallel: bool
    cold_start: ColdStart
    capacity_rps: float
    labels: dict[str, str]
    annotations: dict[str, str]
    traffic: Traffic | None
    points: list[tuple[float, float]] | None
    failures: tuple[FailureRule, ...]
    revision: int = 1
    revisions: list[SimRevision] = field(default_factory=list)
    pods: list[SimPod] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)  # failure rule index -> revisions made under it
    rollout_status: str = "complete"
    rollout_reason: str | None = "NewReplicaSetAvailable"
    rollout_message: str | None = None
    rollout_since: datetime | None = None
    progress_at: datetime | None = None
    fixed_rps: float | None = None
    rps: float = 0.0
    carry: float = 0.0
    last_request_at: datetime | None = None
    pending_requests: int = 0
    pending_since: datetime | None = None
    requests_total: int = 0
    planted_message: str | None = None  # shown after each pod's own status message (scenario `plant`)
    memory_use_mib: int | None = None
    gpu_memory_mib: int | None = None
    probes: ProbesDecl = field(default_factory=ProbesDecl)
    server: ServerDecl = field(default_factory=ServerDecl)
    planted_termination: str | None = None  # ends each container's termination message (scenario `plant`)
    container_seen: tuple | None = None  # (what the container record was built from, the record): see health.container

    @property
    def key(self) -> str:
        return f"{self.ref.namespace}/{self.ref.name}"

    def current(self) -> SimRevision:
        return self.revisions[-1]

    def image_of(self, pod: "SimPod") -> str:
        for rev in reversed(self.revisions):
            if rev.number == pod.revision:
                return rev.image
        return self.image


@dataclass(slots=True)
class SimJob:
    namespace: str
    name: str
    gpus: int
    duration: float
    submitted_at: datetime
    state: str = "queued"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    node: str | None = None
    devices: list[SimGpu] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
