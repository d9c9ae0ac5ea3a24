"""How the wake proxy asks for a workload to wake: through the gate, as actor `wake-proxy`.

`GateWaker` is the only piece of the proxy that can change the cluster, and it
can only do so by submitting a `wake_workload` tool call to the gate, so the
policy decides and the audit log records every wake. It also keeps a cache of
which workloads are ready, so a warm request costs a dict lookup and never
reads the cluster: an entry older than the TTL is answered from the cache while
a single background read refreshes it. Given `look` (a cluster that shows one
workload without reading the others: `ReadsWorkloads.snapshot_of`), a read
looks at the one workload asked about; otherwise one read refreshes the
readiness of every workload at once, and concurrent readers share it.

`note_request` records that traffic arrived, for the idle detector: on the
simulator it feeds `SimCluster.record_request`; on a real cluster it goes to
an `ActivityLog` the daemon merges into its snapshot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Sequence
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
        """Ready state if known, else None. Never blocks."""

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
        look: Callable[[Sequence[WorkloadRef]], Snapshot] | None = None,
    ) -> None:
        """`lock` serializes every call into the cluster; pass one for the simulator,
        which is not thread-safe. A real cluster needs none, so a long wake never
        delays readiness checks of other workloads."""
        self._gate = gate
        self._observe = observe
        self._clock = clock
        self._on_request = on_request
        self._ttl = ready_ttl_seconds
        self._ready: dict[str, bool] = {}
        self._read_at: float | None = None   # monotonic time of the last cluster read
        self._missing: set[str] = set()
        self._lock = lock or _NoLock()
        self._reading: threading.Event | None = None   # set when the read in flight finishes
        self._guard = threading.Lock()
        self._refreshing = False   # a background refresh is under way
        self.reads = 0   # cluster reads taken, for the proxy's metrics
        self._look = look
        self._seen_at: dict[str, float] = {}   # with `look`: monotonic time each workload was last looked at

    def cached_ready(self, ref: WorkloadRef) -> bool | None:
        ready = self._ready.get(str(ref))
        if ready is not None and self._stale(ref):
            with self._guard:
                start, self._refreshing = not self._refreshing, True
            if start:
                threading.Thread(target=self._refresh, args=(ref,), name="wake-ready-refresh", daemon=True).start()
        return ready

    def _refresh(self, ref: WorkloadRef) -> None:
        try:
            self._read_one(ref) if self._look is not None else self._read_shared()
        finally:
            self._refreshing = False

    def check_ready(self, ref: WorkloadRef) -> bool:
        if self._look is not None:
            return self._read_one(ref)
        if self._stale(ref) or str(ref) not in self._ready:   # else a read shared with another request just told us
            self._read_shared()
        return self._ready.get(str(ref), False)

    def _stale(self, ref: WorkloadRef) -> bool:
        read_at = self._seen_at.get(str(ref)) if self._look is not None else self._read_at
        return read_at is None or self._clock.monotonic() - read_at > self._ttl

    def _read_one(self, ref: WorkloadRef) -> bool:
        """Look at `ref` alone (`look`) and remember what it showed."""
        assert self._look is not None
        with self._lock:
            workload = self._look([ref]).workload(ref)
        self.reads += 1
        key = str(ref)
        self._seen_at[key] = self._clock.monotonic()
        if workload is None:
            self._missing = self._missing | {key}
            self._ready = {k: v for k, v in self._ready.items() if k != key}
            return False
        self._missing = self._missing - {key}
        ready = workload.replicas > 0 and workload.ready_replicas > 0
        self._remember(ref, ready)
        return ready

    def _read_shared(self) -> None:
        """Read the cluster once; a caller arriving while a read is in flight waits for that one."""
        with self._guard:
            pending = self._reading
            if pending is None:
                pending = self._reading = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            pending.wait()
            return
        try:
            with self._lock:
                snapshot = self._observe()
            self.reads += 1
            self._ready = {w.key: w.replicas > 0 and w.ready_replicas > 0 for w in snapshot.workloads}
            self._missing = {key for key in self._missing if key not in self._ready}
            self._read_at = self._clock.monotonic()
        finally:
            with self._guard:
                self._reading = None
            pending.set()

    def is_missing(self, ref: WorkloadRef) -> bool:
        key = str(ref)
        return key in self._missing or (self._look is None and self._read_at is not None and key not in self._ready)

    def forget(self, ref: WorkloadRef) -> None:
        """`ref` refused a connection: the next check reads the cluster again."""
        self._read_at = None
        self._seen_at.pop(str(ref), None)

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
        self._ready = {**self._ready, str(ref): ready}


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
