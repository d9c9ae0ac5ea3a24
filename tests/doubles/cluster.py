"""Test doubles around the `Cluster` port: a recorder of writes and a tiny cluster.

`RecordingCluster` wraps any Cluster and logs every write call (name and
keyword arguments) before passing it on: the witness for "nothing reached the
cluster". `TinyCluster` is a small in-memory Cluster for tests that do not need
the full simulator: writes change its state, `advance()` makes scaled-up
replicas ready after `ready_after` seconds. Neither belongs on a production path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opsagent.clock import VirtualClock
from opsagent.cluster.port import WRITE_METHODS, ClusterError, Invalid, NotFound, WorkloadSpec, WriteResult
from opsagent.model import Container, GpuDevice, Node, Pod, Revision, Snapshot, Workload, WorkloadRef



def _sums(containers: tuple[Container, ...]) -> dict[str, Any]:
    """A workload's containers and what they add up to per replica (memory: each one's request, else its limit)."""
    memory = sum((c.memory_request_mib or c.memory_limit_mib or 0) for c in containers)
    return {"containers": containers, "gpus_per_replica": sum(c.gpus for c in containers), "memory_mib": memory or None}


@dataclass
class RecordingCluster:
    """Wraps a Cluster; `writes` lists (method, kwargs) of every write that arrived."""

    inner: Any
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in WRITE_METHODS:
            return target

        def record(**kwargs: Any) -> Any:
            self.writes.append((name, kwargs))
            return target(**kwargs)

        return record


class TinyCluster:
    """A few GPU workloads in memory. Deterministic; time moves only by `advance`."""

    def __init__(self, *, clock: VirtualClock | None = None, ready_after: float = 30.0) -> None:
        self.clock = clock or VirtualClock()
        self.ready_after = ready_after
        self.fail_next: ClusterError | None = None
        self.nodes: dict[str, Node] = {}
        self.workloads: dict[str, Workload] = {}
        self._since: dict[str, datetime] = {}

    # --- building -------------------------------------------------------
    def add_node(self, name: str, *, gpus: int = 4, link_width: int = 16) -> None:
        devices = tuple(GpuDevice(id=f"{name}-gpu{i}", node=name, model="A100", memory_mib=81920,
                                  pcie_link_width=link_width, switch_group=str(i // 2)) for i in range(gpus))
        self.nodes[name] = Node(name=name, gpus=devices)

    def add_workload(self, namespace: str, name: str, *, replicas: int = 1, gpus: int = 1, image: str = "img:1",
                     request_rate: float | None = 1.0, history: tuple[str, ...] = (), memory_mib: int | None = None,
                     sidecars: tuple[Container, ...] = ()) -> WorkloadRef:
        """A workload whose template has a main container (`gpus`, `memory_mib` as its limit and request) and
        `sidecars` after it; its per-replica GPUs and memory are their sums, as the kube reader counts them."""
        ref = WorkloadRef(namespace=namespace, name=name)
        images = history + (image,)
        revs = tuple(Revision(revision=i + 1, image=img) for i, img in enumerate(images))
        main = Container(name="main", gpus=gpus, memory_request_mib=memory_mib, memory_limit_mib=memory_mib)
        self.workloads[str(ref)] = Workload(ref=ref, replicas=replicas, ready_replicas=replicas, image=image,
                                            revision=len(revs), history=revs, request_rate=request_rate,
                                            last_request_at=self.clock.now(), **_sums((main, *sidecars)))
        return ref

    # --- time -------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        now = self.clock.now()
        for key, w in list(self.workloads.items()):
            since = self._since.get(key)
            if w.ready_replicas < w.replicas and since and now - since >= timedelta(seconds=self.ready_after):
                self.workloads[key] = w.model_copy(update={"ready_replicas": w.replicas})

    # --- the port -------------------------------------------------------
    def snapshot(self) -> Snapshot:
        free = [g for n in self.nodes.values() if not n.cordoned for g in n.gpus]
        pods, held = [], {}
        for w in self.workloads.values():
            for i in range(w.replicas):
                take = [free.pop(0).id for _ in range(w.gpus_per_replica) if free]
                ready = i < w.ready_replicas
                pods.append(Pod(namespace=w.ref.namespace, name=f"{w.ref.name}-{i}", workload=w.ref,
                                phase="Running" if ready else "Pending", ready=ready, gpu_ids=tuple(take),
                                node=take[0].rsplit("-gpu", 1)[0] if take else None, revision=w.revision))
                for gid in take:
                    held[gid] = f"{w.ref.namespace}/{w.ref.name}-{i}"
        nodes = tuple(n.model_copy(update={"gpus": tuple(g.model_copy(update={"holder": held.get(g.id)}) for g in n.gpus)})
                      for n in self.nodes.values())
        return Snapshot(time=self.clock.now(), workloads=tuple(self.workloads.values()), pods=tuple(pods), nodes=nodes)

    def _check(self) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

    def _get(self, ref: WorkloadRef) -> Workload:
        w = self.workloads.get(str(ref))
        if w is None:
            raise NotFound(f"no workload {ref}", status=404)
        return w

    def _put(self, w: Workload, dry_run: bool, message: str) -> WriteResult:
        if not dry_run:
            self.workloads[w.key] = w
        return WriteResult(dry_run=dry_run, message=message)

    def scale(self, *, ref: WorkloadRef, replicas: int, dry_run: bool = False) -> WriteResult:
        self._check()
        w = self._get(ref)
        ready = min(w.ready_replicas, replicas)
        if not dry_run and replicas > w.ready_replicas:
            self._since[w.key] = self.clock.now()
        return self._put(w.model_copy(update={"replicas": replicas, "ready_replicas": ready}), dry_run, f"scaled to {replicas}")

    def restart_rollout(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult:
        self._check()
        w = self._get(ref)
        revs = w.history + (Revision(revision=w.revision + 1, image=w.image),)
        return self._put(w.model_copy(update={"revision": w.revision + 1, "history": revs}), dry_run, "restarted")

    def undo_rollout(self, *, ref: WorkloadRef, to_revision: int | None = None, dry_run: bool = False) -> WriteResult:
        self._check()
        w = self._get(ref)
        older = [r for r in w.history if (r.revision == to_revision if to_revision else r.revision < w.revision)]
        if not older:
            raise NotFound(f"no revision to roll {ref} back to", status=404)
        back = older[-1]
        revs = w.history + (Revision(revision=w.revision + 1, image=back.image),)
        return self._put(w.model_copy(update={"revision": w.revision + 1, "image": back.image, "history": revs}), dry_run, f"rolled back to {back.revision}")

    def set_template(self, *, ref: WorkloadRef, image: str | None = None, gpus_per_replica: int | None = None,
                     memory_mib: int | None = None, gpu_requirement: Any = None, dry_run: bool = False) -> WriteResult:
        self._check()
        w = self._get(ref)
        update = {k: v for k, v in {"image": image, "gpu_requirement": gpu_requirement}.items() if v is not None}
        main = w.containers[0] if w.containers else Container(name="main")
        if gpus_per_replica is not None:  # the main container's limit and request, as the kube writer sets them
            main = main.model_copy(update={"gpus": gpus_per_replica})
        if memory_mib is not None:
            main = main.model_copy(update={"memory_limit_mib": memory_mib, "memory_request_mib": memory_mib})
        update.update(_sums((main, *w.containers[1:])))
        revision = w.revision + 1
        update.update(revision=revision, history=w.history + (Revision(revision=revision, image=image or w.image),))
        return self._put(w.model_copy(update=update), dry_run, "template changed")

    def set_image(self, *, ref: WorkloadRef, image: str, container: str | None = None,
                  dry_run: bool = False) -> WriteResult:
        """One container, named "main"; its image is the workload's `image`."""
        self._check()
        w = self._get(ref)
        if container not in (None, "main"):
            raise Invalid(f"no container {container!r} in the pod template; containers: main", status=422)
        revision = w.revision + 1
        update = {"image": image, "revision": revision, "history": w.history + (Revision(revision=revision, image=image),)}
        return self._put(w.model_copy(update=update), dry_run, f"image set to {image}")

    def cordon(self, *, node: str, cordoned: bool = True, dry_run: bool = False) -> WriteResult:
        self._check()
        if node not in self.nodes:
            raise NotFound(f"no node {node}", status=404)
        if not dry_run:
            self.nodes[node] = self.nodes[node].model_copy(update={"cordoned": cordoned})
        return WriteResult(dry_run=dry_run, message="cordoned" if cordoned else "uncordoned")

    def delete_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        self._check()
        if self.snapshot().pod(namespace, name) is None:
            raise NotFound(f"no pod {namespace}/{name}", status=404)
        return WriteResult(dry_run=dry_run, message="deleted")

    def evict_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        """No disruption budgets here: an eviction is a deletion."""
        self._check()
        if self.snapshot().pod(namespace, name) is None:
            raise NotFound(f"no pod {namespace}/{name}", status=404)
        return WriteResult(dry_run=dry_run, message="evicted")

    def set_probe(self, *, ref: WorkloadRef, probe: Any, dry_run: bool = False) -> WriteResult:
        self._check()
        w = self._get(ref)
        main = w.containers[0] if w.containers else Container(name="main")
        probes = tuple(p for p in main.probes if p.kind != probe.kind) + (probe,)
        revision = w.revision + 1
        update = {"containers": (main.model_copy(update={"probes": probes}), *w.containers[1:]), "revision": revision,
                  "history": w.history + (Revision(revision=revision, image=w.image),)}
        return self._put(w.model_copy(update=update), dry_run, f"{probe.kind} probe set")

    def pause_autoscaler(self, *, kind: str, namespace: str, name: str, replicas: int | None,
                         dry_run: bool = False) -> WriteResult:
        self._check()
        raise NotFound(f"no {kind} {namespace}/{name}: this cluster has no autoscalers", status=404)

    def set_autoscaler_bounds(self, *, kind: str, namespace: str, name: str, min_replicas: int, max_replicas: int,
                              dry_run: bool = False) -> WriteResult:
        self._check()
        raise NotFound(f"no {kind} {namespace}/{name}: this cluster has no autoscalers", status=404)

    def annotate(self, *, ref: WorkloadRef, annotations: dict[str, str | None], dry_run: bool = False) -> WriteResult:
        self._check()
        w = self._get(ref)
        merged = {**w.annotations, **annotations}
        return self._put(w.model_copy(update={"annotations": {k: v for k, v in merged.items() if v is not None}}), dry_run, "annotated")

    def create_workload(self, *, spec: WorkloadSpec, dry_run: bool = False) -> WriteResult:
        self._check()
        w = Workload(ref=spec.ref, replicas=spec.replicas, gpus_per_replica=spec.gpus_per_replica, image=spec.image,
                     memory_mib=spec.memory_mib, gpu_requirement=spec.gpu_requirement, labels=spec.labels)
        return self._put(w, dry_run, "created")

    def delete_workload(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult:
        self._check()
        self._get(ref)
        if not dry_run:
            del self.workloads[str(ref)]
        return WriteResult(dry_run=dry_run, message="deleted")


def decide_by_table(effects: dict[str, str], *, default: str = "deny", dry_run: bool = False, approvers: tuple[str, ...] = ("alice",)) -> Any:
    """A stand-in for `opsagent.policy.decide`: the effect comes from a tool-name table.

    The returned function keeps every call it was asked about in `.asked`.
    """
    from opsagent.model import Decision, RuleRef

    asked: list[Any] = []

    def decide(policy: Any, *, call: Any, risk: str, target: Any, snapshot: Any, now: Any, counts: Any) -> Decision:
        asked.append(call)
        effect = effects.get(call.tool, default)
        return Decision(effect=effect, rule=RuleRef(file="table.yaml", name=f"{effect}-{call.tool}"), reason=f"table says {effect}",  # type: ignore[arg-type]
                        dry_run=dry_run, approvers=approvers if effect == "require_approval" else ())

    decide.asked = asked  # type: ignore[attr-defined]
    return decide
