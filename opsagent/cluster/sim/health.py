"""Memory and probes in the simulator: what the kubelet does to a container that runs out of memory
or fails its probes.

A container whose process needs more host memory than its limit (`memory_use_mib` over
`memory_mib`) is OOMKilled while it loads; a model that needs more GPU memory on one device
than the device has (`gpu_memory_mib`, split over the replica's GPUs when tensor-parallel)
exits with CUDA's out-of-memory error as its termination message. Either way the pod goes
into CrashLoopBackOff with the termination kept as `lastState`, as a kubelet keeps it.

Probes follow the kubelet: the server listens on `server.port` only once its model is
loaded; a startup probe holds the others back until it passes and kills the container when
its budget (initial delay + period x failure threshold) runs out first; a liveness probe
does the same from then on; a readiness probe decides when the pod is ready. A probe
aimed at the wrong port is refused for ever; at the wrong path it gets 404 once the server
is up. Failures show as `Unhealthy` Warning events (one per change of message, as the API
server aggregates repeats), kills as `Killing` events and a restart count.

Functions over the engine's mutable state; no I/O, no clock reads.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opsagent.cluster.sim.scenario import ProbeDecl
from opsagent.cluster.sim.state import SimPod, SimWorkload
from opsagent.model import Container, Probe, Termination

if TYPE_CHECKING:
    from opsagent.cluster.sim.engine import SimCluster

GIB = 1024.0
CUDA_OVERHEAD_MIB = 512  # what the CUDA context itself takes on a device before any weights
REPEAT = timedelta(minutes=15)  # a probe failure that lasts is reported again this often


def fault(w: SimWorkload, pod: SimPod) -> tuple[str, int, str | None] | None:
    """How the container dies while it loads, as (reason, exit code, termination message), or None."""
    if w.memory_use_mib is not None and w.memory_mib is not None and w.memory_use_mib > w.memory_mib:
        return "OOMKilled", 137, None
    if w.gpu_memory_mib is not None and pod.gpus:
        share = w.gpu_memory_mib / (len(pod.gpus) if w.tensor_parallel else 1)
        device = min(g.memory_mib for g in pod.gpus)
        if share + CUDA_OVERHEAD_MIB > device:
            in_use = device - CUDA_OVERHEAD_MIB - 300
            return "Error", 1, (
                f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {(share - in_use) / GIB:.2f} GiB. "
                f"GPU 0 has a total capacity of {device / GIB:.2f} GiB of which {300 / GIB:.2f} GiB is free. "
                f"Including non-PyTorch memory, this process has {in_use / GIB:.2f} GiB memory in use.")
    return None


def has_probes(w: SimWorkload) -> bool:
    return any(p is not None for p in (w.probes.readiness, w.probes.liveness, w.probes.startup))


def unwell(w: SimWorkload, pod: SimPod) -> bool:
    """True when a pod of `w` could not already be running and ready (for a warm start)."""
    if fault(w, pod) is not None:
        return True
    return any(p is not None and _failure(w, p, up=True) is not None
               for p in (w.probes.readiness, w.probes.liveness, w.probes.startup))


def _ip(pod: SimPod) -> str:
    h = zlib.crc32(pod.key.encode())
    return f"10.1.{h % 250}.{(h // 250) % 250 + 1}"


def _failure(w: SimWorkload, probe: ProbeDecl, *, up: bool, ip: str = "10.1.0.1") -> str | None:
    """The kubelet's failure text for one probe attempt, or None when it passes."""
    if not up or probe.port != w.server.port:
        if probe.action == "tcp":
            return f"dial tcp {ip}:{probe.port}: connect: connection refused"
        return f'Get "http://{ip}:{probe.port}{probe.path}": dial tcp {ip}:{probe.port}: connect: connection refused'
    if probe.action == "http" and probe.path != w.server.health_path:
        return "HTTP probe failed with statuscode: 404"
    return None


def _passes_at(w: SimWorkload, probe: ProbeDecl, begin: datetime, loaded: datetime) -> datetime | None:
    """When `probe`, run from `begin`, first passes (the server is up at `loaded`); None: never."""
    if _failure(w, probe, up=True) is not None:
        return None
    return max(begin + probe.initial_delay, loaded)


def _budget(probe: ProbeDecl) -> timedelta:
    return probe.initial_delay + probe.period * probe.failure_threshold


def _failures(w: SimWorkload, pod: SimPod, kind: str, probe: ProbeDecl, begin: datetime, loaded: datetime,
              until: datetime | None) -> list[tuple[datetime, str, str]]:
    """The Unhealthy events of one probe from `begin` until it passes or `until` (each change of message once)."""
    first = begin + probe.initial_delay
    out: list[tuple[datetime, str, str]] = []
    for at, up in ((first, first >= loaded), (max(first, loaded), True)):
        if until is not None and at >= until:
            break
        message = _failure(w, probe, up=up, ip=_ip(pod))
        if message is None:
            break
        text = f"{kind.capitalize()} probe failed: {message}"
        if not out or out[-1][2] != text:
            out.append((at, "unhealthy", text))
    return out


