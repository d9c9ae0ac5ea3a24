"""How the wake proxy asks for a workload to wake: through the gate, as actor `wake-proxy`.

`GateWaker` is the only piece of the proxy that can change the cluster, and it
can only do so by submitting a `wake_workload` tool call to the gate, so the
policy decides and the audit log records every wake. It also keeps a short
cache of which workloads are ready, so a warm request costs a dict lookup.

`note_request` records that traffic arrived, for the idle detector: on the
simulator it feeds `SimCluster.record_request`; on a real cluster it goes to
an `ActivityLog` the daemon merges into its snapshot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Literal, Protocol

from opsagent.clock import Clock
from opsagent.cluster.port import NotFound
from opsagent.model import Snapshot, ToolCall, ToolResult, WorkloadRef

WakeStatus = Literal["ready", "timeout", "denied", "pending_approval", "error"]


@dataclass(frozen=True)
class WakeResult:
    status: WakeStatus
    message: str = ""
    approval_id: int | None = None


class Waker(Protocol):
    def cached_ready(self, ref: WorkloadRef) -> bool | None:
        """Ready state if known recently, else None. Never blocks."""

    def check_ready(self, ref: WorkloadRef) -> bool:
        """Observe the cluster now. Blocking."""

    def wake(self, ref: WorkloadRef, *, timeout: float) -> WakeResult:
        """Wake the workload and wait until ready or `timeout`. Blocking."""

    def note_request(self, ref: WorkloadRef) -> None:
        """A request for `ref` arrived. Never blocks."""

    def is_missing(self, ref: WorkloadRef) -> bool:
        """The last look at the cluster found no workload `ref` at all. Never blocks."""


class Submitter(Protocol):
    def submit(self, call: ToolCall, *, run_id: str | None = None) -> ToolResult: ...


class GateWaker:
    def __init__(
        self,
        *,
        gate: Submitter,
        observe: Callable[[], Snapshot],
        clock: Clock,
        on_request: Callable[[WorkloadRef], None] | None = None,
        ready_ttl_seconds: float = 2.0,
        lock: threading.Lock | None = None,
    ) -> None:
        """`lock` serializes every call into the cluster; pass one for the simulator,
        which is not thread-safe. A real cluster needs none, so a long wake never
        delays readiness checks of other workloads."""
        self._gate = gate
        self._observe = observe
        self._clock = clock
        self._on_request = on_request
        self._ttl = ready_ttl_seconds
        self._ready: dict[str, tuple[bool, float]] = {}
        self._missing: set[str] = set()
        self._lock = lock or _NoLock()

    def cached_ready(self, ref: WorkloadRef) -> bool | None:
        entry = self._ready.get(str(ref))
        if entry is None or self._clock.monotonic() - entry[1] > self._ttl:
            return None
        return entry[0]

    def check_ready(self, ref: WorkloadRef) -> bool:
        with self._lock:
            workload = self._observe().workload(ref)
        if workload is None:  # not cached: a route to nothing is looked up again next time
            self._missing.add(str(ref))
            self._ready.pop(str(ref), None)
            return False
        self._missing.discard(str(ref))
        ready = workload.replicas > 0 and workload.ready_replicas > 0
        self._remember(ref, ready)
        return ready

    def is_missing(self, ref: WorkloadRef) -> bool:
        return str(ref) in self._missing

    def forget(self, ref: WorkloadRef) -> None:
        self._ready.pop(str(ref), None)

    def wake(self, ref: WorkloadRef, *, timeout: float) -> WakeResult:
        call = ToolCall(
            tool="wake_workload",
            args={"namespace": ref.namespace, "name": ref.name},
            actor="wake-proxy",
            channel="wake-proxy",
            message=f"request waiting for {ref}",
        )
        with self._lock:
            result = self._gate.submit(call)
        outcome = _outcome(result)
        if outcome.status == "ready":
            self._remember(ref, True)
        return outcome

    def note_request(self, ref: WorkloadRef) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(ref)
        except NotFound:  # the simulator counts requests per workload; a route to nothing has none
            self._missing.add(str(ref))

    def _remember(self, ref: WorkloadRef, ready: bool) -> None:
        self._ready[str(ref)] = (ready, self._clock.monotonic())


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _outcome(result: ToolResult) -> WakeResult:
    rule = f" (rule {result.decision.rule.name}: {result.decision.reason})" if result.decision else ""
    if result.status == "ok":
        ready = result.data.get("ready", True)
        return WakeResult("ready" if ready else "timeout", result.message)
    if result.status == "denied":
        return WakeResult("denied", f"the policy refused to wake this workload{rule}")
    if result.status == "pending_approval":
        return WakeResult("pending_approval", f"waking needs approval {result.approval_id}{rule}", result.approval_id)
    return WakeResult("error", result.message or result.status)
