"""Pod lifecycle and rollouts in the simulator: what a kubelet and a Deployment controller do.

Functions over the engine's mutable state (`sim` is a SimCluster): schedule a
pod (GPUs are bound at scheduling and held until the pod goes, like a process
that opens the CUDA context at import), pull its image, start it, load its
model, mark it ready; or fail it as the revision's failure mode says. Rollouts
are RollingUpdate with maxSurge 1 and maxUnavailable 0; old pods that are not
ready are removed at once. No I/O, no clock reads: times come in as `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opsagent.cluster.sim import health
from opsagent.cluster.sim.needs import UNBOUND
from opsagent.cluster.sim.scheduler import choose_devices, throughput_factor, unschedulable_message
from opsagent.cluster.sim.state import SimNode, SimPod, SimWorkload

if TYPE_CHECKING:
    from opsagent.cluster.sim.engine import SimCluster

CRASH_AFTER = timedelta(seconds=20)  # a crashing container dies this long after it starts
PULL_FAIL_AFTER = timedelta(seconds=10)
PULL_RETRY = timedelta(minutes=5)  # the kubelet's image pull back-off cap: a failing pull is retried this often
# What the container runtime says when a pull fails, by failure mode (containerd's wording).
PULL_FAILURES = {
    "bad_image": 'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found',
    "pull_unauthorized": ('rpc error: code = Unknown desc = failed to pull and unpack image "{image}": failed to '
                          'authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized'),
}
MAX_BACKOFF = 300.0
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"


def backoff(restarts: int) -> float:
    """kubelet's restart back-off: 10 s doubling to a 5 minute cap."""
    return min(MAX_BACKOFF, 10.0 * 2 ** max(0, restarts - 1))


def create_pod(sim: "SimCluster", w: SimWorkload, now: datetime) -> SimPod:
    rev = w.current()
    while True:
        suffix = "".join(sim.rng.choice(_SUFFIX) for _ in range(5))
        name = f"{w.ref.name}-{rev.template_hash}-{suffix}"
        if f"{w.ref.namespace}/{name}" not in sim.pods:
            break
    pod = SimPod(namespace=w.ref.namespace, name=name, workload=w.key, revision=rev.number, created_at=now,
                 fail_mode=rev.fail_mode, labels={**w.labels, "pod-template-hash": rev.template_hash})
    w.pods.append(pod)
    sim.pods[pod.key] = pod
    try_schedule(sim, w, pod, now)
    return pod


def try_schedule(sim: "SimCluster", w: SimWorkload, pod: SimPod, now: datetime) -> bool:
    if pod.sched_version == sim.free_version:
        return False  # nothing freed since the last failed attempt
    claim = sim.needs.unbound_claim(w)
    if claim is not None:
        _waits_for_claim(sim, pod, now)
        return False
    if w.gpus == 0:
        node = next((n for n in sim.nodes if n.schedulable), None)
        devices = []
    else:
        choice = choose_devices(sim.nodes, w.gpus, w.requirement, start=sim.first_free)
        node, devices = choice if choice is not None else (None, [])
    if node is None:
        first = pod.sched_version == -1 or pod.reason != "Unschedulable"
        pod.sched_version = sim.free_version
        pod.reason = "Unschedulable"
        pod.message = unschedulable_message(sim.nodes, w.gpus, w.requirement)
        if first:
            sim.emit(now, pod.namespace, "Pod", pod.name, "FailedScheduling", pod.message, "Warning")
        return False
    if devices:
        sim.bind(devices, pod.key, now)
    pod.node, pod.gpus = node.name, devices
    pod.factor = throughput_factor(devices) if w.tensor_parallel else 1.0
    pod.stage, pod.until = "pulling", now + w.cold_start.image_pull
    pod.reason, pod.message = "ContainerCreating", None
    gpu_note = f" with GPUs {', '.join(g.id.split('/')[-1] for g in devices)}" if devices else ""
    sim.emit(now, pod.namespace, "Pod", pod.name, "Scheduled",
             f"Successfully assigned {pod.key} to {node.name}{gpu_note}")
    sim.emit(now, pod.namespace, "Pod", pod.name, "Pulling", f'Pulling image "{w.image_of(pod)}"')
    return True


def _waits_for_claim(sim: "SimCluster", pod: SimPod, now: datetime) -> None:
    """The scheduler's word for a pod whose claim is not bound, said once."""
    first = pod.reason != "Unschedulable" or pod.sched_version == -1
    pod.sched_version = -2   # not -1, so the event is not said again; and never the free version, so it is tried each tick
    n = len(sim.nodes)
    pod.reason = "Unschedulable"
    pod.message = (f"0/{n} nodes are available: {UNBOUND}. preemption: 0/{n} nodes are available: "
                   f"{n} Preemption is not helpful for scheduling.")
    if first:
        sim.emit(now, pod.namespace, "Pod", pod.name, "FailedScheduling", pod.message, "Warning")


