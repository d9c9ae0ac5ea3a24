"""What pods need, in the simulator: ConfigMaps and Secrets, claims, quotas and Services.

What it is for: doing what the kubelet, the scheduler, the PV controller, the quota
admission plugin and the EndpointSlice controller do, with their wording:

- a pod whose workload `needs` a ConfigMap or Secret that does not exist waits after
  its image pull with `CreateContainerConfigError` (`configmap "x" not found`) and
  starts once the object is created (timeline `config`);
- a pod whose claim is Pending (or missing) is not scheduled (`pod has unbound
  immediate PersistentVolumeClaims`); a Pending claim's events say why, every
  `CLAIM_EVENT_EVERY` (`ProvisioningFailed`: the StorageClass is not found, or
  `ExternalProvisioning`: waiting for a provisioner that never comes);
- a ResourceQuota refuses pods past its GPUs or pod count: the ReplicaSet makes
  none and says so in a `FailedCreate` event (at most every `QUOTA_EVENT_EVERY`);
- a Service's endpoints are the pods its selector matches, ready or not.

What it must not do: read the system clock, or hold any contents of a ConfigMap or Secret.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from opsagent.model import ConfigObject, Service, ServicePort, VolumeClaim

if TYPE_CHECKING:
    from opsagent.cluster.sim.engine import SimCluster
    from opsagent.cluster.sim.scenario import WorkloadDecl
    from opsagent.cluster.sim.state import SimPod, SimWorkload

CLAIM_EVENT_EVERY = timedelta(minutes=5)
QUOTA_EVENT_EVERY = timedelta(minutes=2)
UNBOUND = "pod has unbound immediate PersistentVolumeClaims"


class Needs:
    """The simulator's objects of these kinds, and when it last spoke of each."""

    def __init__(self, sim: "SimCluster") -> None:
        scenario = sim.scenario
        self.config: set[tuple[str, str, str]] = {(o.kind, o.namespace, o.name) for o in scenario.config_objects}
        self.decls: dict[str, "WorkloadDecl"] = {f"{w.namespace}/{w.name}": w for w in scenario.workloads}
        self.claims = {f"{c.namespace}/{c.name}": c for c in scenario.volume_claims}
        self.start = sim.now
        self.said: dict[str, datetime] = {}

    # --- configuration ------------------------------------------------------------

    def missing_config(self, w: "SimWorkload") -> str | None:
        """The kubelet's message for the first ConfigMap or Secret the workload needs and lacks."""
        decl = self.decls.get(w.key)
        if decl is None:
            return None
        for kind, names in (("ConfigMap", decl.needs.config_maps), ("Secret", decl.needs.secrets)):
            for name in names:
                if (kind, w.ref.namespace, name) not in self.config:
                    return f'{kind.lower()} "{name}" not found'
        return None

    def apply(self, *, kind: str, namespace: str, name: str, delete: bool) -> None:
        (self.config.discard if delete else self.config.add)((kind, namespace, name))

    # --- claims -----------------------------------------------------------------------

    def unbound_claim(self, w: "SimWorkload") -> str | None:
        """The first claim the workload needs that is not Bound (missing or Pending), by name."""
        decl = self.decls.get(w.key)
        if decl is None:
            return None
        for name in decl.needs.volume_claims:
            claim = self.claims.get(f"{w.ref.namespace}/{name}")
            if claim is None or claim.failure is not None:
                return name
        return None

    def claim_events(self, sim: "SimCluster", now: datetime) -> None:
        for key, claim in self.claims.items():
            if claim.failure is None:
                continue
            last = self.said.get(f"claim {key}")
            if last is not None and now - last < CLAIM_EVENT_EVERY:
                continue
            self.said[f"claim {key}"] = now
            if claim.failure == "storage_class_missing":
                sim.emit(now, claim.namespace, "PersistentVolumeClaim", claim.name, "ProvisioningFailed",
                         f'storageclass.storage.k8s.io "{claim.storage_class or "standard"}" not found', "Warning")
            else:
                sim.emit(now, claim.namespace, "PersistentVolumeClaim", claim.name, "ExternalProvisioning",
                         f'Waiting for a volume to be created either by the external provisioner '
                         f'"{claim.storage_class or "csi.example.com"}" or manually by the system administrator. '
                         "If volume creation is delayed, please verify that the provisioner is running and correctly "
                         "registered.")

    def volume_claims(self) -> tuple[VolumeClaim, ...]:
        return tuple(sorted((VolumeClaim(namespace=c.namespace, name=c.name, storage_class=c.storage_class,
                                         phase="Pending" if c.failure else "Bound", requested=c.size,
                                         volume=None if c.failure else f"pvc-{c.namespace}-{c.name}", created_at=self.start)
                             for c in self.claims.values()), key=lambda c: (c.namespace, c.name)))

    # --- quotas -------------------------------------------------------------------------

    def quota_refusal(self, sim: "SimCluster", w: "SimWorkload") -> str | None:
        """The quota admission plugin's refusal of one more pod of `w`, or None when it fits."""
        namespace = w.ref.namespace
        for quota in sim.scenario.quotas:
            if quota.namespace != namespace:
                continue
            pods = [p for p in _pods(sim) if p.namespace == namespace]
            if quota.gpus is not None and w.gpus:
                used = sum(sim.workloads[p.workload].gpus for p in pods)
                if used + w.gpus > quota.gpus:
                    return (f"exceeded quota: {quota.name}, requested: requests.nvidia.com/gpu={w.gpus}, "
                            f"used: requests.nvidia.com/gpu={used}, limited: requests.nvidia.com/gpu={quota.gpus}")
            if quota.pods is not None and len(pods) + 1 > quota.pods:
                return f"exceeded quota: {quota.name}, requested: pods=1, used: pods={len(pods)}, limited: pods={quota.pods}"
        return None

    def refuse(self, sim: "SimCluster", w: "SimWorkload", rs_name: str, refusal: str, now: datetime) -> None:
        last = self.said.get(f"quota {w.key}")
        if last is not None and now - last < QUOTA_EVENT_EVERY:
            return
        self.said[f"quota {w.key}"] = now
        sim.emit(now, w.ref.namespace, "ReplicaSet", rs_name, "FailedCreate",
                 f'Error creating: pods "{rs_name}-" is forbidden: {refusal}', "Warning")

    # --- what a snapshot shows -----------------------------------------------------------

    def config_objects(self) -> tuple[ConfigObject, ...]:
        return tuple(ConfigObject(kind=k, namespace=ns, name=n)  # type: ignore[arg-type]
                     for k, ns, n in sorted(self.config, key=lambda o: (o[1], o[2], o[0])))


def _pods(sim: "SimCluster") -> list["SimPod"]:
    return cast("list[SimPod]", list(sim.pods.values()))   # the engine keeps SimPods there, typed loosely


def services(sim: "SimCluster") -> tuple[Service, ...]:
    out = []
    for index, decl in enumerate(sim.scenario.services):
        selector = dict(decl.selector)
        pods = [p for p in _pods(sim) if p.namespace == decl.namespace
                and selector and all(p.labels.get(k) == v for k, v in selector.items())]
        targets = tuple(sorted(w.key for w in sim.workloads.values() if w.ref.namespace == decl.namespace and selector
                               and all(w.labels.get(k) == v for k, v in selector.items())))
        ready = sum(1 for p in pods if p.ready)
        out.append(Service(
            namespace=decl.namespace, name=decl.name, cluster_ip=decl.cluster_ip or f"10.96.{index // 250}.{index % 250 + 2}",
            selector=selector, ports=tuple(ServicePort(name=p.name, port=p.port, target_port=p.target_port) for p in decl.ports),
            ready_endpoints=ready, not_ready_endpoints=len(pods) - ready, workloads=targets))
    return tuple(sorted(out, key=lambda s: (s.namespace, s.name)))
