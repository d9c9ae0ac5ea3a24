"""The Cluster port's writes, as the simulator answers them.

Each write first simulates up to the clock, then checks its target (raising
the port's `NotFound` / `Invalid`), then, unless `dry_run`, takes a queued API
fault from the scenario (`Conflict` / `Unavailable`, nothing changed) or applies the change;
a `timeout` fault applies the change and then raises `Unavailable` (HTTP 504), as a
request whose answer was lost would.
A dry run validates and changes nothing, not even the fault queue.
This module mutates simulator state only through the engine's helpers and
never touches anything outside the simulator.
"""

from __future__ import annotations

from datetime import timedelta

from opsagent.cluster.port import Conflict, DisruptionBlocked, Invalid, NotFound, Unavailable, WorkloadSpec, WriteResult
from opsagent.cluster.sim import lifecycle
from opsagent.cluster.sim.scenario import ColdStart, ProbeDecl
from opsagent.model import GpuRequirement, Probe, WorkloadRef

SIM_CONTAINER = "main"  # the one container of every simulated pod template (its events name it too)


class WritesMixin:
    """Port writes for SimCluster (the engine supplies state and helpers)."""

    _timed_out: str | None = None

    def _begin(self, dry_run: bool) -> None:
        self._timed_out = None
        self._catch_up()  # type: ignore[attr-defined]

    def _apply_fault(self, what: str) -> None:
        if not self.faults:  # type: ignore[attr-defined]
            return
        kind = self.faults.popleft()  # type: ignore[attr-defined]
        if kind == "timeout":  # the change goes through; `_done` then reports the timeout instead
            self._timed_out = what
            return
        if kind == "conflict":
            raise Conflict(f'Operation cannot be fulfilled on {what}: the object has been modified; '
                           'please apply your changes to the latest version and try again', status=409)
        raise Unavailable("the server is currently unable to handle the request", delay=5.0, status=503)

    def _done(self, message: str, dry_run: bool, **details) -> WriteResult:
        what, self._timed_out = self._timed_out, None
        if what is not None:
            raise Unavailable(f"the request to update {what} timed out after 30s; the change may or may not "
                              "have been applied", delay=5.0, status=504)
        return WriteResult(ok=True, dry_run=dry_run, message=("(dry run) " if dry_run else "") + message, details=details)

    # --- workloads --------------------------------------------------------------

    def scale(self, *, ref: WorkloadRef, replicas: int, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        if replicas < 0:
            raise Invalid(f"spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0", status=422)
        before = w.replicas
        if dry_run:
            return self._done(f"{ref} would scale from {before} to {replicas}", True, before=before, replicas=replicas)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        w.replicas = replicas
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{ref} scaled from {before} to {replicas}", False, before=before, replicas=replicas)

    def restart_rollout(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        if dry_run:
            return self._done(f"{ref} would restart (new revision {w.revision + 1})", True)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        rev = self.new_revision(w, image=w.image, cause="kubectl rollout restart", now=self.now)  # type: ignore[attr-defined]
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{ref} restarted: revision {rev.number}", False, revision=rev.number)

    def undo_rollout(self, *, ref: WorkloadRef, to_revision: int | None = None, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        older = [r for r in w.revisions if r.number != w.revision]
        if to_revision is None:
            if not older:
                raise Invalid(f"{ref} has no previous revision to roll back to", status=400)
            target = older[-1]
        else:
            target = next((r for r in older if r.number == to_revision), None)
            if target is None:
                known = ", ".join(str(r.number) for r in w.revisions)
                raise Invalid(f"{ref} has no revision {to_revision} to roll back to (history: {known})", status=400)
        if dry_run:
            return self._done(f"{ref} would roll back to revision {target.number} ({target.image})", True,
                              to_revision=target.number, image=target.image)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        # Like a Deployment: the old ReplicaSet becomes the newest revision, and keeps its pods.
        w.revisions.remove(target)
        number = w.revision + 1
        old_number, target.number = target.number, number
        # Its creation time stays: the same ReplicaSet comes back, as in Kubernetes (the history shows a going-back).
        target.change_cause = f"rollback to revision {old_number}"
        target.fail_mode = self._fail_mode(w, target.image, number)  # type: ignore[attr-defined]
        w.revisions.append(target)
        w.revision, w.image = number, target.image
        for pod in w.pods:
            if pod.revision == old_number:
                pod.revision = number
        w.rollout_status, w.rollout_reason = "progressing", "ReplicaSetUpdated"
        w.rollout_message = f'ReplicaSet "{w.ref.name}-{target.template_hash}" is progressing.'
        w.rollout_since = w.progress_at = self.now  # type: ignore[attr-defined]
        self.emit(self.now, w.ref.namespace, "Deployment", w.ref.name, "DeploymentRollback",  # type: ignore[attr-defined]
                  f"Rolled back deployment \"{w.ref.name}\" to revision {old_number}")
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{ref} rolled back to revision {old_number} ({target.image}), now revision {number}", False,
                          from_revision=old_number, revision=number, image=target.image)

    def set_template(self, *, ref: WorkloadRef, image: str | None = None, gpus_per_replica: int | None = None,
                     memory_mib: int | None = None, gpu_requirement: GpuRequirement | None = None,
                     dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        if image is not None and not image.strip():
            raise Invalid("spec.template.spec.containers[0].image: Required value", status=422)
        if gpus_per_replica is not None and gpus_per_replica < 0:
            raise Invalid("nvidia.com/gpu limit must be >= 0", status=422)
        changes = {k: v for k, v in {"image": image, "gpus_per_replica": gpus_per_replica, "memory_mib": memory_mib,
                                      "gpu_requirement": gpu_requirement}.items() if v is not None}
        current = {"image": w.image, "gpus_per_replica": w.gpus, "memory_mib": w.memory_mib, "gpu_requirement": w.requirement}
        changes = {k: v for k, v in changes.items() if current[k] != v}
        if not changes:
            return self._done(f"{ref}: template unchanged", dry_run, changed=[])
        shown = {k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in changes.items()}
        if dry_run:
            return self._done(f"{ref} template would change: {', '.join(changes)}", True, changed=sorted(changes), **shown)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        w.gpus = changes.get("gpus_per_replica", w.gpus)
        w.memory_mib = changes.get("memory_mib", w.memory_mib)
        w.requirement = changes.get("gpu_requirement", w.requirement)
        new_image = changes.get("image", w.image)
        rev = self.new_revision(w, image=new_image, cause=f"set {', '.join(sorted(changes))}", now=self.now)  # type: ignore[attr-defined]
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{ref} template changed ({', '.join(sorted(changes))}): revision {rev.number}", False,
                          changed=sorted(changes), revision=rev.number, **shown)

    def set_image(self, *, ref: WorkloadRef, image: str, container: str | None = None,
                  dry_run: bool = False) -> WriteResult:
        """The simulator's pod template has one container, `main`; a pull of an image a failure rule names fails."""
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        if container not in (None, SIM_CONTAINER):
            raise Invalid(f"spec.template.spec.containers: no container {container!r}; containers: {SIM_CONTAINER}",
                          status=422)
        if not image.strip():
            raise Invalid("spec.template.spec.containers[0].image: Required value", status=422)
        before = w.image
        if image == before:
            return self._done(f"{ref}: container {SIM_CONTAINER} already runs {image}", dry_run, image=image, changed=False)
        if dry_run:
            return self._done(f"{ref} would set image {image} (was {before})", True, image=image, image_before=before)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        rev = self.new_revision(w, image=image, cause=f"set image {SIM_CONTAINER}={image}", now=self.now)  # type: ignore[attr-defined]
        self.emit(self.now, w.ref.namespace, "Deployment", w.ref.name, "ImageChanged", f"image set to {image}")  # type: ignore[attr-defined]
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{ref} image set to {image} (was {before}): revision {rev.number}", False,
                          image=image, image_before=before, revision=rev.number)

    def annotate(self, *, ref: WorkloadRef, annotations: dict[str, str | None], dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        for key in annotations:
            if not key or len(key) > 317 or " " in key:
                raise Invalid(f"metadata.annotations: Invalid value: {key!r}: not a valid annotation key", status=422)
        if dry_run:
            return self._done(f"{ref} would be annotated", True, annotations=annotations)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        for key, value in annotations.items():
            if value is None:
                w.annotations.pop(key, None)
            else:
                w.annotations[key] = str(value)
        return self._done(f"{ref} annotated", False, annotations=annotations)

    # --- autoscalers (KEDA's pause annotation, the bounds) -------------------------

    def _autoscaler(self, kind: str, namespace: str, name: str):
        from opsagent.cluster.sim import autoscaling

        found = autoscaling.find(self, kind, namespace, name)  # type: ignore[arg-type]
        if found is None:
            raise NotFound(f'{kind.lower()} "{name}" not found in namespace {namespace}', status=404)
        return found

    def pause_autoscaler(self, *, kind: str, namespace: str, name: str, replicas: int | None,
                         dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        a = self._autoscaler(kind, namespace, name)
        if kind == "HorizontalPodAutoscaler":
            raise Invalid(f"{kind} {namespace}/{name} has no pause annotation; only KEDA objects pause", status=422)
        what = f"pause {kind} {namespace}/{name} at {replicas}" if replicas is not None else f"resume {kind} {namespace}/{name}"
        if dry_run:
            return self._done(f"would {what}", True, paused_replicas=replicas)
        self._apply_fault(f'{kind.lower()}.keda.sh "{name}"')
        a.paused = replicas
        return self._done(what, False, paused_replicas=replicas)

    def set_autoscaler_bounds(self, *, kind: str, namespace: str, name: str, min_replicas: int, max_replicas: int,
                              dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        a = self._autoscaler(kind, namespace, name)
        if min_replicas > max_replicas or max_replicas < 1 or (kind == "HorizontalPodAutoscaler" and min_replicas < 1):
            raise Invalid(f"bounds {min_replicas}..{max_replicas} are not valid for {kind} {namespace}/{name}", status=422)
        if dry_run:
            return self._done(f"would set {kind} {namespace}/{name} bounds to {min_replicas}..{max_replicas}", True)
        self._apply_fault(f'{kind.lower()} "{name}"')
        a.min_replicas, a.max_replicas = min_replicas, max_replicas
        return self._done(f"set {kind} {namespace}/{name} bounds to {min_replicas}..{max_replicas}", False,
                          min_replicas=min_replicas, max_replicas=max_replicas)

    def create_workload(self, *, spec: WorkloadSpec, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        key = f"{spec.ref.namespace}/{spec.ref.name}"
        if key in self.workloads:  # type: ignore[attr-defined]
            raise Invalid(f'deployments.apps "{spec.ref.name}" already exists', status=409)
        if not spec.image.strip():
            raise Invalid("spec.template.spec.containers[0].image: Required value", status=422)
        if dry_run:
            return self._done(f"{key} would be created", True)
        self._apply_fault(f'deployments.apps "{spec.ref.name}"')
        w = self._add_workload(spec.ref, image=spec.image, replicas=spec.replicas, gpus=spec.gpus_per_replica,  # type: ignore[attr-defined]
                               memory_mib=spec.memory_mib, requirement=spec.gpu_requirement,
                               tensor_parallel=spec.tensor_parallel, cold_start=ColdStart(), capacity_rps=10.0,
                               labels=dict(spec.labels), annotations={}, traffic=None, failures=())
        self.emit(self.now, w.ref.namespace, "Deployment", w.ref.name, "Created", f"created with {spec.replicas} replica(s)")  # type: ignore[attr-defined]
        return self._done(f"{key} created", False)

    def delete_workload(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        if dry_run:
            return self._done(f"{ref} would be deleted with {len(w.pods)} pod(s)", True)
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        for pod in list(w.pods):
            lifecycle.kill_pod(self, w, pod, self.now)  # type: ignore[arg-type,attr-defined]
        del self.workloads[w.key]  # type: ignore[attr-defined]
        self.emit(self.now, w.ref.namespace, "Deployment", w.ref.name, "Deleted", "deployment deleted")  # type: ignore[attr-defined]
        return self._done(f"{ref} deleted", False)

    # --- pods and nodes ---------------------------------------------------------------

    def delete_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        pod = self.pods.get(f"{namespace}/{name}")  # type: ignore[attr-defined]
        if pod is None:
            raise NotFound(f'pods "{name}" not found in namespace {namespace!r}', status=404)
        if dry_run:
            return self._done(f"{namespace}/{name} would be deleted", True)
        self._apply_fault(f'pods "{name}"')
        w = self.workloads[pod.workload]  # type: ignore[attr-defined]
        lifecycle.kill_pod(self, w, pod, self.now)  # type: ignore[arg-type,attr-defined]
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{namespace}/{name} deleted; the Deployment replaces it", False)

    def evict_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        """The Eviction API: refused (429) while a PodDisruptionBudget that selects the pod allows no disruption."""
        from opsagent.cluster.sim import disruption

        self._begin(dry_run)
        pod = self.pods.get(f"{namespace}/{name}")  # type: ignore[attr-defined]
        if pod is None:
            raise NotFound(f'pods "{name}" not found in namespace {namespace!r}', status=404)
        budget = disruption.blocking(self, pod)  # type: ignore[arg-type]
        if budget is not None:
            raise DisruptionBlocked(f"Cannot evict pod as it would violate the pod's disruption budget: {budget.describe()}",
                                    budget=budget.key)
        if dry_run:
            return self._done(f"{namespace}/{name} would be evicted", True)
        self._apply_fault(f'pods "{name}"')
        w = self.workloads[pod.workload]  # type: ignore[attr-defined]
        lifecycle.kill_pod(self, w, pod, self.now, reason="Evicted")  # type: ignore[arg-type,attr-defined]
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{namespace}/{name} evicted; its workload replaces it", False)

    def set_probe(self, *, ref: WorkloadRef, probe: Probe, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        w = self.workload(ref)  # type: ignore[attr-defined]
        if probe.action not in ("http", "tcp") or not isinstance(probe.port, int):
            raise Invalid(f"{probe.kind} probe: the simulator models HTTP and TCP probes on a numbered port", status=422)
        decl = ProbeDecl(action=probe.action, path=probe.path or "/health", port=probe.port,
                         initial_delay=timedelta(seconds=probe.initial_delay_seconds),
                         period=timedelta(seconds=probe.period_seconds), failure_threshold=probe.failure_threshold)
        if getattr(w.probes, probe.kind) == decl:
            return self._done(f"{ref}: {probe.kind} probe unchanged", dry_run, changed=[])
        if dry_run:
            return self._done(f"{ref} {probe.kind} probe would change", True, changed=[probe.kind])
        self._apply_fault(f'deployments.apps "{w.ref.name}"')
        w.probes = w.probes.model_copy(update={probe.kind: decl})
        rev = self.new_revision(w, image=w.image, cause=f"set {probe.kind} probe", now=self.now)  # type: ignore[attr-defined]
        lifecycle.reconcile(self, w, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"{ref} {probe.kind} probe changed: revision {rev.number}", False, changed=[probe.kind],
                          revision=rev.number)

    def cordon(self, *, node: str, cordoned: bool = True, dry_run: bool = False) -> WriteResult:
        self._begin(dry_run)
        target = self.node(node)  # type: ignore[attr-defined]
        verb = "cordon" if cordoned else "uncordon"
        if dry_run:
            return self._done(f"node {node} would {verb}", True, was_cordoned=target.cordoned)
        self._apply_fault(f'nodes "{node}"')
        was = target.cordoned
        lifecycle.set_cordon(self, target, cordoned, self.now)  # type: ignore[arg-type,attr-defined]
        return self._done(f"node {node} {verb}ed" if was != cordoned else f"node {node} already {verb}ed", False,
                          was_cordoned=was)