def make_ready(sim: "SimCluster", w: SimWorkload, pod: SimPod, at: datetime) -> None:
    pod.stage, pod.until = "ready", None
    pod.phase, pod.reason, pod.message, pod.ready = "Running", None, None, True
    pod.started_at = pod.started_at or at
    pod.running_since = pod.running_since or at
    if pod.revision == w.revision and w.rollout_status == "progressing":
        w.progress_at = at


def step_pods(sim: "SimCluster", w: SimWorkload, now: datetime) -> None:
    """Move each of the workload's pods through every stage that ended by `now`."""
    for pod in w.pods:
        if pod.stage == "unscheduled":
            try_schedule(sim, w, pod, now)
        elif pod.stage == "config_error" and sim.needs.missing_config(w) is None:
            _start_container(sim, w, pod, now)
        while pod.until is not None and pod.until <= now:
            _finish_stage(sim, w, pod, pod.until)


def _finish_stage(sim: "SimCluster", w: SimWorkload, pod: SimPod, t: datetime) -> None:
    image = w.image_of(pod)
    ns, name = pod.namespace, pod.name
    if pod.stage == "pulling":
        if pod.fail_mode in PULL_FAILURES:
            pod.stage, pod.until = "pull_failed", t + PULL_FAIL_AFTER
            pod.reason = "ErrImagePull"
            pod.message = PULL_FAILURES[pod.fail_mode].format(image=image)
            sim.emit(t, ns, "Pod", name, "Failed", f'Failed to pull image "{image}": {pod.message}', "Warning")
            return
        pull = w.cold_start.image_pull.total_seconds()
        sim.emit(t, ns, "Pod", name, "Pulled", f'Successfully pulled image "{image}" in {pull:g}s')
        missing = sim.needs.missing_config(w)
        if missing is not None:
            pod.stage, pod.until = "config_error", None   # the kubelet retries; step_pods starts it once it exists
            pod.reason, pod.message = "CreateContainerConfigError", missing
            sim.emit(t, ns, "Pod", name, "Failed", f"Error: {missing}", "Warning")
            return
        _start_container(sim, w, pod, t)
    elif pod.stage == "pull_failed":
        pod.stage, pod.until = "image_backoff", t + PULL_RETRY
        pod.reason, pod.message = "ImagePullBackOff", f'Back-off pulling image "{image}"'
        sim.emit(t, ns, "Pod", name, "BackOff", pod.message, "Warning")
    elif pod.stage == "image_backoff":  # the kubelet pulls again at its back-off cap, and fails the same way
        pod.until = t + PULL_RETRY
        failed = PULL_FAILURES.get(pod.fail_mode or "", "")
        sim.emit(t, ns, "Pod", name, "Failed", f'Failed to pull image "{image}": {failed.format(image=image)}', "Warning")
    elif pod.stage == "probing":
        health.step(sim, w, pod, t)
    elif pod.stage == "loading":
        died = health.fault(w, pod) if pod.fail_mode != "crash" else None
        if died is not None:
            health.end(sim, pod, t, died)
        elif pod.fail_mode == "crash":
            pod.last_end, pod.running_since = ("Error", 1, None, t), None
            pod.restarts += 1
            delay = backoff(pod.restarts)
            pod.stage, pod.until = "crashed", t + timedelta(seconds=delay)
            pod.reason = "CrashLoopBackOff"
            pod.message = f"back-off {delay:g}s restarting failed container=main pod={name}"
            sim.emit(t, ns, "Pod", name, "BackOff", "Back-off restarting failed container main", "Warning")
        else:
            make_ready(sim, w, pod, t)
    elif pod.stage == "crashed":
        _start_container(sim, w, pod, t)


def _start_container(sim: "SimCluster", w: SimWorkload, pod: SimPod, t: datetime) -> None:
    if pod.restarts == 0:
        sim.emit(t, pod.namespace, "Pod", pod.name, "Created", "Created container main")
    sim.emit(t, pod.namespace, "Pod", pod.name, "Started", "Started container main")
    pod.phase, pod.started_at, pod.running_since = "Running", pod.started_at or t, t
    if pod.fail_mode is None and health.fault(w, pod) is not None:
        pod.stage, pod.until = "loading", t + CRASH_AFTER
        pod.reason = None if pod.restarts == 0 else "CrashLoopBackOff"
    elif pod.fail_mode is None and health.has_probes(w):
        pod.plan = health.plan(w, pod, t)
        pod.stage, pod.until = "probing", (pod.plan[0][0] if pod.plan else None)
        pod.reason, pod.message = None, None
    elif pod.fail_mode == "crash":
        pod.stage, pod.until = "loading", t + CRASH_AFTER
    elif pod.fail_mode == "slow":
        pod.stage, pod.until = "loading", None  # the model never finishes loading in time
        pod.reason, pod.message = None, "Readiness probe failed: model still loading"
    else:
        pod.stage, pod.until = "loading", t + w.cold_start.model_load
        pod.reason = None if pod.restarts == 0 else "CrashLoopBackOff"


