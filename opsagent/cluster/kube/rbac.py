"""The one table of API permissions the kube adapter uses.

What it is for: `opsagent doctor` asks the API server (SelfSubjectAccessReview)
whether each of these is granted; deploy/render_configmaps.py renders deploy/'s
roles from it (writes to namespaced kinds only in the namespaces the policy
governs) and a test checks that they grant exactly these. Change a call in the
adapter, change this table.

The identity reviews (SelfSubjectReview, SelfSubjectAccessReview for
`impersonate`, see identity.py) are not in the table: the built-in
`system:basic-user` role allows them to every authenticated user, and the
daemon, which runs with deploy/'s roles, never makes them.

What it must not do: make API calls itself (doctor does, through the adapter).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    group: str          # "" is the core group
    resource: str       # plural, e.g. "deployments"
    verb: str
    why: str
    subresource: str = ""
    optional: bool = False   # the adapter works without it (e.g. DRA on clusters that lack it)
    # "cluster": ClusterRole (reads of the whole cluster, writes to cluster-scoped kinds such as nodes);
    # "governed": a Role in each namespace the policy governs (writes to namespaced kinds);
    # "own-namespace": a Role in opsagent's own namespace (the leader Lease).
    scope: str = "cluster"
    proxy: bool = True   # the wake proxy's read-only account is granted it too (not ConfigMaps or Secrets)

    @property
    def label(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {res}" + (f".{self.group}" if self.group else "")


def _p(group: str, resource: str, verbs: str, why: str, **kw: object) -> list[Permission]:
    return [Permission(group, resource, verb, why, **kw) for verb in verbs.split()]  # type: ignore[arg-type]


PERMISSIONS: tuple[Permission, ...] = tuple(
    _p("apps", "deployments", "list watch", "snapshot: one list call, then the watched cache")
    + _p("apps", "deployments", "get", "re-read before a retried write and before undo", scope="governed")
    + _p("apps", "deployments", "patch", "restart, undo, set template, set image, annotate", scope="governed")
    + _p("apps", "deployments", "create delete", "approved create_workload / delete_workload", scope="governed")
    + _p("apps", "deployments", "patch", "scale through the scale subresource", subresource="scale", scope="governed")
    + _p("apps", "statefulsets", "list watch", "snapshot: one list call, then the watched cache")
    + _p("apps", "statefulsets", "get patch", "restart, set template, set image, annotate", scope="governed")
    + _p("apps", "statefulsets", "delete", "approved delete_workload of a StatefulSet", scope="governed")
    + _p("apps", "statefulsets", "patch", "scale through the scale subresource", subresource="scale", scope="governed")
    + _p("apps", "replicasets", "list watch", "rollout history and pod revisions")
    + _p("", "pods", "list watch", "snapshot: one list call, then the watched cache")
    + _p("", "pods", "delete", "delete_pod", scope="governed")
    + _p("", "pods", "create", "evict_pod / drain_node through the Eviction API", subresource="eviction", scope="governed")
    + _p("policy", "poddisruptionbudgets", "list watch", "snapshot: disruption budgets a drain honours")
    + _p("", "nodes", "list watch", "snapshot: GPUs from capacity and GFD labels")
    + _p("", "nodes", "patch", "cordon / uncordon")
    + _p("", "events", "list watch", "snapshot: recent events")
    + _p("resource.k8s.io", "resourceslices", "list watch", "DRA GPU devices", optional=True)
    + _p("resource.k8s.io", "resourceclaims", "list watch", "DRA GPU allocations", optional=True)
    + _p("autoscaling", "horizontalpodautoscalers", "list watch", "snapshot: autoscalers own their targets' replicas")
    + _p("autoscaling", "horizontalpodautoscalers", "patch", "approved set_autoscaler_bounds of an HPA", scope="governed")
    + _p("keda.sh", "scaledobjects", "list watch", "snapshot: KEDA ScaledObjects", optional=True)
    + _p("keda.sh", "scaledobjects", "patch", "sleep/wake through paused-replicas, approved bounds", scope="governed",
         optional=True)
    + _p("http.keda.sh", "httpscaledobjects", "list watch", "snapshot: KEDA HTTP add-on hosts", optional=True)
    + _p("coordination.k8s.io", "leases", "get create update", "daemon leader election", scope="own-namespace")
    + _p("", "configmaps", "list watch", "snapshot: which ConfigMaps exist (metadata only, names kept)", proxy=False,
         optional=True)
    + _p("", "secrets", "list watch", "snapshot: which Secrets exist (metadata only, names kept, data never asked for)",
         proxy=False, optional=True)
    + _p("", "persistentvolumeclaims", "list watch", "snapshot: claims a pod waits for")
    + _p("", "services", "list watch", "snapshot: Services, their selectors and ports")
    + _p("discovery.k8s.io", "endpointslices", "list watch", "snapshot: the ready endpoints behind each Service")
)

READ_VERBS = frozenset({"list", "watch"})


def reads(permissions: tuple[Permission, ...] = PERMISSIONS) -> tuple[Permission, ...]:
    """What a read-only part (the wake proxy) needs: the cluster-wide list and watch calls of a snapshot, but for
    ConfigMaps and Secrets, which it never reads (a KubeCluster with `reads_config` False)."""
    return tuple(p for p in permissions if p.scope == "cluster" and p.verb in READ_VERBS and p.proxy)


def grouped(permissions: tuple[Permission, ...] = PERMISSIONS, *, scope: str = "cluster") -> dict[tuple[str, str], set[str]]:
    """{(group, 'resource[/sub]'): verbs} for one scope, the shape RBAC rules take."""
    out: dict[tuple[str, str], set[str]] = {}
    for perm in permissions:
        if perm.scope != scope:
            continue
        res = f"{perm.resource}/{perm.subresource}" if perm.subresource else perm.resource
        out.setdefault((perm.group, res), set()).add(perm.verb)
    return out
