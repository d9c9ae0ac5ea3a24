"""The list (or watch) calls for what pods need: ConfigMaps, Secrets, PVCs, Services, EndpointSlices.

What it is for: filling the `RawLists` slots of those five kinds with one list
call per kind (per namespace when restricted), or from the watched cache, the
same way every other kind is read. ConfigMaps and Secrets are asked for as
metadata only (config.py's Accept headers) and decoded to names only
(`decode_names`, by way of shapes.py, which shapes the other three kinds).

A refused ConfigMap or Secret list (an account without that grant) is noted in the
snapshot, not an error: missing objects are then named from the kubelet's messages only.

What it must not do: read a ConfigMap's or Secret's contents, get one by name,
or write anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s

from opsagent.cluster.kube.config import metadata_headers
from opsagent.cluster.port import Forbidden

if TYPE_CHECKING:
    from opsagent.cluster.kube.adapter import KubeCluster
    from opsagent.cluster.kube.read import RawLists


def _metadata_only(fn: Any) -> Any:
    """`fn` (a list method of the client) asking for metadata only, as a list or as a watch."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, _headers=metadata_headers(kwargs), **kwargs)
    return call


def read_needs(cluster: "KubeCluster", raw: "RawLists") -> None:
    core = cluster.core
    discovery = k8s.DiscoveryV1Api(cluster.chokepoint.api)
    kinds = (("configmaps", core.list_config_map_for_all_namespaces, core.list_namespaced_config_map),
             ("secrets", core.list_secret_for_all_namespaces, core.list_namespaced_secret))
    for what, all_ns, per_ns in kinds if cluster.reads_config else ():
        try:
            setattr(raw, "config_maps" if what == "configmaps" else what,
                    cluster._list(what, _metadata_only(all_ns), _metadata_only(per_ns)))
        except Forbidden as exc:   # an account without the grant: findings rest on the kubelet's word alone
            raw.config_unreadable = "; ".join(filter(None, (raw.config_unreadable, exc.message)))
    raw.volume_claims = cluster._list("persistentvolumeclaims", core.list_persistent_volume_claim_for_all_namespaces,
                                      core.list_namespaced_persistent_volume_claim)
    raw.services = cluster._list("services", core.list_service_for_all_namespaces, core.list_namespaced_service)
    raw.endpoint_slices = cluster._list("endpointslices", discovery.list_endpoint_slice_for_all_namespaces,
                                        discovery.list_namespaced_endpoint_slice)
