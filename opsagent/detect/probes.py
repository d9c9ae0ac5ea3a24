"""Pods that are not ready: why, and the `not_ready` detector.

`diagnose(snapshot, workload, now)` says why a workload's pods are not ready, from what
the cluster shows: the pod's phase and reason, its last termination, its probes (from the
pod template) and the kubelet's probe events (`Unhealthy`: "Readiness probe failed: ...",
`Killing`: "failed liveness probe, will be restarted"). The readings, most specific first:

- `out_of_memory`: the container's last end was out of memory (see detect/memory.py);
- `probe_broken`: the probe can never pass: it gets 404 from a server that is up (wrong
  path), or aims at a port the container does not declare;
- `load_outlasts_probe`: a liveness or startup probe kills the container while it still
  loads: its budget (initial delay + period x failure threshold) is shorter than the load;
- `loading`: the model is still loading: the container has run for less than the time its
  probes allow for a start (the startup probe's budget, else the liveness probe's, else
  `DEFAULT_LOAD`), and nothing killed it. Restarting it would only start the load over;
- `stuck`: running well past that time, refused, with no clear cause;
- `waiting`: the pod is not running yet (Pending, pulling, crash-looping for other reasons)
  or its node is NotReady: other detectors say why.

The detector raises a finding only for the readings a person must act on (`probe_broken`,
`load_outlasts_probe`, `stuck`), with the probe, the numbers and the change to propose
(which never loosens a probe: it points it at the right path or port, or adds a startup
probe that covers the load). Chat's "why is NS/NAME not ready?" reads `diagnose` too.

Event text is data: it selects a reading and is quoted cut short, never followed.
Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from opsagent.detect import memory
from opsagent.detect.common import iso, make, short
from opsagent.model import (
    MAX_PROBE_FAILURES, PROBE_PATH, Container, Event, Finding, Pod, Probe, Snapshot, Workload)

DEFAULT_LOAD = timedelta(minutes=20)  # a start allowed when no probe sets a budget
STARTUP_PERIOD = 10  # seconds between attempts of a proposed startup probe
SKEW = 300  # seconds a start time may lie in the future (clocks drift) before it is said
Reading = Literal["out_of_memory", "probe_broken", "load_outlasts_probe", "loading", "stuck", "waiting", "ready"]
NEEDS_A_PERSON = ("probe_broken", "load_outlasts_probe", "stuck")
_KINDS = ("readiness", "liveness", "startup")


@dataclass(frozen=True)
class Diagnosis:
    """Why a workload's pods are not ready: one reading, about one pod, with its evidence."""

    reading: Reading
    says: str
    pod: str | None = None
    probe: Probe | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _probe_events(events: list[Event]) -> dict[str, list[str]]:
    """Probe failure texts by probe kind, oldest first, and kills under 'killed:<kind>'."""
    out: dict[str, list[str]] = {}
    for event in events:
        text = event.message or ""
        if event.reason == "Unhealthy":
            for kind in _KINDS:
                if text.startswith(f"{kind.capitalize()} probe failed"):
                    out.setdefault(kind, []).append(text)
        elif event.reason == "Killing":
            for kind in _KINDS:
                if f"failed {kind} probe" in text:
                    out.setdefault(f"killed:{kind}", []).append(text)
    return out


def _refused(texts: list[str]) -> bool:
    return any("connection refused" in t or "connect: " in t for t in texts)


def _not_found(texts: list[str]) -> bool:
    return any("statuscode: 404" in t for t in texts)


def load_allowance(main: Container | None) -> tuple[int, str]:
    """Seconds a start may take before its probes give up on it, and which probe says so."""
    for kind in ("startup", "liveness"):
        probe = main.probe(kind) if main else None
        if probe is not None:
            return probe.budget_seconds, f"{kind} probe"
    return int(DEFAULT_LOAD.total_seconds()), "default"


def _port_undeclared(main: Container | None, probe: Probe | None) -> bool:
    return (main is not None and probe is not None and isinstance(probe.port, int) and bool(main.ports)
            and probe.port not in main.ports)


_PATH = re.compile(PROBE_PATH)


