"""The facts one decision reads, gathered lazily: the target workload and the CEL context.

`decide()` builds one `Facts` per call. The workload lookup and the CEL
context (`args`, `target`, `intent`, `actor`, `channel`, `now`, `hour`,
`weekday`) are computed only when a rule needs them, and at most once. Pure:
reads the snapshot it is given, never a clock or the cluster.

A call that names a pod (`delete_pod`, `describe_pod`: see toolrisk.POD_TOOLS)
gets `target.pod` (phase, reason, restarts, ready, ...) when the snapshot has
that pod, alongside the facts and intent of the workload that owns it. A pod
the snapshot does not have gives no `target.pod`, so a condition reading it
cannot make an allow rule match.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opsagent.model import Pod, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.model.images import previous_images, rollback_image
from opsagent.policy.toolrisk import POD_TOOLS

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
        # images of earlier revisions (the rollout history), and the one it ran before the current one
        "previous_images": previous_images(workload),
        "rollback_image": rollback_image(workload),
    }


def pod_as_dict(pod: Pod) -> dict[str, Any]:
    """A pod for CEL. Its message is left out: cluster text is data, never something a rule should match on."""
    return {
        "namespace": pod.namespace,
        "name": pod.name,
        "phase": pod.phase,
        "reason": pod.reason,
        "restarts": pod.restarts,
        "ready": pod.ready,
        "node": pod.node,
        "gpus": len(pod.gpu_ids),
        "revision": pod.revision,
        "workload": str(pod.workload) if pod.workload is not None else None,
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
    def pod(self) -> Pod | None:
        """The pod the call names (a pod tool's `namespace` and `name`), as the snapshot shows it, or None."""
        if self.call.tool not in POD_TOOLS or self.snapshot is None:
            return None
        namespace, name = self.call.args.get("namespace"), self.call.args.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str):
            return None
        return self.snapshot.pod(namespace, name)

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
            pod = self.pod if workload is None else None
            if pod is not None and pod.workload is not None and self.snapshot is not None:
                workload = self.snapshot.workload(pod.workload)
            target: dict[str, Any] = {}
            intent: dict[str, Any] = {}
            if workload is not None and self.snapshot is not None:
                target = workload_as_dict(workload, self.snapshot, self.now)
                intent = self._policy.intent_dict_for(workload)
            if pod is not None:
                target = {**target, "pod": pod_as_dict(pod)}
            ctx["target"], ctx["intent"] = target, intent
        if names is None:
            return ctx
        return {name: ctx[name] for name in names}
