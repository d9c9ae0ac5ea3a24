"""`SimCluster`: a simulated GPU cluster on a virtual clock, implementing the Cluster port.

It steps in fixed ticks (the scenario's `tick`, 30 s by default) and, each
tick, fires due timeline events, generates traffic, moves pods through their
lifecycle (schedule -> pull -> start -> load model -> ready, or fail), rolls
workloads forward one pod at a time, runs the GPU job queue, and integrates
GPU-hours. Work per tick is proportional to the number of objects.

Determinism: all randomness comes from one `random.Random(seed)`; the same
scenario and seed give the same history. It never reads the system clock.
Port writes live in `writes.py`; turning state into a `Snapshot` in `view.py`.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from opsagent.clock import VirtualClock
from opsagent.cluster.port import Invalid, NotFound
from opsagent.cluster.sim import autoscaling, health, lifecycle, needs, view
from opsagent.cluster.sim.scenario import JobDecl, Scenario, TimelineEvent
from opsagent.cluster.sim.scheduler import choose_devices
from opsagent.cluster.sim.state import SimGpu, SimJob, SimNode, SimRevision, SimWorkload
from opsagent.cluster.sim.traffic import compile_points, rate_at
from opsagent.cluster.sim.writes import WritesMixin
from opsagent.model import Snapshot, WorkloadRef

EVENT_LIMIT = 2000  # events kept in memory
EVENT_WINDOW = timedelta(hours=1)  # events a snapshot shows
NODE_EVICTION = timedelta(minutes=5)  # pods leave a NotReady node after this
JOB_UTILIZATION = 95.0


class SimCluster(WritesMixin):
    """A deterministic simulated cluster. See docs/simulator.md for the model."""

    def __init__(self, scenario: Scenario, *, clock: VirtualClock | None = None, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.rng = random.Random(self.seed)
        self.clock = clock or VirtualClock(scenario.start)
        self._now: datetime = self.clock.now()
        self.tick = scenario.tick.total_seconds()
        self.progress_deadline = scenario.progress_deadline
        self.nodes: list[SimNode] = []
        self._node_by_name: dict[str, SimNode] = {}
        self.workloads: dict[str, SimWorkload] = {}
        self.pods: dict[str, object] = {}
        self.jobs: list[SimJob] = []
        self._job_by_key: dict[str, SimJob] = {}
        self.events: deque[tuple] = deque(maxlen=EVENT_LIMIT)
        self.chat_log: list[dict] = []
        self.faults: deque[str] = deque()
        self._timed_out: str | None = None  # a write under a `timeout` fault, reported by `_done`
        self.free_version = 0
        self.first_free = 0
        self._jobs_version = -1
        self.allocated = 0
        self.acc = {"gpu_hours_allocated": 0.0, "gpu_hours_busy": 0.0, "gpu_hours_idle": 0.0,
                    "jobs_started": 0, "jobs_finished": 0, "requests_total": 0}
        self.samples: list[dict] = []
        self._last_idle = 0
        self._last_busy = 0.0
        self._build_nodes()
        self._timeline: list[tuple[datetime, int, TimelineEvent | JobDecl]] = []
        for seq, event in enumerate(scenario.timeline):
            self._timeline.append((scenario.resolve_time(event.at), seq, event))
        for seq, job in enumerate(scenario.jobs, start=len(self._timeline)):
            at = scenario.resolve_time(job.at) if job.at else scenario.start
            self._timeline.append((at, seq, job))
        self._timeline.sort(key=lambda item: (item[0], item[1]))
        self._cursor = 0
        self.needs = needs.Needs(self)
        for decl in scenario.workloads:
            self._add_workload(decl.ref, image=decl.image, replicas=decl.replicas, gpus=decl.gpus,
                               memory_mib=decl.memory_mib, requirement=decl.gpu_requirement,
                               tensor_parallel=decl.tensor_parallel, cold_start=decl.cold_start,
                               capacity_rps=decl.capacity_rps, labels=dict(decl.labels),
                               annotations=dict(decl.annotations), traffic=decl.traffic,
                               failures=decl.failures, warm=scenario.start_warm,
                               memory_use_mib=decl.memory_use_mib, gpu_memory_mib=decl.gpu_memory_mib,
                               probes=decl.probes, server=decl.server)
        self.autoscalers = [autoscaling.from_decl(decl) for decl in scenario.autoscalers]
        self._fire_due(self._now)
        self._next_sample = self._now.replace(minute=0, second=0, microsecond=0)
        self._sample(self._now)

    # --- construction -------------------------------------------------------

    def _build_nodes(self) -> None:
        for spec in self.scenario.nodes:
            for i in range(1, spec.count + 1):
                name = spec.name if spec.count == 1 else f"{spec.name}-{i}"
                node = SimNode(name=name, index=len(self.nodes), labels=dict(spec.labels), gpus=[],
                               cordoned=spec.cordoned, ready_transition_at=self._now)
                for group in spec.gpus:
                    for _ in range(group.count):
                        node.gpus.append(SimGpu(id=f"{name}/gpu{len(node.gpus)}", node=name, model=group.model,
                                                memory_mib=group.memory_mib, link=group.link,
                                                switch=group.switch, numa=group.numa))
                node.free = len(node.gpus)
                if name in self._node_by_name:
                    raise Invalid(f"node {name!r} declared twice")
                self.nodes.append(node)
                self._node_by_name[name] = node

    def _add_workload(self, ref: WorkloadRef, *, warm: bool = False, image: str, **fields) -> SimWorkload:
        traffic = fields.get("traffic")
        w = SimWorkload(ref=ref, image=image, points=compile_points(traffic) if traffic and traffic.points else None,
                        **fields)
        self.workloads[w.key] = w
        self.new_revision(w, image=image, cause=None, now=self._now, announce=False)
        w.rollout_status, w.rollout_reason = "complete", "NewReplicaSetAvailable"
        lifecycle.reconcile(self, w, self._now)
        if warm and w.current().fail_mode is None and self.needs.missing_config(w) is None:
            for pod in w.pods:
                if pod.node is not None and not health.unwell(w, pod):
                    lifecycle.make_ready(self, w, pod, self._now)
            lifecycle.reconcile(self, w, self._now)
        return w

    # --- shared helpers used by lifecycle and writes --------------------------

    def emit(self, at: datetime, namespace: str, kind: str, name: str, reason: str, message: str = "",
             type_: str = "Normal") -> None:
        self.events.append((at, namespace, kind, name, type_, reason, message))

    def workload(self, ref: WorkloadRef | str) -> SimWorkload:
        w = self.workloads.get(f"{ref.namespace}/{ref.name}" if isinstance(ref, WorkloadRef) else str(ref))
        if w is None:
            raise NotFound(f"deployments.apps \"{ref}\" not found", status=404)
        return w

    def node(self, name: str) -> SimNode:
        node = self._node_by_name.get(name)
        if node is None:
            raise NotFound(f"nodes \"{name}\" not found", status=404)
        return node

    def new_revision(self, w: SimWorkload, *, image: str, cause: str | None, now: datetime,
                     announce: bool = True) -> SimRevision:
        number = max((r.number for r in w.revisions), default=0) + 1
        digest = hashlib.sha256(f"{w.key}|{image}|{number}|{w.gpus}|{w.requirement.min_link_width}|{w.requirement.coherent}".encode()).hexdigest()
        rev = SimRevision(number=number, image=image, created_at=now, change_cause=cause,
                          template_hash=digest[:10], fail_mode=self._fail_mode(w, image, number))
        w.revisions.append(rev)
        w.revision, w.image = number, image
        if announce:
            w.rollout_status, w.rollout_reason = "progressing", "ReplicaSetUpdated"
            w.rollout_message = f'ReplicaSet "{w.ref.name}-{rev.template_hash}" is progressing.'
            w.rollout_since = w.progress_at = now
        return rev

    @staticmethod
    def _fail_mode(w: SimWorkload, image: str, number: int) -> str | None:
        for i, rule in enumerate(w.failures):
            if (rule.image is not None and rule.image == image) or (rule.revision is not None and rule.revision == number):
                attempt = w.attempts.get(i, 0) + 1
                w.attempts[i] = attempt
                if rule.mode == "transient":
                    return "crash" if attempt == 1 else None
                return rule.mode
        return None

    def bind(self, devices: list[SimGpu], holder: str, now: datetime) -> None:
        node = self._node_by_name[devices[0].node]
        for gpu in devices:
            gpu.holder, gpu.held_since = holder, now
        node.free -= len(devices)
        self.allocated += len(devices)
        while self.first_free < len(self.nodes) and self.nodes[self.first_free].free == 0:
            self.first_free += 1

    def release(self, devices: list[SimGpu]) -> None:
        if not devices:
            return
        node = self._node_by_name[devices[0].node]
        for gpu in devices:
            gpu.holder, gpu.held_since, gpu.utilization = None, None, 0.0
        node.free += len(devices)
        self.allocated -= len(devices)
        self.first_free = min(self.first_free, node.index)
        self.free_version += 1

    # --- time ---------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Simulate forward by `seconds` (moving the virtual clock with it); returns the new time."""
        seconds = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if seconds < 0:
            raise ValueError("the simulator never goes back in time")
        self._catch_up()
        self._run_until(self._now + timedelta(seconds=seconds))
        return self._now

    def _catch_up(self) -> None:
        """Someone else moved the clock (e.g. a sleep on it): simulate up to it."""
        target = self.clock.now()
        if target > self._now:
            self._run_until(target)

    def _run_until(self, target: datetime) -> None:
        step = timedelta(seconds=self.tick)
        while self._now < target:
            t = min(self._now + step, target)
            behind = t - self.clock.now()
            if behind > timedelta(0):
                self.clock.advance(behind)
            self._step(t)

    def _step(self, t: datetime) -> None:
        dt = (t - self._now).total_seconds()
        self._now = t
        self._fire_due(t)
        self.needs.claim_events(self, t)
        self._traffic(t, dt)
        lifecycle.evict_from_dead_nodes(self, t, NODE_EVICTION)
        autoscaling.step(self, t)
        for w in list(self.workloads.values()):
            lifecycle.step_pods(self, w, t)
            lifecycle.reconcile(self, w, t)
        self._run_jobs(t)
        self._utilization_and_accounting(t, dt)
        while self._next_sample + timedelta(hours=1) <= t:
            self._next_sample += timedelta(hours=1)
            self._sample(self._next_sample)

    # --- timeline -------------------------------------------------------------

    def _fire_due(self, t: datetime) -> None:
        while self._cursor < len(self._timeline) and self._timeline[self._cursor][0] <= t:
            at, _, item = self._timeline[self._cursor]
            self._cursor += 1
            if isinstance(item, JobDecl):
                self.submit_job(item, at=at)
            else:
                self._apply(item, at)

    def _apply(self, event: TimelineEvent, at: datetime) -> None:
        if event.requests is not None:
            w = self.workload(event.requests.workload)
            if event.requests.rps is not None:
                w.fixed_rps = event.requests.rps
            if event.requests.resume_curve:
                w.fixed_rps = None
            if event.requests.count:
                self.arrive(w, event.requests.count, at)
        elif event.rollout is not None:
            w = self.workload(event.rollout.workload)
            self.new_revision(w, image=event.rollout.image, cause=f"deploy {event.rollout.image}", now=at)
            self.emit(at, w.ref.namespace, "Deployment", w.ref.name, "ImageChanged", f"image set to {event.rollout.image}")
            lifecycle.reconcile(self, w, at)
        elif event.job is not None:
            self.submit_job(event.job, at=at)
        elif event.node is not None:
            node = self.node(event.node.name)
            if event.node.cordon is not None:
                lifecycle.set_cordon(self, node, event.node.cordon, at)
            if event.node.ready is not None and event.node.ready != node.ready:
                node.ready = event.node.ready
                node.not_ready_since = None if node.ready else at
                node.ready_transition_at = at
                if node.ready:  # the kubelet is back: the pods it still runs pass their probes again
                    for pod in (p for w in self.workloads.values() for p in w.pods):
                        if pod.node == node.name and pod.stage == "ready":
                            pod.ready = True
                self.free_version += 1
                self.emit(at, "", "Node", node.name, "NodeReady" if node.ready else "NodeNotReady",
                          f"Node {node.name} status is now: {'NodeReady' if node.ready else 'NodeNotReady'}",
                          "Normal" if node.ready else "Warning")
            if event.node.condition is not None:
                cond = event.node.condition
                if cond.clear:
                    node.conditions.pop(cond.type, None)
                else:
                    node.conditions[cond.type] = (cond.reason, cond.message, at)
            if event.node.reboot:
                node.boots += 1
                node.ready_transition_at = at   # the kubelet came back and posted Ready anew
                self.emit(at, "", "Node", node.name, "Rebooted",
                          f"Node {node.name} has been rebooted, boot id: {node.boot_id}", "Warning")
            if event.node.xid is not None:
                self.emit(at, "", "Node", node.name, "XidError",
                          f"GPU {node.name}/gpu{event.node.gpu}: XID {event.node.xid}", "Warning")
        elif event.api_fault is not None:
            self.faults.extend([event.api_fault.kind] * event.api_fault.count)
        elif event.chat is not None:
            self.chat_log.append({"time": at, "actor": event.chat.actor, "text": event.chat.text})
        elif event.config is not None:
            self.needs.apply(kind=event.config.kind, namespace=event.config.namespace, name=event.config.name,
                             delete=event.config.delete)
        elif event.plant is not None:
            w = self.workload(event.plant.workload)
            if event.plant.pod_message is not None:
                w.planted_message = event.plant.pod_message
            if event.plant.termination_message is not None:
                w.planted_termination = event.plant.termination_message
            if event.plant.event is not None:
                for pod in w.pods:
                    self.emit(at, pod.namespace, "Pod", pod.name, event.plant.reason, event.plant.event, "Warning")

    # --- traffic ----------------------------------------------------------------

    def arrive(self, w: SimWorkload, count: int, at: datetime) -> None:
        w.last_request_at = at
        w.requests_total += count
        self.acc["requests_total"] += count
        if not any(p.ready for p in w.pods):
            if w.pending_requests == 0:
                w.pending_since = at
            w.pending_requests += count

    def _traffic(self, t: datetime, dt: float) -> None:
        rng = self.rng
        for w in self.workloads.values():
            if w.traffic is None and w.fixed_rps is None:
                w.rps = 0.0
                continue
            base = w.fixed_rps if w.fixed_rps is not None else rate_at(w.traffic, t, w.points)
            w.rps = round(base * (0.9 + 0.2 * rng.random()), 3) if base > 0 else 0.0
            expected = w.rps * dt + w.carry
            count = int(expected)
            w.carry = expected - count
            if count:
                self.arrive(w, count, t)

    # --- jobs -------------------------------------------------------------------

    def submit_job(self, decl: JobDecl, *, at: datetime) -> SimJob:
        key = f"{decl.namespace}/{decl.name}"
        if key in self._job_by_key:
            raise Invalid(f'jobs.batch "{key}" already exists', status=409)
        job = SimJob(namespace=decl.namespace, name=decl.name, gpus=decl.gpus,
                     duration=decl.duration.total_seconds(), submitted_at=at)
        self.jobs.append(job)
        self._job_by_key[key] = job
        self._jobs_version = -1
        self.emit(at, job.namespace, "Job", job.name, "Queued", f"waiting for {job.gpus} GPU(s)")
        return job

    def _run_jobs(self, t: datetime) -> None:
        for job in self.jobs:
            if job.state == "running" and job.started_at + timedelta(seconds=job.duration) <= t:
                done = job.started_at + timedelta(seconds=job.duration)
                self.release(job.devices)
                job.state, job.finished_at, job.devices = "succeeded", done, []
                self.acc["jobs_finished"] += 1
                self.emit(done, job.namespace, "Job", job.name, "Completed", "Job completed")
        if self._jobs_version == self.free_version:
            return
        self._jobs_version = self.free_version
        for job in self.jobs:
            if job.state != "queued":
                continue
            choice = choose_devices(self.nodes, job.gpus, start=self.first_free)
            if choice is None:
                continue
            node, devices = choice
            self.bind(devices, job.key, t)
            for gpu in devices:
                gpu.utilization = JOB_UTILIZATION
            job.state, job.started_at, job.node, job.devices = "running", t, node.name, devices
            self.acc["jobs_started"] += 1
            self.emit(t, job.namespace, "Job", job.name, "Started", f"running on {node.name} with {len(devices)} GPU(s)")
        self._jobs_version = self.free_version

    # --- utilisation and GPU-hours --------------------------------------------------

    def _utilization_and_accounting(self, t: datetime, dt: float) -> None:
        busy = 0.0
        idle = 0
        for w in self.workloads.values():
            ready = [p for p in w.pods if p.ready]
            if w.pending_requests and ready:
                w.pending_requests, w.pending_since = 0, None
            held = 0
            for pod in w.pods:
                if not pod.gpus:
                    continue
                held += len(pod.gpus)
                if pod.ready and w.rps > 0:
                    util = min(100.0, 100.0 * w.rps / (len(ready) * w.capacity_rps * pod.factor))
                else:
                    util = 0.0
                util = round(util, 1)
                for gpu in pod.gpus:
                    gpu.utilization = util
                busy += util / 100.0 * len(pod.gpus)
            if w.rps == 0 and w.pending_requests == 0:
                idle += held
        busy += sum(len(j.devices) for j in self.jobs if j.state == "running") * JOB_UTILIZATION / 100.0
        hours = dt / 3600.0
        self.acc["gpu_hours_allocated"] += self.allocated * hours
        self.acc["gpu_hours_busy"] += busy * hours
        self.acc["gpu_hours_idle"] += idle * hours
        self._last_idle, self._last_busy = idle, busy

    def _sample(self, at: datetime) -> None:
        self.samples.append({
            "time": at, "gpus_allocated": self.allocated, "gpus_busy": round(self._last_busy, 2),
            "gpus_idle": self._last_idle,
            "pods_pending": sum(1 for p in self.pods.values() if p.phase == "Pending"),
            "jobs_queued": sum(1 for j in self.jobs if j.state == "queued"),
            "jobs_running": sum(1 for j in self.jobs if j.state == "running"),
        })

    # --- reading ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Everything observable now, as frozen domain types (built without re-validation)."""
        self._catch_up()
        return view.build_snapshot(self)

    def snapshot_of(self, refs: Sequence[WorkloadRef]) -> Snapshot:
        """`snapshot()` narrowed to `refs` (the port's `ReadsWorkloads`), from the engine's indexed state."""
        self._catch_up()
        return view.build_narrow(self, refs)

    def events_since(self, since: datetime) -> list:
        return view.events(self, since)

    def stats(self) -> view.SimStats:
        self._catch_up()
        return view.build_stats(self)

    def record_request(self, ref: WorkloadRef | str, *, count: int = 1) -> None:
        """Requests arriving now (from the wake proxy or a test); they wait while nothing is ready."""
        if count < 1:
            raise Invalid("count must be at least 1")
        self._catch_up()
        self.arrive(self.workload(ref), count, self._now)
