"""Upstreams named by a Service: `upstream: service:NAMESPACE/NAME[:PORT]` in a route.

A route may name its upstream by the Service in front of the workload instead of
a URL. At start-up the proxy resolves each such route against a snapshot to
`http://CLUSTER-IP:PORT` (or `http://NAME.NAMESPACE.svc:PORT` for a headless
Service, `http://[IP]:PORT` for an IPv6 address). PORT is the Service's port
number or port name, and may be left out when the Service has exactly one port.
An ExternalName Service is refused: its name is an alias of a host outside the
cluster, and a route's upstream never leaves it through a Service.

A Service that does not exist, has no port, or has no port of that number or
name is an `UpstreamError` naming the routes file, its line and the route:
the proxy does not start with a route it cannot forward.

Pure: parsing and matching against a snapshot; no network.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from opsagent.model import Service, Snapshot
from opsagent.wake.routes import Route, RouteTable
from opsagent.yamlfile import read_yaml

PREFIX = "service:"
_FORM = re.compile(r"^service:([a-z0-9][-a-z0-9]{0,62})/([a-z0-9][-a-z0-9.]{0,252})(?::([-a-z0-9]{1,15}))?$")


class UpstreamError(ValueError):
    """A route names a Service upstream that cannot be resolved (one line, with file:line)."""


def parse_service(upstream: str) -> tuple[str, str, str | None] | None:
    """(namespace, name, port or None) for `service:NS/NAME[:PORT]`; None for a URL. Raises ValueError on a bad form."""
    if not upstream.startswith(PREFIX):
        return None
    match = _FORM.match(upstream)
    if match is None:
        raise ValueError(f"a Service upstream is service:NAMESPACE/NAME or service:NAMESPACE/NAME:PORT, got {upstream!r}")
    return match.group(1), match.group(2), match.group(3)


def address(service: Service, port: str | None) -> str:
    """The URL of `service` at `port` (number or name; None: its only port). Raises ValueError saying why not."""
    if not service.ports:
        raise ValueError(f"Service {service.key} has no port")
    if port is None:
        if len(service.ports) > 1:
            named = ", ".join(p.name or str(p.port) for p in service.ports)
            raise ValueError(f"Service {service.key} has {len(service.ports)} ports ({named}); "
                             f"name one: service:{service.key}:PORT")
        chosen = service.ports[0]
    else:
        found = next((p for p in service.ports if str(p.port) == port or (p.name and p.name == port)), None)
        if found is None:
            have = ", ".join(f"{p.name}={p.port}" if p.name else str(p.port) for p in service.ports)
            raise ValueError(f"Service {service.key} has no port {port!r} (it has {have})")
        chosen = found
    if service.type == "ExternalName":  # its DNS name is an alias of a host outside the cluster
        raise ValueError(f"Service {service.key} is an ExternalName alias of a name outside the cluster; "
                         "name the upstream by URL if that is meant")
    if service.headless:
        host = f"{service.name}.{service.namespace}.svc"
    else:
        try:
            ip = ipaddress.ip_address(str(service.cluster_ip))
        except ValueError:
            raise ValueError(f"Service {service.key} has a cluster address that is not an IP address: "
                             f"{str(service.cluster_ip)[:60]!r}") from None
        host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:{chosen.port}"


def uses_services(table: RouteTable) -> bool:
    return any(r.upstream.startswith(PREFIX) for r in table.routes)


def other_workloads(table: RouteTable, snapshot: Snapshot, *, path: str | Path | None = None) -> list[str]:
    """One warning per route whose Service upstream selects pods of other workloads than the route's (before
    resolving): a wake would start one workload while the Service sends the requests to another."""
    located = read_yaml(path)[1] if path is not None else None
    services = {s.key: s for s in snapshot.services}
    warnings = []
    for i, route in enumerate(table.routes):
        named = parse_service(route.upstream)
        service = services.get(f"{named[0]}/{named[1]}") if named is not None else None
        if service is None or not service.selector or route.workload in service.workloads:
            continue
        line = located.position(("routes", i, "upstream"))[0] if located is not None else None
        where = f"{path}:{line}: " if line else (f"{path}: " if path else "")
        targets = ", ".join(service.workloads) or "no workload"
        warnings.append(f"{where}routes[{i}] wakes {route.workload}, but Service {service.key} selects {targets}")
    return warnings


def resolve_upstreams(table: RouteTable, snapshot: Snapshot, *, path: str | Path | None = None) -> RouteTable:
    """The table with each Service upstream replaced by the Service's address; raises UpstreamError."""
    located = read_yaml(path)[1] if path is not None else None
    services = {s.key: s for s in snapshot.services}
    routes: list[Route] = []
    for i, route in enumerate(table.routes):
        named = parse_service(route.upstream)
        if named is None:
            routes.append(route)
            continue
        namespace, name, port = named
        line = located.position(("routes", i, "upstream"))[0] if located is not None else None
        where = f"{path}:{line}: " if line else (f"{path}: " if path else "")
        service = services.get(f"{namespace}/{name}")
        try:
            if service is None:
                raise ValueError(f"Service {namespace}/{name} does not exist")
            url = address(service, port)
        except ValueError as exc:
            raise UpstreamError(f"{where}routes[{i}] upstream {route.upstream}: {exc}") from None
        routes.append(route.model_copy(update={"upstream": url}))
    return table.model_copy(update={"routes": tuple(routes)})
