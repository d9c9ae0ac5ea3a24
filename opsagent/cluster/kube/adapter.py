"""`KubeCluster`: the Cluster port over the official kubernetes client.

What it is for: reading a snapshot with one list call per kind (per namespace
when restricted to namespaces), or, once `start_watching()` is called, from a
cache each kind fills by listing once and then watching (informer.py), and performing the port's writes through the
typed API, each with optional server-side dry run (`dryRun=All`). Every call
goes through the `Chokepoint` (retries, error translation, request count).

What it must not do: decide whether a write is allowed (the gate does), or
build bodies inline (write.py does), or parse objects (read.py does).
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Callable

from kubernetes import client as k8s

from opsagent.clock import Clock, RealClock
from opsagent.cluster.kube import autoscalers as scalers
from opsagent.cluster.kube import disruption as disruption_parse
from opsagent.cluster.kube import health as health_parse
from opsagent.cluster.kube import write as bodies
from opsagent.cluster.kube.client import Chokepoint, build_api_client
from opsagent.cluster.kube.informer import STALE_AFTER, Cache, Informer, key_of, list_all
from opsagent.cluster.kube.identity import ClusterUser, impersonate, impersonation_refusal, who_am_i
from opsagent.cluster.kube.needs import read_needs
from opsagent.cluster.kube.images import image_body
from opsagent.cluster.kube.read import (
    NO_METRICS_NOTE, Metrics, RawLists, _pod_owners, build_snapshot, controller_ref, owned_history,
)
from opsagent.cluster.kube.shapes import Decode
from opsagent.cluster.kube.waiting import at_least, ready_replicas, version_of, wait_cached, wait_for_object
from opsagent.cluster.port import (
    ClusterError, Conflict, DisruptionBlocked, Forbidden, Invalid, NotFound, Unavailable, WorkloadSpec, WriteResult,
)
from opsagent.metrics import MetricsError, PrometheusClient
from opsagent.model import GpuRequirement, Probe, Snapshot, WorkloadRef

DRA_VERSIONS = ("v1", "v1beta2", "v1beta1")
METRICS_REUSE = 5.0   # seconds a narrowed view reuses the last Prometheus reading (a scrape is every 15-30 s)
READ_YOUR_WRITES = 2.0   # longest wait, once watching, for the cache to show a write this adapter made
WATCH_POOL = 48   # connections kept per host once watching (a dozen kinds, per namespace when restricted)
_DRA_API = {"v1": "ResourceV1Api", "v1beta2": "ResourceV1beta2Api", "v1beta1": "ResourceV1beta1Api"}


class KubeCluster:
    def __init__(
        self, api: k8s.ApiClient, *, namespaces: list[str] | tuple[str, ...] | None = None,
        prometheus: PrometheusClient | None = None, clock: Clock | None = None,
    ) -> None:
        self.clock = clock or RealClock()
        self.chokepoint = Chokepoint(api, clock=self.clock)
        self.namespaces = tuple(namespaces) if namespaces else None
        self.prometheus = prometheus
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.apis = k8s.ApisApi(api)
        self.version_api = k8s.VersionApi(api)
        self.authz = k8s.AuthorizationV1Api(api)
        self.autoscaling = k8s.AutoscalingV2Api(api)
        self.custom = k8s.CustomObjectsApi(api)
        self.policy_api = k8s.PolicyV1Api(api)
        self._dra_version: str | None | bool = False  # False = not detected yet
        self.cache: Cache | None = None   # set by start_watching(): snapshots read it instead of listing
        self.reads_config = True   # False: snapshots list no ConfigMaps or Secrets (the wake proxy's account has no such grant)
        self._reading: tuple[float, Metrics] | None = None   # the last Prometheus reading and when (monotonic)

    @classmethod
    def from_config(
        cls, *, context: str | None = None, kubeconfig: str | Path | None = None, in_cluster: bool | None = None,
        namespaces: list[str] | tuple[str, ...] | None = None, prometheus: PrometheusClient | None = None,
        clock: Clock | None = None, timeout: float = 30.0, watch: bool = False,
    ) -> "KubeCluster":
        api = build_api_client(context=context, kubeconfig=kubeconfig, in_cluster=in_cluster, timeout=timeout)
        cluster = cls(api, namespaces=namespaces, prometheus=prometheus, clock=clock)
        if watch:
            cluster.start_watching()
        return cluster

    def start_watching(self, *, stale_after: float = STALE_AFTER) -> Cache:
        """From now on snapshots read a watched cache: each kind is listed once (on the first snapshot that
        reads it) and then followed by a watch on a background thread. Called once per process; idempotent."""
        if self.cache is None:
            # one long-lived connection per watched kind, beside the ordinary requests
            pool = getattr(getattr(self.chokepoint.api, "rest_client", None), "pool_manager", None)
            if pool is not None and hasattr(pool, "connection_pool_kw"):
                pool.connection_pool_kw["maxsize"] = max(pool.connection_pool_kw.get("maxsize") or 1, WATCH_POOL)
                pool.clear()
            self.cache = Cache(self.chokepoint, clock=self.clock, stale_after=stale_after)
        return self.cache

    def stop_watching(self) -> None:
        if self.cache is not None:
            self.cache.stop()
            self.cache = None

    def cache_health(self) -> tuple[bool, str]:
        """(ok, detail): not ok when a watched kind has not heard from the server for too long."""
        if self.cache is None:
            return True, "not watching: every snapshot lists the cluster"
        return self.cache.health()

    @property
    def requests(self) -> int:
        """HTTP requests sent to the API server so far (retries included)."""
        return self.chokepoint.requests

    # --- reads ----------------------------------------------------------------

    def server_version(self) -> str:
        info = self.chokepoint.read_json("get server version", self.version_api.get_code)
        return str(info.get("gitVersion", "unknown"))

    def dra_version(self) -> str | None:
        """The resource.k8s.io version to read, detected once; None when the API has no DRA."""
        if self._dra_version is False:
            try:
                groups = self.chokepoint.get_path("discover API groups", "/apis")
            except (NotFound, Forbidden):
                groups = {}
            versions: set[str] = set()
            for group in groups.get("groups") or []:
                if group.get("name") == "resource.k8s.io":
                    versions = {v.get("version") for v in group.get("versions") or []}
            self._dra_version = next((v for v in DRA_VERSIONS if v in versions), None)
        return self._dra_version or None

    def _informers(self, what: str, all_ns: Callable[..., Any], per_ns: Callable[..., Any] | None,
                   decode: Decode | None = None) -> list[Informer]:
        """The watched cache's informers for one kind (one per namespace when restricted)."""
        assert self.cache is not None
        if self.namespaces and per_ns is not None:
            return [self.cache.informer(f"{what} in {ns}", partial(per_ns, ns), decode) for ns in self.namespaces]
        return [self.cache.informer(what, all_ns, decode)]

    def _list(self, what: str, all_ns: Callable[..., Any], per_ns: Callable[..., Any] | None,
              keep: Callable[[dict[str, Any]], bool] | None = None, *,
              namespaces: Collection[str] | None = None, decode: Decode | None = None) -> list[dict[str, Any]]:
        """One kind's objects: from the watched cache when watching, else one list call (per namespace).
        With `keep` or `namespaces` (watching only), just the objects it accepts in those namespaces."""
        if (keep is not None or namespaces is not None) and self.cache is not None:
            prefixes = tuple(f"{ns}/" for ns in namespaces) if namespaces is not None else None
            return [obj for informer in self._informers(what, all_ns, per_ns, decode)
                    for obj in informer.select(keep, prefixes=prefixes)]
        if self.namespaces and per_ns is not None:
            items: list[dict[str, Any]] = []
            for namespace in self.namespaces:
                items.extend(self._read_kind(f"{what} in {namespace}", partial(per_ns, namespace), decode))
            return items
        return self._read_kind(what, all_ns, decode)

    def _lookup(self, what: str, all_ns: Callable[..., Any], per_ns: Callable[..., Any] | None,
                keys: Iterable[str]) -> list[dict[str, Any]]:
        """The objects named 'namespace/name' (cluster-scoped: '/name') from the watched cache: point lookups."""
        informers = self._informers(what, all_ns, per_ns)
        return [obj for key in keys for informer in informers if (obj := informer.get(key)) is not None]

    def _read_kind(self, what: str, list_fn: Callable[..., Any],
                   decode: Decode | None = None) -> list[dict[str, Any]]:
        if self.cache is not None:
            return self.cache.items(what, list_fn, decode)
        return list_all(self.chokepoint, what, list_fn, decode)[0]

    def read_raw(self, only: Sequence[WorkloadRef] | None = None) -> tuple[RawLists, list[str]]:
        """The raw lists for a snapshot, one list call per kind (per namespace if restricted).

        `only` (when watching): what a snapshot narrowed to those workloads needs, by lookups in the cache
        (see `snapshot_of`)."""
        if only is not None and self.cache is not None:
            return self._read_narrow(only), []
        notes: list[str] = []
        raw = RawLists(
            deployments=self._list("deployments", self.apps.list_deployment_for_all_namespaces, self.apps.list_namespaced_deployment),
            statefulsets=self._list("statefulsets", self.apps.list_stateful_set_for_all_namespaces, self.apps.list_namespaced_stateful_set),
            replicasets=self._list("replicasets", self.apps.list_replica_set_for_all_namespaces, self.apps.list_namespaced_replica_set),
            pods=self._list("pods", self.core.list_pod_for_all_namespaces, self.core.list_namespaced_pod),
            nodes=self._list("nodes", self.core.list_node, None),
            events=self._list("events", self.core.list_event_for_all_namespaces, self.core.list_namespaced_event),
        )
        self._read_autoscalers(raw)
        raw.disruption_budgets = self._list(
            "poddisruptionbudgets", self.policy_api.list_pod_disruption_budget_for_all_namespaces,
            self.policy_api.list_namespaced_pod_disruption_budget)
        read_needs(self, raw)
        self._read_dra(raw)
        return raw, notes

    def _read_narrow(self, refs: Sequence[WorkloadRef]) -> RawLists:
        """The objects the workloads `refs` are built from, and whatever their facts depend on: their ReplicaSets,
        their pods and the other pods on the same nodes (device-plugin GPU ids are handed out per node), those
        nodes and their DRA slices, the claims of their pods, and the events, autoscalers and budgets of their
        namespaces."""
        keys = list(dict.fromkeys(str(ref) for ref in refs))
        namespaces = sorted({ref.namespace for ref in refs})
        raw = RawLists(
            deployments=self._lookup("deployments", self.apps.list_deployment_for_all_namespaces,
                                     self.apps.list_namespaced_deployment, keys),
            statefulsets=self._lookup("statefulsets", self.apps.list_stateful_set_for_all_namespaces,
                                      self.apps.list_namespaced_stateful_set, keys))
        deployments = {key_of(obj) for obj in raw.deployments}
        statefulsets = {key_of(obj) for obj in raw.statefulsets}

        def owned_rs(rs: dict[str, Any]) -> bool:
            meta = rs.get("metadata") or {}
            controller = controller_ref(meta, "Deployment")
            return controller is not None and f"{meta.get('namespace') or ''}/{controller[0]}" in deployments

        raw.replicasets = self._list("replicasets", self.apps.list_replica_set_for_all_namespaces,
                                     self.apps.list_namespaced_replica_set, keep=owned_rs,
                                     namespaces=namespaces) if deployments else []
        replicasets = {key_of(rs) for rs in raw.replicasets}

        def own(pod: dict[str, Any]) -> bool:
            meta = pod.get("metadata") or {}
            namespace = meta.get("namespace") or ""
            rs, sts, _job = _pod_owners(meta)
            return (rs is not None and f"{namespace}/{rs}" in replicasets) or (
                sts is not None and f"{namespace}/{sts}" in statefulsets)

        pods = (self.core.list_pod_for_all_namespaces, self.core.list_namespaced_pod)
        mine = self._list("pods", *pods, keep=own, namespaces=namespaces) if replicasets or statefulsets else []
        hosts = {node for pod in mine if (node := (pod.get("spec") or {}).get("nodeName"))}
        held = {key_of(pod) for pod in mine}
        # the others on those nodes, from every namespace: device-plugin GPU ids are handed out per node
        raw.pods = mine + self._list("pods", *pods, keep=lambda pod: (pod.get("spec") or {}).get("nodeName") in hosts
                                     and key_of(pod) not in held) if hosts else mine
        raw.nodes = self._lookup("nodes", self.core.list_node, None, [f"/{node}" for node in sorted(hosts)])
        raw.events = self._list("events", self.core.list_event_for_all_namespaces, self.core.list_namespaced_event,
                                namespaces=namespaces)
        self._read_autoscalers(raw, namespaces=namespaces)
        raw.disruption_budgets = self._list(
            "poddisruptionbudgets", self.policy_api.list_pod_disruption_budget_for_all_namespaces,
            self.policy_api.list_namespaced_pod_disruption_budget, namespaces=namespaces)
        self._read_dra(raw, slices=lambda item: (item.get("spec") or {}).get("nodeName") in hosts,
                       claims=lambda claim: any(f"{(claim.get('metadata') or {}).get('namespace') or ''}/{c.get('name')}" in held
                                                for c in (claim.get("status") or {}).get("reservedFor") or ()))
        return raw

    def _read_dra(self, raw: RawLists, *, slices: Callable[[dict[str, Any]], bool] | None = None,
                  claims: Callable[[dict[str, Any]], bool] | None = None) -> None:
        version = self.dra_version()
        if version:
            dra = getattr(k8s, _DRA_API[version])(self.chokepoint.api)
            try:
                raw.resource_slices = self._list("resourceslices", dra.list_resource_slice, None, keep=slices)
                raw.resource_claims = self._list("resourceclaims", dra.list_resource_claim_for_all_namespaces,
                                                 dra.list_namespaced_resource_claim, keep=claims)
            except (Forbidden, NotFound) as exc:
                raw.resource_slices = raw.resource_claims = None
                raw.dra_unreadable = exc.message

    def _read_autoscalers(self, raw: RawLists, *, namespaces: Collection[str] | None = None) -> None:
        """HPAs, then KEDA's ScaledObjects and HTTPScaledObjects: one list call per kind; a KEDA kind the API
        lacks (404) is absent and noted, like DRA."""
        raw.hpas = self._list("horizontalpodautoscalers", self.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                              self.autoscaling.list_namespaced_horizontal_pod_autoscaler, namespaces=namespaces)
        missing = []
        for (group, version, plural), slot in ((scalers.KEDA, "scaled_objects"), (scalers.KEDA_HTTP, "http_scaled_objects")):
            try:
                # _list calls both within this iteration, so the loop variables are the current ones
                items = self._list(f"{plural}.{group}",
                                   lambda **kw: self.custom.list_cluster_custom_object(group, version, plural, **kw),  # noqa: B023
                                   lambda ns, **kw: self.custom.list_namespaced_custom_object(group, version, ns, plural, **kw),  # noqa: B023
                                   namespaces=namespaces)
            except NotFound:
                missing.append(f"{plural}.{group}")
                continue
            setattr(raw, slot, items)
        raw.keda_missing = tuple(missing)

    def _metrics(self, *, reuse: bool = False) -> Metrics:
        """What Prometheus says now. With `reuse` (a narrowed view), the reading taken at most METRICS_REUSE seconds
        ago, if any: its queries return the whole cluster, and its series move once per scrape anyway."""
        if self.prometheus is None:
            return Metrics(notes=(NO_METRICS_NOTE,))
        last = self._reading
        if reuse and last is not None and time.monotonic() - last[0] <= METRICS_REUSE:
            return replace(last[1])
        metrics = self._read_metrics(self.prometheus)
        self._reading = (time.monotonic(), replace(metrics))
        return metrics

    def _read_metrics(self, prometheus: PrometheusClient) -> Metrics:
        notes: list[str] = []
        util = rates = None
        try:
            util = prometheus.gpu_utilization_by_pod()
        except MetricsError as exc:
            notes.append(f"GPU utilisation unknown (Prometheus: {exc}); gpu_utilization is None")
        try:
            rates = prometheus.request_rates()
            if rates is None:
                notes.append("no request-rate query configured (--request-rate-query ingress-nginx, keda-http or PromQL): "
                             "request_rate is None")
        except MetricsError as exc:
            notes.append(f"request rate unknown (Prometheus: {exc}); request_rate is None")
        return Metrics(pod_gpu_utilization=util, request_rate=rates, notes=tuple(notes))

    def snapshot(self) -> Snapshot:
        raw, notes = self.read_raw()
        metrics = self._metrics()
        metrics.notes = tuple(notes) + metrics.notes
        return build_snapshot(raw, now=self.clock.now(), metrics=metrics)

    def snapshot_of(self, refs: Sequence[WorkloadRef]) -> Snapshot:
        """`snapshot()` narrowed to `refs` (the port's `ReadsWorkloads`). Watching, it is built from lookups in the
        cache and asks the API server nothing (Prometheus's reading of the last METRICS_REUSE seconds is reused);
        not watching, it is the full snapshot."""
        if self.cache is None:
            return self.snapshot()
        raw, _ = self.read_raw(only=refs)
        return build_snapshot(raw, now=self.clock.now(), metrics=self._metrics(reuse=True))

    # --- writes ---------------------------------------------------------------

    @staticmethod
    def _dry(dry_run: bool) -> dict[str, Any]:
        return {"dry_run": "All"} if dry_run else {}

    def _retry_conflict(self, what: str, attempt: Callable[[], Any], reread: Callable[[], Any]) -> Any:
        """Run a write; on 409 Conflict re-read the object and try exactly once more."""
        try:
            return attempt()
        except Conflict:
            reread()
            try:
                return attempt()
            except Conflict as again:
                raise Conflict(f"{again.message} (still conflicting after one re-read and retry)", status=409) from again

    def get_workload(self, ref: WorkloadRef) -> dict[str, Any]:
        if ref.kind == "StatefulSet":
            return self.chokepoint.read_json(f"get statefulset {ref}", self.apps.read_namespaced_stateful_set, ref.name, ref.namespace)
        return self.chokepoint.read_json(f"get deployment {ref}", self.apps.read_namespaced_deployment, ref.name, ref.namespace)

    def _informer_of(self, ref: WorkloadRef) -> Informer | None:
        """The watched cache's informer that holds workload `ref`, when watching (and `ref` is in a watched namespace)."""
        if self.cache is None or (self.namespaces and ref.namespace not in self.namespaces):
            return None
        all_ns: Callable[..., Any]
        per_ns: Callable[..., Any]
        if ref.kind == "StatefulSet":
            what, all_ns, per_ns = ("statefulsets", self.apps.list_stateful_set_for_all_namespaces,
                                    self.apps.list_namespaced_stateful_set)
        else:
            what, all_ns, per_ns = "deployments", self.apps.list_deployment_for_all_namespaces, self.apps.list_namespaced_deployment
        if self.namespaces:
            return self.cache.informer(f"{what} in {ref.namespace}", partial(per_ns, ref.namespace))
        return self.cache.informer(what, all_ns)

    def _shown(self, ref: WorkloadRef, written: Any, *, dry_run: bool) -> None:
        """Watching: wait (at most READ_YOUR_WRITES seconds) until the cache shows the write that returned `written`,
        so the next look at `ref` (a verification, a decision) reads it. A write that changed nothing (the same
        resourceVersion as the cache holds) sends no event and is not waited for."""
        informer = None if dry_run else self._informer_of(ref)
        version = version_of(written if isinstance(written, dict) else None)
        if informer is None or not version or version == version_of(informer.get(str(ref))):
            return
        try:
            wait_cached(informer, str(ref), at_least(version), READ_YOUR_WRITES)
        except NotFound:
            pass

    def wait_ready(self, *, ref: WorkloadRef, replicas: int, timeout: float) -> int:
        """Watch the workload until `replicas` are ready or `timeout` seconds pass; the ready count seen last.
        Watching, it waits on the cache's events and sends nothing."""
        informer = self._informer_of(ref)
        if informer is not None:
            cached = wait_cached(informer, str(ref), lambda obj: ready_replicas(obj) >= replicas, timeout)
            return ready_replicas(cached or informer.get(str(ref)) or {})
        fn = self.apps.list_namespaced_stateful_set if ref.kind == "StatefulSet" else self.apps.list_namespaced_deployment
        seen: dict[str, Any] = {}

        def enough(obj: dict[str, Any]) -> bool:
            seen["obj"] = obj
            return ready_replicas(obj) >= replicas

        wait_for_object(self.chokepoint, fn, namespace=ref.namespace, name=ref.name, get=lambda: self.get_workload(ref),
                        predicate=enough, timeout=timeout, clock=self.clock)
        return ready_replicas(seen.get("obj") or {})

    def wait_changed(self, *, ref: WorkloadRef, timeout: float) -> bool:
        """Watch the workload until its resourceVersion moves (or it is deleted) or `timeout` seconds pass.
        Watching, it waits on the cache's events and sends nothing."""
        informer = self._informer_of(ref)
        if informer is not None:
            before = version_of(informer.get(str(ref)))
            try:
                return wait_cached(informer, str(ref), lambda obj: version_of(obj) != before, timeout) is not None
            except NotFound:
                return True
        fn = self.apps.list_namespaced_stateful_set if ref.kind == "StatefulSet" else self.apps.list_namespaced_deployment
        first: list[str] = []

        def moved(obj: dict[str, Any]) -> bool:
            version = str((obj.get("metadata") or {}).get("resourceVersion"))
            first.append(version)
            return version != first[0]

        try:
            changed = wait_for_object(self.chokepoint, fn, namespace=ref.namespace, name=ref.name,
                                      get=lambda: self.get_workload(ref), predicate=moved, timeout=timeout, clock=self.clock)
        except NotFound:
            return True   # gone is a change too; the next look says what it means
        return changed is not None

    def _patch_workload(self, ref: WorkloadRef, body: Any, *, dry_run: bool, content_type: str | None = None) -> Any:
        fn = self.apps.patch_namespaced_stateful_set if ref.kind == "StatefulSet" else self.apps.patch_namespaced_deployment
        extra: dict[str, Any] = {"_content_type": content_type} if content_type else {}
        written = self._retry_conflict(
            f"patch {ref.kind.lower()} {ref}",
            lambda: self.chokepoint.read_json(f"patch {ref.kind.lower()} {ref}", fn, ref.name, ref.namespace, body,
                                              **self._dry(dry_run), **extra),
            lambda: self.get_workload(ref),
        )
        self._shown(ref, written, dry_run=dry_run)
        return written

    def _result(self, message: str, *, dry_run: bool, **details: Any) -> WriteResult:
        return WriteResult(ok=True, dry_run=dry_run, message=message + (" (server-side dry run)" if dry_run else ""),
                           details=details)

    def scale(self, *, ref: WorkloadRef, replicas: int, dry_run: bool = False) -> WriteResult:
        body = bodies.scale_body(replicas)
        fn = self.apps.patch_namespaced_stateful_set_scale if ref.kind == "StatefulSet" else self.apps.patch_namespaced_deployment_scale
        what = f"scale {ref.kind.lower()} {ref}"
        written = self._retry_conflict(
            what, lambda: self.chokepoint.read_json(what, fn, ref.name, ref.namespace, body, **self._dry(dry_run)),
            lambda: self.get_workload(ref))
        self._shown(ref, written, dry_run=dry_run)
        return self._result(f"scaled {ref} to {replicas}", dry_run=dry_run, replicas=replicas)

    def restart_rollout(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult:
        body = bodies.restart_body(self.clock.now())
        self._patch_workload(ref, body, dry_run=dry_run)
        return self._result(f"restarted rollout of {ref}", dry_run=dry_run,
                            restarted_at=body["spec"]["template"]["metadata"]["annotations"][bodies.RESTARTED_AT])

    def undo_rollout(self, *, ref: WorkloadRef, to_revision: int | None = None, dry_run: bool = False) -> WriteResult:
        if ref.kind != "Deployment":
            raise Invalid(f"undo_rollout supports Deployments only, not {ref.kind} {ref}")
        deployment = self.get_workload(ref)
        items = self.chokepoint.read_json(f"list replicasets in {ref.namespace}", self.apps.list_namespaced_replica_set,
                                          ref.namespace).get("items") or []
        # Its history as the snapshot reads it: ReplicaSets it controls (by uid), with revisions it could have made.
        owned = [rs for _, rs in owned_history(deployment, items)]
        target = bodies.pick_revision(owned, to_revision)
        revision = int(target["metadata"]["annotations"][bodies.REVISION])
        if bodies.same_template(deployment, target):
            return WriteResult(ok=True, dry_run=dry_run, message=f"skipped rollback of {ref}: revision {revision} is already running",
                               details={"revision": revision, "skipped": True})
        self._patch_workload(ref, bodies.undo_body(deployment, target), dry_run=dry_run, content_type=bodies.JSON_PATCH)
        return self._result(f"rolled {ref} back to revision {revision}", dry_run=dry_run, revision=revision)

    def set_template(
        self, *, ref: WorkloadRef, image: str | None = None, gpus_per_replica: int | None = None,
        memory_mib: int | None = None, gpu_requirement: GpuRequirement | None = None, dry_run: bool = False,
    ) -> WriteResult:
        current = self.get_workload(ref)
        body = bodies.template_body(current, image=image, gpus_per_replica=gpus_per_replica,
                                    memory_mib=memory_mib, gpu_requirement=gpu_requirement)
        self._patch_workload(ref, body, dry_run=dry_run)
        return self._result(f"changed the pod template of {ref}", dry_run=dry_run, patch=body)

    def set_probe(self, *, ref: WorkloadRef, probe: Probe, dry_run: bool = False) -> WriteResult:
        current = self.get_workload(ref)
        body = health_parse.probe_patch(current, probe)
        self._patch_workload(ref, body, dry_run=dry_run)
        return self._result(f"set the {probe.kind} probe of {ref}", dry_run=dry_run, patch=body)

    def cordon(self, *, node: str, cordoned: bool = True, dry_run: bool = False) -> WriteResult:
        what = f"{'cordon' if cordoned else 'uncordon'} node {node}"
        self.chokepoint.read_json(what, self.core.patch_node, node, bodies.cordon_body(cordoned), **self._dry(dry_run))
        return self._result(f"{'cordoned' if cordoned else 'uncordoned'} node {node}", dry_run=dry_run)

    def delete_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        self.chokepoint.read_json(f"delete pod {namespace}/{name}", self.core.delete_namespaced_pod, name, namespace,
                                  **self._dry(dry_run))
        return self._result(f"deleted pod {namespace}/{name}", dry_run=dry_run)

    def evict_pod(self, *, namespace: str, name: str, dry_run: bool = False) -> WriteResult:
        """POST pods/NAME/eviction (policy/v1). A 429 means a PodDisruptionBudget forbids it now: asked once, not retried."""
        once = replace(self.chokepoint, attempts=1, requests=0, retries=0)
        what = f"evict pod {namespace}/{name}"
        try:
            once.read_json(what, self.core.create_namespaced_pod_eviction, name, namespace,
                           disruption_parse.eviction_body(namespace, name), **self._dry(dry_run))
        except Unavailable as exc:
            if exc.status == 429:
                raise DisruptionBlocked(exc.message.split(" (gave up after")[0], status=429) from exc
            raise
        finally:
            self.chokepoint.requests += once.requests
        return self._result(f"evicted pod {namespace}/{name}", dry_run=dry_run)

    def set_image(self, *, ref: WorkloadRef, image: str, container: str | None = None,
                  dry_run: bool = False) -> WriteResult:
        """`kubectl set image`: read the template for its containers, then patch the one container's image."""
        body, name, before = image_body(self.get_workload(ref), image=image, container=container)
        if before == image:
            return WriteResult(ok=True, dry_run=dry_run, message=f"skipped: container {name} of {ref} already runs {image}",
                               details={"container": name, "image": image, "skipped": True})
        self._patch_workload(ref, body, dry_run=dry_run)
        return self._result(f"set image of container {name} of {ref} to {image}", dry_run=dry_run,
                            container=name, image=image, image_before=before)

    def annotate(self, *, ref: WorkloadRef, annotations: dict[str, str | None], dry_run: bool = False) -> WriteResult:
        self._patch_workload(ref, bodies.annotate_body(annotations), dry_run=dry_run, content_type=bodies.MERGE_PATCH)
        return self._result(f"annotated {ref}", dry_run=dry_run, annotations=dict(annotations))

    def create_workload(self, *, spec: WorkloadSpec, dry_run: bool = False) -> WriteResult:
        manifest = bodies.deployment_manifest(spec)
        self.chokepoint.read_json(f"create deployment {spec.ref}", self.apps.create_namespaced_deployment,
                                  spec.ref.namespace, manifest, **self._dry(dry_run))
        return self._result(f"created deployment {spec.ref}", dry_run=dry_run)

    def delete_workload(self, *, ref: WorkloadRef, dry_run: bool = False) -> WriteResult:
        fn = self.apps.delete_namespaced_stateful_set if ref.kind == "StatefulSet" else self.apps.delete_namespaced_deployment
        self.chokepoint.read_json(f"delete {ref.kind.lower()} {ref}", fn, ref.name, ref.namespace, **self._dry(dry_run))
        return self._result(f"deleted {ref.kind.lower()} {ref}", dry_run=dry_run)

    def pause_autoscaler(self, *, kind: str, namespace: str, name: str, replicas: int | None,
                         dry_run: bool = False) -> WriteResult:
        if kind == "HorizontalPodAutoscaler":
            raise Invalid(f"{kind} {namespace}/{name} has no pause annotation; only KEDA objects pause")
        group, version, plural = scalers.KEDA_HTTP if kind == "HTTPScaledObject" else scalers.KEDA
        what = f"{'pause' if replicas is not None else 'resume'} {kind} {namespace}/{name}"
        self.chokepoint.read_json(what, self.custom.patch_namespaced_custom_object, group, version, namespace, plural, name,
                                  scalers.pause_body(replicas), _content_type=bodies.MERGE_PATCH, **self._dry(dry_run))
        return self._result(f"paused {kind} {namespace}/{name} at {replicas}" if replicas is not None
                            else f"resumed {kind} {namespace}/{name}", dry_run=dry_run, paused_replicas=replicas)

    def set_autoscaler_bounds(self, *, kind: str, namespace: str, name: str, min_replicas: int, max_replicas: int,
                              dry_run: bool = False) -> WriteResult:
        body = scalers.bounds_body(kind, min_replicas, max_replicas)
        what = f"set bounds of {kind} {namespace}/{name}"
        if kind == "HorizontalPodAutoscaler":
            self.chokepoint.read_json(what, self.autoscaling.patch_namespaced_horizontal_pod_autoscaler, name, namespace,
                                      body, **self._dry(dry_run))
        else:
            group, version, plural = scalers.KEDA_HTTP if kind == "HTTPScaledObject" else scalers.KEDA
            self.chokepoint.read_json(what, self.custom.patch_namespaced_custom_object, group, version, namespace, plural,
                                      name, body, _content_type=bodies.MERGE_PATCH, **self._dry(dry_run))
        return self._result(f"set {kind} {namespace}/{name} bounds to {min_replicas}..{max_replicas}", dry_run=dry_run,
                            min_replicas=min_replicas, max_replicas=max_replicas)

    # --- leader election (the daemon) --------------------------------------------------

    def lease_api(self) -> Any:
        """A CoordinationV1Api on this connection: the daemon's Lease, which elects a leader and writes no workload."""
        return k8s.CoordinationV1Api(self.core.api_client)

    # --- who these credentials are (opsagent.identity, doctor) -----------------------

    def whoami(self) -> ClusterUser:
        """The user and groups the API server authenticated these credentials as (SelfSubjectReview)."""
        return who_am_i(self.chokepoint)

    def impersonation_refusal(self, *, user: str, groups: tuple[str, ...] = ()) -> str | None:
        """None if these credentials may impersonate `user` (and `groups`); else why not."""
        return impersonation_refusal(self.chokepoint, user=user, groups=groups)

    def impersonate(self, *, user: str, groups: tuple[str, ...] = ()) -> None:
        """From now on, every request on this connection is made as `user` (kubectl --as)."""
        impersonate(self.chokepoint.api, user=user, groups=groups)

    # --- access checks (doctor) ---------------------------------------------------

    def can_i(self, *, verb: str, group: str, resource: str, subresource: str = "", namespace: str | None = None) -> tuple[bool, str]:
        """SelfSubjectAccessReview: (allowed, reason)."""
        attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": resource}
        if subresource:
            attrs["subresource"] = subresource
        if namespace:
            attrs["namespace"] = namespace
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs}}
        review = self.chokepoint.read_json(f"check access {verb} {resource}", self.authz.create_self_subject_access_review, body)
        status = review.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")


__all__ = ["KubeCluster", "ClusterError"]
