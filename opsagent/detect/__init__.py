"""Detectors: snapshot + intents + time → findings. Pure.

`detect(snapshot, intents=policy.intent_book, now=...)` runs every detector
(a plain list of intents works too: then annotations may only narrow them,
since no `annotation_intents` opt-in comes with it) and returns the
findings in a deterministic order (kind, then subject). A finding's id is
`kind:subject`, so the same problem keeps the same id from one cycle to the
next and callers can count attempts against it (`history`).

Nothing here performs I/O or reads a clock; an import-linter contract keeps
cluster adapters, HTTP, SQLite and LLM clients out of this package.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from opsagent.detect.autoscalers import autoscaler_stuck
from opsagent.detect.common import Attempts, History, Intents
from opsagent.detect.config import config_missing, quota_exceeded, volume_pending
from opsagent.detect.conflict import spec_conflict
from opsagent.detect.cron import CronError, parse_cron, window_open
from opsagent.detect.drain import node_needs_drain
from opsagent.detect.idle import idle_gpu, jobs_waiting
from opsagent.detect.images import image_pull_failed
from opsagent.detect.memory import out_of_memory
from opsagent.detect.nodes import node_left_cordoned, node_unhealthy
from opsagent.detect.probes import not_ready
from opsagent.detect.placement import drift, topology_mismatch, unschedulable_gpu
from opsagent.detect.rollout import crashloop, rollout_failed
from opsagent.detect.services import service_without_endpoints
from opsagent.detect.wake import wake_requested
from opsagent.model import FINDING_KINDS, Finding, Snapshot, WorkloadRef
from opsagent.policy.resolve import as_book

# The detail keys each finding kind may carry; playbook lint checks `details.X` against these.
DETAIL_KEYS: dict[str, frozenset[str]] = {
    "idle_gpu": frozenset({
        "reason", "gpus_held", "gpu_ids", "replicas", "idle_minutes", "idle_after_minutes", "idle_since",
        "last_request_at", "gpu_utilization", "gpu_hours_wasted_so_far", "intent", "hysteresis"}),
    "wake_requested": frozenset({
        "trigger", "pending_requests", "request_rate", "replicas", "warm_replicas", "wake_timeout_seconds",
        "last_request_at", "window_cron", "window_start", "window_end", "intent"}),
    "rollout_failed": frozenset({
        "revision", "image", "reason", "message", "bad_pods", "unschedulable_pods", "last_good_revision", "attempts",
        "last_action_at", "max_attempts", "backoff_seconds", "retry_due", "retry_at", "then",
        "next_action", "protected", "intent", "incident_started_at", "rejected"}),
    "drift": frozenset({
        "aspects", "intent", "replicas", "min", "max", "desired_replicas", "placement_violations",
        "placement"}),
    "unschedulable_gpu": frozenset({
        "pods", "gpus_per_replica", "gpus_wanted", "free_gpus", "message", "idle_holder_ids",
        "gpus_held_idle"}),
    "crashloop": frozenset({
        "revision", "pods", "worst_pod", "restarts", "restarts_total", "message", "attempts",
        "last_action_at", "protected", "intent", "incident_started_at", "rejected"}),
    "topology_mismatch": frozenset({
        "throughput_factor", "required_link_width", "gpus_per_replica", "replicas", "coherent_set_free",
        "free_coherent_set"}),
    "jobs_waiting": frozenset({
        "jobs", "gpus_wanted", "oldest_job", "oldest_wait_minutes", "free_gpus", "idle_holders",
        "idle_holder_ids", "gpus_releasable"}),
    "spec_conflict": frozenset({
        "problems", "gpus_per_replica", "required_link_width", "declared_link_width", "pending_pods", "intent",
        "widest_link", "largest_set", "proposed_placement", "intent_satisfiable"}),
    "node_unhealthy": frozenset({
        "node", "ready", "reasons", "not_ready_transitions", "xid_errors", "conditions", "gpu_holders", "gpus", "fleet_wide",
        "boot_id"}),
    "node_left_cordoned": frozenset({"node", "free_gpus", "pending_pods", "queued_jobs"}),
    "node_awaits_repair": frozenset({
        "node", "free_gpus", "pending_pods", "queued_jobs", "fault", "fault_at", "cordoned_at", "boot_id", "why"}),
    "autoscaler_stuck": frozenset({
        "autoscaler", "problem", "reason", "message", "min_replicas", "max_replicas", "current_replicas",
        "desired_replicas"}),
    "node_needs_drain": frozenset({"node", "reasons", "pods", "blocked", "gpus_held", "attempts"}),
    "image_pull_failed": frozenset({
        "image", "cause", "reason", "message", "revision", "pods", "rollback_image", "last_good_revision",
        "next_action", "why", "attempts", "protected", "intent", "incident_started_at", "rejected"}),
    "out_of_memory": frozenset({
        "memory", "pods", "worst_pod", "container", "restarts", "exit_code", "reason", "message", "limit_mib",
        "request_mib", "main_container", "proposed_memory_mib", "device_memory_mib", "reported", "need_on_device_mib",
        "fits_one_device", "gpus_per_replica", "tensor_parallel", "largest_node_gpus", "proposed_gpus_per_replica"}),
    "not_ready": frozenset({
        "reading", "pod", "probe", "probe_action", "probe_path", "probe_port", "budget_seconds", "container_ports",
        "ready_replicas", "replicas", "restarts", "running_seconds", "failures", "proposal"}),
    "config_missing": frozenset({"missing", "namespace", "pods", "reason", "message"}),
    "volume_pending": frozenset({
        "claim", "namespace", "storage_class", "problem", "requested", "reason", "message", "pending_minutes", "pods"}),
    "quota_exceeded": frozenset({"quota", "namespace", "object", "requested", "used", "limited", "last_refused_at", "message"}),
    "service_without_endpoints": frozenset({
        "service", "namespace", "problem", "selector", "near_misses", "ports", "workloads", "pods"}),
}


# Finding kinds whose detector reads only the subject workload's own facts (the workload, its pods, its
# autoscaler, its intent, its history): detection on a snapshot narrowed to the subject
# (`ReadsWorkloads.snapshot_of`) finds them exactly as on the whole snapshot.
WORKLOAD_KINDS = frozenset({"idle_gpu", "wake_requested", "rollout_failed", "crashloop"})


def workload_subject(finding: Finding | None) -> WorkloadRef | None:
    """The workload a finding of a WORKLOAD_KINDS kind is about, else None (it needs the whole cluster)."""
    if finding is None or finding.kind not in WORKLOAD_KINDS or "/" not in finding.subject:
        return None
    try:
        return WorkloadRef.parse(finding.subject)
    except ValueError:
        return None


def detect(snapshot: Snapshot, *, intents: Intents, now: datetime,
           history: History | None = None, leased: Collection[str] = ()) -> list[Finding]:
    """Every finding in `snapshot` under `intents` at `now`, sorted by kind then subject.

    `history` maps a finding id to what the caller remembers (`Attempts` or a
    dict with `attempts` and `last_action_at`); it only shapes the retry
    details of rollout_failed and crashloop findings (cut to the current
    incident), and the idle window of a workload woken soon after it was slept.
    `history` also carries what runs for node_unhealthy recorded, so a node cordoned for a hardware
    fault is not taken for a forgotten maintenance once its events have aged out (`node_awaits_repair`).
    `leased` names the workloads (NS/NAME) a time-boxed wake keeps up: never idle.
    """
    intents = as_book(intents).for_one_pass()  # each workload's intent is resolved once for every detector
    idle = idle_gpu(snapshot, intents, now, history, leased)
    found = [
        *idle,
        *wake_requested(snapshot, intents, now),
        *rollout_failed(snapshot, intents, now, history),
        *drift(snapshot, intents, now),
        *unschedulable_gpu(snapshot, idle, now),
        *crashloop(snapshot, intents, now, history),
        *topology_mismatch(snapshot, intents, now),
        *jobs_waiting(snapshot, idle, now),
        *spec_conflict(snapshot, intents, now),
        *node_unhealthy(snapshot, now),
        *node_left_cordoned(snapshot, now, history),
        *autoscaler_stuck(snapshot, now),
        *node_needs_drain(snapshot, now, history),
        *image_pull_failed(snapshot, intents, now, history),
        *out_of_memory(snapshot, now, history),
        *not_ready(snapshot, now),
        *config_missing(snapshot, now),
        *volume_pending(snapshot, now),
        *quota_exceeded(snapshot, now),
        *service_without_endpoints(snapshot, now),
    ]
    order = {kind: i for i, kind in enumerate(FINDING_KINDS)}
    return sorted(found, key=lambda f: (order[f.kind], f.subject))


__all__ = [
    "DETAIL_KEYS", "WORKLOAD_KINDS", "Attempts", "CronError", "History", "detect", "parse_cron",
    "window_open", "workload_subject",
]
