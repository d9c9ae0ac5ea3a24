"""The `Cluster` port: the only way anything in opsagent reads or writes a cluster.

Adapters implement it: `opsagent.cluster.sim` (the simulated GPU cluster) and
`opsagent.cluster.kube` (the official kubernetes client). It is two halves:
`ClusterReader` (what anyone may ask) and `ClusterWriter` (what only the gate
hands to the tools it runs). `WRITE_METHODS`, derived from `ClusterWriter`, is
the one list of write names: the read-only view, the eval's write tap and the
test doubles all take it from here, so a new write method is defined once.

Every write is keyword-only, takes `dry_run`, and returns a `WriteResult`.
Adapters translate their own failures into the `ClusterError` hierarchy below,
classified by what the caller should do about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from opsagent.model import Frozen, GpuRequirement, Probe, Snapshot, WorkloadRef


class WriteResult(Frozen):
    ok: bool = True
    dry_run: bool = False
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class WorkloadSpec(Frozen):
    """What `create_workload` needs: an architectural change a person approved."""

    ref: WorkloadRef
    image: str
    replicas: int = Field(default=1, ge=0)
    gpus_per_replica: int = Field(default=0, ge=0)
    memory_mib: int | None = None
    gpu_requirement: GpuRequirement = GpuRequirement()
    tensor_parallel: bool = False
    labels: dict[str, str] = Field(default_factory=dict)


# --- errors -----------------------------------------------------------------


class ClusterError(Exception):
    """Base of every adapter error. `retryable` says whether trying later may help."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(ClusterError):
    """The object does not exist (HTTP 404). Give up on this target."""


class Forbidden(ClusterError):
    """RBAC refused (HTTP 403). A person must grant `verb` on `resource`."""

    def __init__(self, message: str, *, verb: str = "", resource: str = "", status: int | None = 403) -> None:
        super().__init__(message, status=status)
        self.verb = verb
        self.resource = resource


class Conflict(ClusterError):
    """Someone else changed the object (HTTP 409). Re-read and retry once."""

    retryable = True


class Invalid(ClusterError):
    """The request itself is wrong (HTTP 400/422). Fix the arguments."""