def plan(w: SimWorkload, pod: SimPod, t: datetime) -> list[tuple[datetime, str, str]]:
    """What happens to a container started at `t`: (time, unhealthy | ready | kill, message), in order."""
    loaded = t + w.cold_start.model_load
    items: list[tuple[datetime, str, str]] = []
    begin = t
    startup, liveness, readiness = w.probes.startup, w.probes.liveness, w.probes.readiness
    if startup is not None:
        passed, deadline = _passes_at(w, startup, t, loaded), t + _budget(startup)
        items += _failures(w, pod, "startup", startup, t, loaded, deadline)
        if passed is None or passed > deadline:
            return [*items, (deadline, "kill", "startup")]
        begin = passed
    kill_at = None
    if liveness is not None:
        passed, deadline = _passes_at(w, liveness, begin, loaded), begin + _budget(liveness)
        if passed is None or passed > deadline:
            kill_at = deadline
            items += _failures(w, pod, "liveness", liveness, begin, loaded, deadline)
    ready_at = max(loaded, begin) if readiness is None else _passes_at(w, readiness, begin, loaded)
    if readiness is not None:
        items += _failures(w, pod, "readiness", readiness, begin, loaded, kill_at)
    if ready_at is not None and (kill_at is None or ready_at < kill_at):
        items.append((ready_at, "ready", ""))
    if kill_at is not None:
        items.append((kill_at, "kill", "liveness"))
    return sorted(items, key=lambda item: (item[0], item[1] != "unhealthy"))


def step(sim: "SimCluster", w: SimWorkload, pod: SimPod, t: datetime) -> bool:
    """Apply the next planned probe outcome of `pod` (due at `t`). False when it ended the container."""
    from opsagent.cluster.sim import lifecycle

    _, action, message = pod.plan.pop(0)
    if action == "unhealthy":
        sim.emit(t, pod.namespace, "Pod", pod.name, "Unhealthy", message, "Warning")
        if not pod.plan or pod.plan[0][0] > t + REPEAT:  # still failing later: said again, as a repeated event is
            pod.plan.insert(0, (t + REPEAT, "unhealthy", message))
    elif action == "ready":
        lifecycle.make_ready(sim, w, pod, t)
    else:
        sim.emit(t, pod.namespace, "Pod", pod.name, "Killing",
                 f"Container main failed {message} probe, will be restarted")
        end(sim, pod, t, ("Error", 137, None))
        return False
    pod.stage, pod.until = ("probing", pod.plan[0][0]) if pod.plan else (pod.stage, None)
    return True


def end(sim: "SimCluster", pod: SimPod, t: datetime, how: tuple[str, int, str | None]) -> None:
    """The container ended (`how`: reason, exit code, message): keep it as lastState and back off before a restart."""
    from opsagent.cluster.sim.lifecycle import backoff

    planted = sim.workloads[pod.workload].planted_termination
    reason, code, message = how
    if planted:
        message = f"{message}\n{planted}" if message else planted
    pod.last_end = (reason, code, message, t)
    pod.plan, pod.running_since = [], None
    pod.ready = False
    pod.restarts += 1
    delay = backoff(pod.restarts)
    pod.stage, pod.until = "crashed", t + timedelta(seconds=delay)
    pod.reason = "CrashLoopBackOff"
    pod.message = f"back-off {delay:g}s restarting failed container=main pod={pod.name}"
    sim.emit(t, pod.namespace, "Pod", pod.name, "BackOff", "Back-off restarting failed container main", "Warning")


def _probe(kind: str, decl: ProbeDecl | None) -> Probe | None:
    if decl is None:
        return None
    return Probe(kind=kind, action=decl.action, path=decl.path if decl.action == "http" else None,  # type: ignore[arg-type]
                 port=decl.port, initial_delay_seconds=int(decl.initial_delay.total_seconds()),
                 period_seconds=max(1, int(decl.period.total_seconds())), failure_threshold=decl.failure_threshold)


def container(w: SimWorkload) -> Container:
    """The workload's one container as its pod template declares it (built again only when the template changed)."""
    key = (w.gpus, w.memory_mib, w.probes, w.server)
    if w.container_seen is not None and w.container_seen[0] == key:
        return w.container_seen[1]
    probes = (_probe("readiness", w.probes.readiness), _probe("liveness", w.probes.liveness),
              _probe("startup", w.probes.startup))
    made = Container(name="main", gpus=w.gpus, memory_request_mib=w.memory_mib, memory_limit_mib=w.memory_mib,
                     ports=(w.server.port,), probes=tuple(p for p in probes if p is not None))
    w.container_seen = (key, made)
    return made


def terminations(pod: SimPod) -> tuple[Termination, ...]:
    if pod.last_end is None:
        return ()
    reason, code, message, at = pod.last_end
    return (Termination(container="main", reason=reason, exit_code=code, message=message, finished_at=at),)