def kill_pod(sim: "SimCluster", w: SimWorkload, pod: SimPod, now: datetime, *, reason: str = "Killing") -> None:
    sim.release(pod.gpus)
    pod.gpus = []
    if pod in w.pods:
        w.pods.remove(pod)
    sim.pods.pop(pod.key, None)
    if pod.node is not None:
        sim.emit(now, pod.namespace, "Pod", pod.name, reason, "Stopping container main")


def reconcile(sim: "SimCluster", w: SimWorkload, now: datetime) -> None:
    """Bring the workload's pods toward `replicas` of its current revision (RollingUpdate, surge 1)."""
    want = w.replicas
    cur = [p for p in w.pods if p.revision == w.revision]
    old = [p for p in w.pods if p.revision != w.revision]
    rs_name = f"{w.ref.name}-{w.current().template_hash}"
    for pod in [p for p in old if not p.ready]:
        kill_pod(sim, w, pod, now)
        old.remove(pod)
    if len(cur) > want:
        surplus = sorted(cur, key=lambda p: (p.ready, p.created_at), reverse=False)[: len(cur) - want]
        for pod in surplus:
            kill_pod(sim, w, pod, now)
            cur.remove(pod)
        sim.emit(now, w.ref.namespace, "Deployment", w.ref.name, "ScalingReplicaSet",
                 f"Scaled down replica set {rs_name} to {len(cur)}")
    ready_new = sum(1 for p in cur if p.ready)
    while old and ready_new + len(old) > want:
        pod = old.pop(0)
        kill_pod(sim, w, pod, now)
    limit = want + (1 if old else 0)
    created = 0
    while len(cur) < want and len(cur) + len(old) < limit:
        refusal = sim.needs.quota_refusal(sim, w)
        if refusal is not None:
            sim.needs.refuse(sim, w, rs_name, refusal, now)
            break
        cur.append(create_pod(sim, w, now))
        created += 1
    if created:
        sim.emit(now, w.ref.namespace, "Deployment", w.ref.name, "ScalingReplicaSet",
                 f"Scaled up replica set {rs_name} to {len(cur)}")
    _rollout_status(sim, w, cur, old, ready_new, rs_name, now)


def _rollout_status(sim, w: SimWorkload, cur, old, ready_new: int, rs_name: str, now: datetime) -> None:
    if w.rollout_status == "complete":
        return
    if not old and len(cur) == w.replicas and ready_new == w.replicas:
        w.rollout_status, w.rollout_reason = "complete", "NewReplicaSetAvailable"
        w.rollout_message = f'ReplicaSet "{rs_name}" has successfully progressed.'
        w.rollout_since = now
    elif w.rollout_status == "progressing" and now - w.progress_at > sim.progress_deadline:
        w.rollout_status, w.rollout_reason = "failed", "ProgressDeadlineExceeded"
        w.rollout_message = f'ReplicaSet "{rs_name}" has timed out progressing.'
        w.rollout_since = now
        sim.emit(now, w.ref.namespace, "Deployment", w.ref.name, "ProgressDeadlineExceeded", w.rollout_message, "Warning")


def set_cordon(sim: "SimCluster", node: SimNode, cordoned: bool, now: datetime) -> None:
    if node.cordoned == cordoned:
        return
    node.cordoned = cordoned
    sim.free_version += 1
    reason = "NodeNotSchedulable" if cordoned else "NodeSchedulable"
    sim.emit(now, "", "Node", node.name, reason, f"Node {node.name} status is now: {reason}")


def evict_from_dead_nodes(sim: "SimCluster", now: datetime, grace: timedelta) -> None:
    for node in sim.nodes:
        if node.ready:
            continue
        for pod in [p for p in sim.pods.values() if p.node == node.name]:
            pod.ready = False
            if node.not_ready_since is not None and now - node.not_ready_since >= grace:
                kill_pod(sim, sim.workloads[pod.workload], pod, now, reason="TaintManagerEviction")
        if node.not_ready_since is not None and now - node.not_ready_since >= grace:
            for job in sim.jobs:
                if job.state == "running" and job.node == node.name:
                    sim.release(job.devices)
                    job.state, job.finished_at, job.devices = "failed", now, []
                    sim.emit(now, job.namespace, "Job", job.name, "BackoffLimitExceeded", "node lost", "Warning")

