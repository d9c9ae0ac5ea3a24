"""The facts one decision reads, gathered lazily: the target workload and the CEL context.

`decide()` builds one `Facts` per call. The workload lookup and the CEL
context (`args`, `target`, `intent`, `actor`, `channel`, `now`, `hour`,
`weekday`) are computed only when a rule needs them, and at most once. Pure:
reads the snapshot it is given, never a clock or the cluster.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opsagent.model import Snapshot, ToolCall, Workload, WorkloadRef

CEL_VARIABLES = frozenset({"args", "target", "intent", "actor", "channel", "now", "hour", "weekday"})
_UNSET: Any = object()


def intent_as_dict(intent: Any) -> dict[str, Any]:
    """An intent for CEL: plain JSON types, durations as seconds, unset parts left out."""
    return _plain(intent.model_dump(exclude_none=True))


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# Pod reasons that mean a rollout's new revision cannot come up by itself.
FAILING_POD_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"})


def workload_as_dict(workload: Workload, snapshot: Snapshot, now: datetime) -> dict[str, Any]:
    quiet = snapshot.quiet_since(workload)
    idle = max(0.0, (now - quiet).total_seconds() / 60.0) if quiet is not None else None
    rollout = workload.rollout
    failing = sum(
        1 for pod in snapshot.pods_of(workload.ref)
        if pod.revision == rollout.revision and pod.reason in FAILING_POD_REASONS
    )
    return {
        "namespace": workload.ref.namespace,
        "name": workload.ref.name,
        "kind": workload.ref.kind,
        "replicas": workload.replicas,
        "ready_replicas": workload.ready_replicas,
        "labels": dict(workload.labels),
        "annotations": dict(workload.annotations),
        "gpus_per_replica": workload.gpus_per_replica,
        "gpus_held": snapshot.gpus_held_by(workload.ref),
        "request_rate": workload.request_rate,
        "gpu_utilization": workload.gpu_utilization,
        "idle_minutes": idle,
        "low_gpu_minutes": (max(0.0, (now - workload.low_gpu_since).total_seconds() / 60.0)
                            if workload.low_gpu_since is not None else None),
        "revision": workload.revision,
        "image": workload.image,
        "rollout": {"status": rollout.status, "reason": rollout.reason, "revision": rollout.revision,
                    "failing_pods": failing},
    }


class Facts:
    """What one call is about. Built by decide()/explain(); rules read it."""

    __slots__ = ("call", "risk", "namespace", "ref", "snapshot", "now", "condition_error", "_policy", "_workload", "_context")

    def __init__(self, policy: Any, *, call: ToolCall, risk: str, target: Any, snapshot: Snapshot | None, now: datetime) -> None:
        self._policy = policy
        self.call = call
        self.risk = risk
        ref = getattr(target, "workload", None) if target is not None else None
        namespace = getattr(target, "namespace", None) if target is not None else None
        if namespace is None and isinstance(ref, WorkloadRef):
            namespace = ref.namespace
        self.namespace: str | None = namespace
        self.ref: WorkloadRef | None = ref if isinstance(ref, WorkloadRef) else None
        self.snapshot = snapshot
        self.now = now
        self.condition_error: str | None = None  # set when a non-allow rule matched on an evaluation error
        self._workload: Any = _UNSET
        self._context: dict[str, Any] | None = None

    @property
    def workload(self) -> Workload | None:
        """The target workload as the snapshot shows it, or None."""
        if self._workload is _UNSET:
            found = None
            if self.ref is not None and self.snapshot is not None:
                found = self.snapshot.workload(self.ref)
            self._workload = found
        return self._workload

    @property
    def workload_key(self) -> str | None:
        return str(self.ref) if self.ref is not None else None

    def context(self, names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The CEL variables; only `names` when given (the cel runtime converts every value it is handed).

        `target` and `intent` are built on first use only: they cost the most.
        """
        ctx = self._context
        if ctx is None:
            ctx = self._context = {
                "args": self.call.args,
                "actor": self.call.actor,
                "channel": self.call.channel,
                "now": self.now,
                "hour": self.now.hour,
                "weekday": self.now.weekday(),
            }
        wanted = CEL_VARIABLES if names is None else names
        if "target" not in ctx and ("target" in wanted or "intent" in wanted):
            workload = self.workload
            target: dict[str, Any] = {}
            intent: dict[str, Any] = {}
            if workload is not None and self.snapshot is not None:
                target = workload_as_dict(workload, self.snapshot, self.now)
                intent = self._policy.intent_dict_for(workload)
            ctx["target"], ctx["intent"] = target, intent
        if names is None:
            return ctx
        return {name: ctx[name] for name in names}
