"""Services and EndpointSlices from their list calls. Pure, no I/O.

What it is for: a `Service` per Service with its selector, ports and cluster
address; its ready and not-ready endpoints counted from the EndpointSlices
labelled `kubernetes.io/service-name` with its name (an endpoint with no `ready`
condition counts as ready, as the API documents); and the Deployments and
StatefulSets whose pod template labels its selector matches.

What it must not do: talk to the API server.
"""

from __future__ import annotations

from typing import Any

from opsagent.model import Service, ServicePort

SERVICE_NAME = "kubernetes.io/service-name"


def _port(item: dict[str, Any]) -> ServicePort | None:
    try:
        number = int(item.get("port"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not 1 <= number <= 65535:
        return None
    target = item.get("targetPort")
    return ServicePort(name=str(item.get("name") or ""), port=number,
                       target_port=target if isinstance(target, (int, str)) else None,
                       protocol=str(item.get("protocol") or "TCP"))


def endpoint_counts(slices: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """{'ns/service': (ready, not ready)} over every slice of each Service."""
    counts: dict[str, list[int]] = {}
    for item in slices:
        meta = item.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME)
        if not service:
            continue
        row = counts.setdefault(f"{meta.get('namespace', '')}/{service}", [0, 0])
        for endpoint in item.get("endpoints") or ():
            ready = (endpoint.get("conditions") or {}).get("ready")
            row[0 if ready is None or ready is True else 1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


Templates = dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]]


def template_labels(workloads: list[tuple[str, dict[str, Any]]]) -> Templates:
    """{(namespace, label, value): [('ns/name', pod template labels)]} for (kind, object) pairs of Deployments and
    StatefulSets: a selector's candidates are those that carry one of its labels, not the whole namespace."""
    out: Templates = {}
    for _kind, obj in workloads:
        meta = obj.get("metadata") or {}
        labels = (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        namespace = meta.get("namespace", "")
        entry = (f"{namespace}/{meta.get('name', '')}", labels)
        for key, value in labels.items():
            out.setdefault((namespace, key, value), []).append(entry)
    return out


def service(item: dict[str, Any], counts: dict[str, tuple[int, int]], templates: Templates) -> Service | None:
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    if not namespace or not name:
        return None
    kind = str(spec.get("type") or "ClusterIP")
    selector = {str(k): str(v) for k, v in (spec.get("selector") or {}).items()} if kind != "ExternalName" else {}
    ready, not_ready = counts.get(f"{namespace}/{name}", (0, 0))
    first = next(iter(selector.items()), None)
    candidates = templates.get((namespace, *first), ()) if first is not None else ()
    targets = tuple(sorted(key for key, labels in candidates if all(labels.get(k) == v for k, v in selector.items())))
    return Service(namespace=namespace, name=name, type=kind, cluster_ip=spec.get("clusterIP") or None,
                   selector=selector, ports=tuple(p for p in map(_port, spec.get("ports") or ()) if p is not None),
                   ready_endpoints=ready, not_ready_endpoints=not_ready, workloads=targets)


def services(items: list[dict[str, Any]], slices: list[dict[str, Any]],
             workloads: list[tuple[str, dict[str, Any]]]) -> tuple[Service, ...]:
    counts, templates = endpoint_counts(slices), template_labels(workloads)
    found = [s for s in (service(i, counts, templates) for i in items) if s is not None]
    return tuple(sorted(found, key=lambda s: (s.namespace, s.name)))
