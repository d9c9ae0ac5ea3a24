"""Routes of the wake proxy: which host / path prefix goes to which workload and upstream.

A small YAML file written by people, e.g.:

    routes:
      - host: chat.example.internal      # optional; any host when omitted
        path_prefix: /                   # longest prefix wins
        workload: chat/chat-ui           # NAMESPACE/NAME
        upstream: http://chat-ui.chat.svc:8080   # or service:chat/chat-ui:http (resolved at start-up)
        timeout: 5m                      # optional; how long a request may wait for a cold start

Parsing, matching and checking routes against a snapshot; no network.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opsagent.clock import parse_duration
from opsagent.model import Snapshot, WorkloadRef
from opsagent.yamlfile import load_model, read_yaml


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str | None = Field(default=None, description="Host header to match (port ignored); any host when omitted")
    path_prefix: str = Field(default="/", description="path prefix to match; the longest matching prefix wins")
    workload: str = Field(description="NAMESPACE/NAME of the workload behind the upstream")
    upstream: str = Field(description="base URL requests are forwarded to, e.g. http://10.0.0.5:8080, or the Service "
                                      "in front of the workload: service:NAMESPACE/NAME[:PORT] (see upstreams.py)")
    timeout: timedelta | None = Field(default=None, description="how long a request may wait for a cold start")

    @field_validator("workload")
    @classmethod
    def _ref(cls, value: str) -> str:
        WorkloadRef.parse(value)
        return value

    @field_validator("upstream")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith("service:"):
            from opsagent.wake.upstreams import parse_service

            parse_service(value)   # the form only; the Service itself is looked up at start-up
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream must be an http(s) URL such as http://host:8080 or service:NAMESPACE/NAME[:PORT], "
                             f"got {value!r}")
        return value.rstrip("/")

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path_prefix must start with '/'")
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, (str, int, float)) else value

    @property
    def ref(self) -> WorkloadRef:
        return WorkloadRef.parse(self.workload)


class RouteTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: tuple[Route, ...] = Field(min_length=1)

    def match(self, host: str | None, path: str) -> Route | None:
        """The route for a request: host must match when the route names one; longest prefix wins."""
        bare = (host or "").split(":")[0].lower()
        best: Route | None = None
        for route in self.routes:
            if route.host is not None and route.host.lower() != bare:
                continue
            if not path.startswith(route.path_prefix):
                continue
            if best is None or _rank(route) > _rank(best):
                best = route
        return best


def _rank(route: Route) -> tuple[int, int]:
    return (route.host is not None, len(route.path_prefix))


def load_routes(path: str | Path) -> RouteTable:
    """Load a routes file; raises opsagent.yamlfile.FileError naming file:line and field."""
    return load_model(RouteTable, path)


def missing_workloads(table: RouteTable, snapshot: Snapshot, *, path: str | Path | None = None) -> list[str]:
    """One warning per route whose workload the cluster does not have, naming the route and its file line."""
    located = read_yaml(path)[1] if path is not None else None
    warnings = []
    for i, route in enumerate(table.routes):
        if snapshot.workload(route.ref) is not None:
            continue
        line = located.position(("routes", i, "workload"))[0] if located is not None else None
        where = f"{path}:{line}: " if line else (f"{path}: " if path else "")
        match = (f"host {route.host!r} " if route.host else "") + f"path prefix {route.path_prefix!r}"
        warnings.append(f"{where}routes[{i}] ({match}) points at workload {route.workload}, which the cluster does not have; "
                        "requests for it get 404")
    return warnings


def served_by_keda(table: RouteTable, snapshot: Snapshot, *, path: str | Path | None = None) -> tuple[dict[str, str], list[str]]:
    """Routes whose host (or, for a route with no host, whose workload) a KEDA HTTPScaledObject already serves.

    Returns ({workload: the HTTPScaledObject}, one warning per such route). KEDA's HTTP add-on holds
    and wakes those requests itself; the proxy forwards them as they come and never wakes that workload.
    """
    located = read_yaml(path)[1] if path is not None else None
    served: dict[str, str] = {}
    warnings = []
    http = [a for a in snapshot.autoscalers if a.kind == "HTTPScaledObject"]
    for i, route in enumerate(table.routes):
        for scaler in http:
            hosts = {h.lower() for h in scaler.hosts}
            if (route.host.lower() in hosts) if route.host is not None else (str(scaler.target) == str(route.ref)):
                break
        else:
            continue
        served[str(route.ref)] = scaler.label
        line = located.position(("routes", i))[0] if located is not None else None
        where = f"{path}:{line}: " if line else (f"{path}: " if path else "")
        match = f"host {route.host!r}" if route.host else f"workload {route.workload}"
        warnings.append(f"{where}routes[{i}] ({match}) is already served by {scaler.label} (KEDA HTTP add-on); "
                        "requests are forwarded as they come and the proxy never wakes it")
    return served, warnings
