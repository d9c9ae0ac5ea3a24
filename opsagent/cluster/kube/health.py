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

from opsagent.cluster.kube.gpus import container_gpus, mib
from opsagent.cluster.kube.timestamps import parse_time
from opsagent.model import Container, Probe, Termination

PROBE_FIELDS = {"readiness": "readinessProbe", "liveness": "livenessProbe", "startup": "startupProbe"}
MESSAGE_LIMIT = 4096  # a termination message is at most 4096 bytes in the API; keep no more


def _mib_or_none(value: Any) -> int | None:
    """A memory quantity in MiB; None when it is absent, does not parse, or is negative (no size is)."""
    if value is None:
        return None
    try:
        found = mib(value)
    except ValueError:
        return None
    return found if found >= 0 else None


def _gpus(spec: dict[str, Any]) -> int:
    """The GPUs a container asks for; 0 when the count does not read (the snapshot notes it, see `readable_gpus`)."""
    try:
        return container_gpus(spec)
    except ValueError:
        return 0


INT32 = 2**31 - 1  # the API's probe fields are int32: a larger number is not one a server sent


def _int(value: Any, default: int) -> int:
    try:
        return min(INT32, int(value)) if value is not None else default
    except (TypeError, ValueError, OverflowError):  # OverflowError: a number too large for a float (1e400)
        return default


def _dict(value: Any) -> dict[str, Any]:
    """A field that should hold an object; anything else (a list, a string from a server that breaks the schema)
    reads as empty, so one odd object does not stop the snapshot."""
    return value if isinstance(value, dict) else {}


def probe(kind: str, body: dict[str, Any] | None) -> Probe | None:
    """One probe of a container spec, or None when it has none (or one of a kind this cannot read)."""
    if not isinstance(body, dict):
        return None
    action, path, port = "exec", None, None
    if isinstance(body.get("httpGet"), dict):
        path = body["httpGet"].get("path")
        action, path, port = "http", path if isinstance(path, str) and path else "/", body["httpGet"].get("port")
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
    resources = _dict(spec.get("resources"))
    ports: list[int] = []
    for port in spec.get("ports") or ():  # a shaped object (shapes.py) keeps only the numbers; a whole one has the dicts
        number = port.get("containerPort") if isinstance(port, dict) else port
        if isinstance(number, int) and 1 <= number <= 65535:
            ports.append(number)
    probes = tuple(p for p in (probe(kind, spec.get(field)) for kind, field in PROBE_FIELDS.items()) if p is not None)
    return Container(name=str(spec.get("name") or ""), gpus=_gpus(spec),
                     memory_request_mib=_mib_or_none(_dict(resources.get("requests")).get("memory")),
                     memory_limit_mib=_mib_or_none(_dict(resources.get("limits")).get("memory")),
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
        reason = ended.get("reason")
        out.append(Termination(container=str(cs.get("name") or ""), reason=str(reason) if reason is not None else None,
                               exit_code=ended.get("exitCode") if isinstance(ended.get("exitCode"), int) else None,
                               message=str(message)[:MESSAGE_LIMIT] if message else None,
                               finished_at=parse_time(ended.get("finishedAt"))))
    found = tuple(out)
    return found if shared is None else shared.setdefault(found, found)


def running_since(statuses: list[dict[str, Any]] | None, main: str | None = None) -> datetime | None:
    """When the main container (named `main`: the pod spec's first) last started running; None when it is not
    running. The kubelet lists statuses sorted by name, so a sidecar named `aaa-proxy` comes first: the status is
    found by name, and only a pod whose spec names no container falls back on the first listed."""
    for cs in statuses or ():
        if main is not None and cs.get("name") != main:
            continue
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
