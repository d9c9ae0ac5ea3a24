"""Watch GPU utilisation across snapshots: since when has a workload been under its idle threshold?

A snapshot shows utilisation at one moment (or over the metrics window). An
idle rule such as "GPU utilisation under 2% for 30 minutes" needs to know how
long it has stayed low. `UtilisationWatch` wraps a Cluster: each snapshot it
takes notes, per workload holding GPUs, the first time utilisation was seen
under the threshold and sets `Workload.low_gpu_since` to it; one reading at or
above the threshold (or unknown) forgets it. The watch only reads: its port
writes are refused; `writer()` gives the gate (alone) the watched cluster with
its writes.

Every part that reads the cluster through the same watch (the detectors and the
gate's policy checks) sees the same `low_gpu_since`. The memory lives in this
process: after a restart the count starts again, so a restart can delay a
sleep, never hasten one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from opsagent.cluster.port import ADAPTER_SERVICES, READ_METHODS, WRITE_METHODS
from opsagent.model import Snapshot, Workload, WorkloadRef

Threshold = Callable[[Workload], "float | None"]


def mark_low_utilisation(snapshot: Snapshot, threshold: Threshold,
                         memory: Mapping[str, datetime]) -> tuple[Snapshot, dict[str, datetime]]:
    """(snapshot with `low_gpu_since` set, the new memory). Pure."""
    remembered: dict[str, datetime] = {}
    changed = False
    workloads = []
    for workload in snapshot.workloads:
        below = threshold(workload)
        low = (below is not None and workload.gpu_utilization is not None and workload.gpu_utilization < below
               and snapshot.gpus_held_by(workload.ref) > 0)
        since = (memory.get(workload.key) or snapshot.time) if low else None
        if since is not None:
            remembered[workload.key] = since
        if since != workload.low_gpu_since:
            workload = workload.model_copy(update={"low_gpu_since": since})
            changed = True
        workloads.append(workload)
    if not changed:
        return snapshot, remembered
    return snapshot.model_copy(update={"workloads": tuple(workloads)}), remembered


class UtilisationWatch:
    """A Cluster whose snapshots carry `low_gpu_since`; everything else is the wrapped cluster's."""

    def __init__(self, inner: Any, threshold: Threshold) -> None:
        self._inner = inner
        self._threshold = threshold
        self._memory: dict[str, datetime] = {}

    def snapshot(self) -> Snapshot:
        snapshot, self._memory = mark_low_utilisation(self._inner.snapshot(), self._threshold, self._memory)
        return snapshot

    def snapshot_of(self, refs: Sequence[WorkloadRef]) -> Snapshot:
        """The wrapped cluster's narrowed snapshot (`ReadsWorkloads`; its full snapshot when it has none), with
        `low_gpu_since` marked and remembered for the workloads it shows; the others' memory is left as it is."""
        narrow = getattr(self._inner, "snapshot_of", None)
        if narrow is None:
            return self.snapshot()
        snapshot, seen = mark_low_utilisation(narrow(refs), self._threshold, self._memory)
        shown = {w.key for w in snapshot.workloads}
        self._memory = {**{k: v for k, v in self._memory.items() if k not in shown}, **seen}
        return snapshot

    def __getattr__(self, name: str) -> Any:
        if name in WRITE_METHODS:
            raise AttributeError(f"{name}: this view of the cluster only reads; writes go through the gate")
        if name in READ_METHODS or name in ADAPTER_SERVICES:
            return getattr(self._inner, name)
        raise AttributeError(f"{name}: this view of the cluster only reads (the port's reads and {sorted(ADAPTER_SERVICES)})")

    def writer(self) -> "WatchedWriter":
        """The watched cluster with its writes: for the gate alone."""
        return WatchedWriter(self)


class WatchedWriter:
    """Reads through the watch (so the gate sees `low_gpu_since`), writes to the wrapped cluster."""

    def __init__(self, watch: UtilisationWatch) -> None:
        self._watch = watch

    @property
    def watch(self) -> UtilisationWatch:
        """The watch it reads through (another runtime over the same cluster shares it)."""
        return self._watch

    def snapshot(self) -> Snapshot:
        return self._watch.snapshot()

    def snapshot_of(self, refs: Sequence[WorkloadRef]) -> Snapshot:
        return self._watch.snapshot_of(refs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._watch._inner if name in WRITE_METHODS else self._watch, name)