def _change(kind: str, **given: Any) -> dict[str, Any] | None:
    """A set_probe proposal: every argument named, None where it keeps what the probe has. None when set_probe would
    refuse it (a path that is not plain printable ASCII, a port out of range, more failures than it allows): a
    number or path the cluster holds is copied only when the tool takes it as it is."""
    change = {"probe": kind, "path": None, "port": None, "period_seconds": None, "failure_threshold": None, **given}
    if change["path"] is not None and not (isinstance(change["path"], str) and _PATH.match(change["path"])):
        return None
    if change["port"] is not None and not 1 <= change["port"] <= 65535:
        return None
    if change["failure_threshold"] is not None and change["failure_threshold"] > MAX_PROBE_FAILURES:
        return None
    return change


def _proposal(probe: Probe, main: Container | None, reading: Reading, seen: dict[str, list[str]]) -> dict[str, Any] | None:
    """The probe change to propose, or None when the evidence names none: a startup probe that covers the load,
    the one port the container declares, or the path a sibling probe passes on. Never fewer failures allowed."""
    if reading == "load_outlasts_probe":
        if main is not None and main.probe("startup") is None:
            base = main.probe("liveness") or main.probe("readiness")
            if base is None or base.action == "exec":
                return None  # a new startup probe copies another's endpoint; a command is not read, so none to copy
        budget = 2 * max(probe.budget_seconds, int(DEFAULT_LOAD.total_seconds()))
        return _change("startup", period_seconds=STARTUP_PERIOD, failure_threshold=-(-budget // STARTUP_PERIOD))
    if main is None:
        return None
    if _port_undeclared(main, probe):
        return _change(probe.kind, port=main.ports[0]) if len(main.ports) == 1 else None
    if _not_found(seen.get(probe.kind, [])):
        passing = [p for p in main.probes if p.kind != probe.kind and p.action == "http" and p.path
                   and p.port == probe.port and not _not_found(seen.get(p.kind, [])) and not seen.get(f"killed:{p.kind}")]
        return _change(probe.kind, path=passing[0].path) if passing else None
    return None


def _pod_reading(snapshot: Snapshot, workload: Workload, pod: Pod, now: datetime) -> Diagnosis:
    oom = memory.cause(pod)
    if oom is not None:
        return Diagnosis("out_of_memory", f"container {oom[0].container} ran out of {'GPU ' if oom[1] == 'gpu' else ''}memory"
                         f" ({oom[0].reason}, exit {oom[0].exit_code}) and restarted {pod.restarts} time(s)", pod.name,
                         facts={"memory": oom[1], "restarts": pod.restarts, "message": short(oom[0].message)})
    main = workload.containers[0] if workload.containers else None
    seen = _probe_events(snapshot.events_for(pod.namespace, pod.name))
    for kind in ("startup", "liveness"):
        probe = main.probe(kind) if main else None
        if probe is None or not seen.get(f"killed:{kind}"):
            continue
        texts = seen.get(kind, [])
        reading: Reading = "probe_broken" if _not_found(texts) or _port_undeclared(main, probe) else "load_outlasts_probe"
        says = (f"the kubelet killed the container {len(seen[f'killed:{kind}'])} time(s) on its {probe.describe()}; "
                + ("the probe cannot pass (" + ("404 from the server" if _not_found(texts)
                                               else f"port {probe.port} is not a container port") + ")"
                   if reading == "probe_broken" else
                   f"the model is still loading when the {probe.budget_seconds}s budget runs out"))
        return Diagnosis(reading, says, pod.name, probe, {
            "restarts": pod.restarts, "budget_seconds": probe.budget_seconds, "failures": [short(t) for t in texts[-2:]],
            "proposal": _proposal(probe, main, reading, seen)})
    node = snapshot.node(pod.node) if pod.node else None
    if node is not None and not node.ready:  # the node detectors own this: its kubelet reports nothing now
        return Diagnosis("waiting", f"its node {node.name} is NotReady", pod.name,
                         facts={"node": node.name, "restarts": pod.restarts})
    if pod.phase != "Running" or pod.running_since is None:
        return Diagnosis("waiting", f"pod is {pod.phase}" + (f" ({pod.reason})" if pod.reason else ""), pod.name,
                         facts={"phase": pod.phase, "reason": pod.reason, "restarts": pod.restarts})
    readiness = main.probe("readiness") if main else None
    texts = seen.get("readiness", []) + seen.get("startup", [])
    running = int((now - pod.running_since).total_seconds())
    ahead = max(0, -running)  # a start time in the future: the node's clock runs ahead; said, never a negative run
    running = max(0, running)
    allowance, by = load_allowance(main)
    facts: dict[str, Any] = {"running_seconds": running, "load_allowance_seconds": allowance, "allowance_from": by,
                             "restarts": pod.restarts, "running_since": iso(pod.running_since),
                             "failures": [short(t) for t in texts[-2:]]}
    skew = ""
    if ahead > SKEW:
        facts["start_in_future_seconds"] = ahead
        skew = (f" (its start time is {ahead // 60} min in the future: its node's clock runs ahead, so how long it has "
                "run is not known)")
    if readiness is not None and (_not_found(seen.get("readiness", [])) or _port_undeclared(main, readiness)):
        cause = "404 from the server" if _not_found(seen.get("readiness", [])) else f"port {readiness.port} is not a container port"
        return Diagnosis("probe_broken", f"the {readiness.describe()} cannot pass ({cause})", pod.name, readiness,
                         {**facts, "proposal": _proposal(readiness, main, "probe_broken", seen)})
    if running <= allowance:
        return Diagnosis("loading", f"the model is still loading: running {running // 60} min of the {allowance // 60} min "
                         f"its {by if by != 'default' else 'usual'} allowance gives a start; restarting would start it over"
                         + skew, pod.name, readiness, facts)
    return Diagnosis("stuck", f"running {running // 60} min, past the {allowance // 60} min a start may take, and still not "
                     "ready" + (" (connection refused)" if _refused(texts) else ""), pod.name, readiness, facts)


def diagnose(snapshot: Snapshot, workload: Workload, now: datetime) -> Diagnosis:
    """Why `workload` has fewer ready pods than it asks for (reading `ready` when it has them all)."""
    pods = [p for p in snapshot.pods_of(workload.ref) if p.revision == workload.revision or not workload.revision]
    unready = sorted((p for p in pods if not p.ready), key=lambda p: (-p.restarts, p.name))
    if not unready:
        if workload.ready_replicas >= workload.replicas:
            return Diagnosis("ready", f"{workload.ready_replicas} of {workload.replicas} replica(s) ready")
        return Diagnosis("waiting", f"{workload.ready_replicas} of {workload.replicas} replica(s) ready; "
                         "the controller has not made the others yet")
    readings = [_pod_reading(snapshot, workload, p, now) for p in unready]
    order = {"out_of_memory": 0, "probe_broken": 1, "load_outlasts_probe": 2, "stuck": 3, "loading": 4, "waiting": 5}
    return min(readings, key=lambda d: order.get(d.reading, 9))


def explain(snapshot: Snapshot, workload: Workload) -> dict[str, Any] | None:
    """`diagnose` at the snapshot's time as plain data for a reader (get_workload, chat), or None when all are ready."""
    found = diagnose(snapshot, workload, snapshot.time)
    if found.reading == "ready":
        return None
    return {"reading": found.reading, "says": found.says, "pod": found.pod,
            "probe": found.probe.describe() if found.probe else None, "proposal": found.facts.get("proposal")}


def not_ready(snapshot: Snapshot, now: datetime) -> list[Finding]:
    found = []
    for workload in snapshot.workloads:
        if workload.rollout.status != "complete" or workload.replicas == 0:
            continue  # a release that never gets ready belongs to rollout_failed
        found_one = diagnose(snapshot, workload, now)
        if found_one.reading not in NEEDS_A_PERSON:
            continue
        probe = found_one.probe
        found.append(make(
            "not_ready", workload.key, f"{workload.key} not ready: {found_one.says}", now,
            reading=found_one.reading, pod=found_one.pod, probe=probe.kind if probe else None,
            probe_action=probe.action if probe else None, probe_path=probe.path if probe else None,
            probe_port=probe.port if probe else None, budget_seconds=probe.budget_seconds if probe else None,
            container_ports=list(workload.containers[0].ports) if workload.containers else [],
            ready_replicas=workload.ready_replicas, replicas=workload.replicas,
            restarts=found_one.facts.get("restarts"), running_seconds=found_one.facts.get("running_seconds"),
            failures=found_one.facts.get("failures", []), proposal=found_one.facts.get("proposal")))
    return found


__all__ = ["Diagnosis", "NEEDS_A_PERSON", "diagnose", "explain", "load_allowance", "not_ready"]
