"""Memory, probes and container ends as the Kubernetes API shows them. Pure, no I/O.

What it is for: reading, from objects the adapter already lists (pod templates of Deployments
and StatefulSets, and Pods), each container's memory request and limit, declared ports and
probes (`readinessProbe`, `livenessProbe`, `startupProbe`), and from a pod's
`containerStatuses` how each container last ended (`lastState.terminated`, or
`state.terminated`: reason such as OOMKilled, exit code, termination message) and since when
the main container runs (`state.running.startedAt`). No list or watch call of its own: the
request count stays what it was. `probe_patch` builds the strategic-merge patch that sets one
probe of a template's first container.

What it must not do: talk to the API server, or mutate its inputs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsagent.cluster.kube.gpus import mib
from opsagent.cluster.kube.timestamps import parse_time
from opsagent.model import Container, Probe, Termination

PROBE_FIELDS = {"readiness": "readinessProbe", "liveness": "livenessProbe", "startup": "startupProbe"}
MESSAGE_LIMIT = 4096  # a termination message is at most 4096 bytes in the API; keep no more


def _mib_or_none(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return mib(value)
    except ValueError:
        return None


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def probe(kind: str, body: dict[str, Any] | None) -> Probe | None:
    """One probe of a container spec, or None when it has none (or one of a kind this cannot read)."""
    if not isinstance(body, dict):
        return None
    action, path, port = "exec", None, None
    if isinstance(body.get("httpGet"), dict):
        action, path, port = "http", body["httpGet"].get("path") or "/", body["httpGet"].get("port")
    elif isinstance(body.get("tcpSocket"), dict):
        action, port = "tcp", body["tcpSocket"].get("port")
    elif isinstance(body.get("grpc"), dict):
        action, port = "grpc", body["grpc"].get("port")
    if port is not None and not isinstance(port, int):
        port = str(port)
    return Probe(kind=kind, action=action, path=path, port=port,  # type: ignore[arg-type]
                 initial_delay_seconds=max(0, _int(body.get("initialDelaySeconds"), 0)),
                 period_seconds=max(1, _int(body.get("periodSeconds"), 10)),
                 timeout_seconds=max(1, _int(body.get("timeoutSeconds"), 1)),
                 failure_threshold=max(1, _int(body.get("failureThreshold"), 3)))


def container(spec: dict[str, Any]) -> Container:
    """One container of a pod spec: memory request and limit (MiB), declared ports, probes."""
    resources = spec.get("resources") or {}
    ports: list[int] = []
    for port in spec.get("ports") or ():  # a shaped object (shapes.py) keeps only the numbers; a whole one has the dicts
        number = port.get("containerPort") if isinstance(port, dict) else port
        if isinstance(number, int):
            ports.append(number)
    probes = tuple(p for p in (probe(kind, spec.get(field)) for kind, field in PROBE_FIELDS.items()) if p is not None)
    return Container(name=str(spec.get("name") or ""),
                     memory_request_mib=_mib_or_none((resources.get("requests") or {}).get("memory")),
                     memory_limit_mib=_mib_or_none((resources.get("limits") or {}).get("memory")),
                     ports=tuple(ports), probes=probes)


Shared = dict[Any, Any]  # one snapshot's equal records, kept once (they are frozen)


def containers(pod_spec: dict[str, Any], shared: Shared | None = None) -> tuple[Container, ...]:
    """The containers of a pod spec; with `shared`, equal tuples (one chart, many workloads) are one object."""
    found = tuple(container(c) for c in pod_spec.get("containers") or () if isinstance(c, dict))
    return found if shared is None else shared.setdefault(found, found)


def terminations(statuses: list[dict[str, Any]] | None, shared: Shared | None = None) -> tuple[Termination, ...]:
    """How each container last ended: its current terminated state, else its last one. With `shared`, equal
    records (the same end reported by many pods) are one object."""
    out = []
    for cs in statuses or ():
        ended = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if not ended:
            continue
        message = ended.get("message")
        out.append(Termination(container=str(cs.get("name") or ""), reason=ended.get("reason"),
                               exit_code=ended.get("exitCode") if isinstance(ended.get("exitCode"), int) else None,
                               message=str(message)[:MESSAGE_LIMIT] if message else None,
                               finished_at=parse_time(ended.get("finishedAt"))))
    found = tuple(out)
    return found if shared is None else shared.setdefault(found, found)


def running_since(statuses: list[dict[str, Any]] | None) -> datetime | None:
    """When the first container last started running (None when it is not running)."""
    for cs in statuses or ():
        running = (cs.get("state") or {}).get("running")
        return parse_time(running.get("startedAt")) if running else None
    return None


def probe_patch(workload: dict[str, Any], new: Probe) -> dict[str, Any]:
    """A strategic-merge patch that sets one probe of the template's first container (matched by name).

    The handlers it does not use are set to null, so a probe that was a TCP check becomes an HTTP one cleanly."""
    first = ((((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}])[0]
    handler: dict[str, Any] = {"httpGet": None, "tcpSocket": None, "grpc": None, "exec": None}
    if new.action == "http":
        handler["httpGet"] = {"path": new.path or "/", "port": new.port}
    elif new.action == "tcp":
        handler["tcpSocket"] = {"port": new.port}
    elif new.action == "grpc":
        handler["grpc"] = {"port": new.port}
    else:
        del handler["exec"]  # a command probe keeps its command; only its timing changes
    body = {**handler, "initialDelaySeconds": new.initial_delay_seconds, "periodSeconds": new.period_seconds,
            "timeoutSeconds": new.timeout_seconds, "failureThreshold": new.failure_threshold}
    return {"spec": {"template": {"spec": {"containers": [{"name": first.get("name"), PROBE_FIELDS[new.kind]: body}]}}}}