class DisruptionBlocked(ClusterError):
    """An eviction would break a PodDisruptionBudget (HTTP 429 from the Eviction API). Try later, or ask a person."""

    retryable = True

    def __init__(self, message: str, *, budget: str = "", status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.budget = budget


class Unavailable(ClusterError):
    """Server busy, down or slow (429, 5xx, timeouts). Retry later, after `delay` seconds."""

    retryable = True

    def __init__(self, message: str, *, delay: float = 1.0, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.delay = delay


# --- the port ---------------------------------------------------------------


@runtime_checkable
class ClusterReader(Protocol):
    def snapshot(self) -> Snapshot:
        """Everything observable now, read with one list call per kind."""


@runtime_checkable
class ClusterWriter(Protocol):
    """The writes. Every one is keyword-only, takes `dry_run` and returns a `WriteResult`."""

    def scale(self, *, ref: WorkloadRef, replicas: int, dry_run: bool = False) -> WriteResult: ...

    def restart_rollout(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult: ...

    def undo_rollout(self, *, ref: WorkloadRef, to_revision: int | None = None, dry_run: bool = False) -> WriteResult:
        """Roll back to `to_revision`, or to the previous revision when None."""

    def set_template(
        self,
        *,
        ref: WorkloadRef,
        image: str | None = None,
        gpus_per_replica: int | None = None,
        memory_mib: int | None = None,
        gpu_requirement: GpuRequirement | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        """Change pod-template fields; starts a new rollout revision."""

    def cordon(self, *, node: str, cordoned: bool = True, dry_run: bool = False) -> WriteResult:
        """Mark a node unschedulable (cordoned=True) or schedulable again."""

    def delete_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult: ...

    def annotate(self, *, ref: WorkloadRef, annotations: dict[str, str | None], dry_run: bool = False) -> WriteResult:
        """Set annotations on a workload; a None value removes the key."""

    def create_workload(self, *, spec: WorkloadSpec, dry_run: bool = False) -> WriteResult: ...

    def delete_workload(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult: ...

    # Autoscalers own the replicas of their targets: these writes go to the autoscaler, never to the workload.
    def pause_autoscaler(self, *, kind: str, namespace: str, name: str, replicas: int | None,
                         dry_run: bool = False) -> WriteResult:
        """KEDA: hold the target at `replicas` (the `autoscaling.keda.sh/paused-replicas` annotation); None resumes."""

    def set_autoscaler_bounds(self, *, kind: str, namespace: str, name: str, min_replicas: int, max_replicas: int,
                              dry_run: bool = False) -> WriteResult:
        """Change an HPA's minReplicas/maxReplicas or a ScaledObject's minReplicaCount/maxReplicaCount."""

    def evict_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        """Evict through the Eviction API (policy/v1), which honours PodDisruptionBudgets; raises DisruptionBlocked."""

    def set_image(self, *, ref: WorkloadRef, image: str, container: str | None = None,
                  dry_run: bool = False) -> WriteResult:
        """Set one container's image in the pod template (the first container when None); starts a new revision.

        Raises Invalid naming the template's containers when `container` is not one of them."""

    def set_probe(self, *, ref: WorkloadRef, probe: Probe, dry_run: bool = False) -> WriteResult:
        """Set one probe (`probe.kind` says which) of the pod template's main container; starts a new revision."""


@runtime_checkable
class ReadsWorkloads(Protocol):
    """An adapter that can show a few workloads without reading the whole cluster (an indexed state or a watched
    cache): what a decision about them reads, by point lookups."""

    def snapshot_of(self, refs: Sequence[WorkloadRef]) -> Snapshot:
        """A snapshot narrowed to `refs`: each workload, its pods (with their GPUs), the nodes they run on, the
        events, autoscalers and disruption budgets of its namespace, and whatever else those facts are computed
        from, built exactly as `snapshot()` builds them, so `workload`, `pods_of`, `gpus_held_by`, `quiet_since`,
        `autoscaler_of` and the GPUs of its pods answer the same for `refs`. Jobs and other workloads are left
        out. A workload the cluster lacks is absent."""


@runtime_checkable
class WaitsReady(Protocol):
    """An adapter that can wait on change events for a workload's readiness, instead of being polled."""

    def wait_ready(self, *, ref: WorkloadRef, replicas: int, timeout: float) -> int:
        """Block until `replicas` of `ref` are ready or `timeout` seconds pass; the ready count seen last.
        Reads only that workload; raises NotFound if it is deleted meanwhile."""


@runtime_checkable
class WaitsChange(Protocol):
    """An adapter that can wait on change events for workloads, instead of a fixed sleep."""

    def wait_changed(self, *, ref: WorkloadRef, timeout: float) -> bool:
        """Block until workload `ref` changes (or is deleted) or `timeout` seconds pass; whether it changed."""


class Cluster(ClusterReader, ClusterWriter, Protocol):
    """A whole adapter: reads and writes."""


def _methods(*protocols: type) -> tuple[str, ...]:
    return tuple(name for protocol in protocols for name, value in vars(protocol).items()
                 if callable(value) and not name.startswith("_"))


# The one list of write method names, in declaration order.
WRITE_METHODS: tuple[str, ...] = _methods(ClusterWriter)

# What a reader may ask: the port's read and the optional read capabilities above.
READ_METHODS: tuple[str, ...] = _methods(ClusterReader, ReadsWorkloads, WaitsReady, WaitsChange)

# What an adapter offers beyond the port that a process (not a tool) may still reach through its read-only view:
# who the connection is (and whom it impersonates, which the cluster itself must allow: it can only narrow), the
# watched cache's lifecycle and health, the leader-election Lease API (it writes no workload), and the simulator's
# clock and traffic. Anything else an adapter has (its
# raw API clients, its own mutators, a write it added without declaring it on `ClusterWriter`) is not reachable.
ADAPTER_SERVICES: frozenset[str] = frozenset({
    "whoami", "impersonation_refusal", "impersonate",
    "start_watching", "stop_watching", "cache_health", "lease_api",
    "clock", "advance", "record_request",
})


class ReadOnlyCluster:
    """A view of a cluster that can only read, as read tools and everything but the gate get it: the reads in
    `READ_METHODS` that the cluster has, and nothing else of the adapter.

    The port's writes (`WRITE_METHODS`) raise `Forbidden`; any other attribute does not exist here.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def snapshot(self) -> Snapshot:
        return self._inner.snapshot()

    def __getattr__(self, name: str) -> Any:
        if name in WRITE_METHODS:
            return self._refuse
        if name in READ_METHODS and not name.startswith("_"):
            return getattr(self._inner, name)  # AttributeError when the cluster lacks this capability
        raise AttributeError(f"a read-only view of the cluster has no {name!r}: it only reads")

    def _refuse(self, *args: Any, **kwargs: Any) -> WriteResult:
        raise Forbidden("this view of the cluster cannot write: writes go through the gate", verb="write",
                        resource="cluster")


def read_only(cluster: Any) -> ReadOnlyCluster:
    """`cluster` as a read-only view (a view stays one view)."""
    return cluster if isinstance(cluster, ReadOnlyCluster) else ReadOnlyCluster(cluster)
