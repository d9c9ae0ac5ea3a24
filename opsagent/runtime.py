"""Wiring: open the cluster, policy, audit store, approval queue and gate from command-line options.

Every entry point (daemon, chat, ask, approvals, wake proxy, demo, eval) needs
the same set of parts built the same way; this module is the one place that
builds them. It decides nothing and holds no state beyond the parts it opens.

Cluster specs: `sim:NAME` (a builtin scenario such as `demo`), `sim:PATH`
(a scenario file), `kube` (current kubeconfig context or in-cluster config),
or `kube:CONTEXT`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from opsagent.approvals import ApprovalQueue
from opsagent.audit import (
    AuditError,
    AuditStore,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseMissing,
    NotAnOpsagentDatabase,
)
from opsagent.clock import Clock, RealClock
from opsagent.cluster.port import Cluster, ClusterError, ClusterReader
from opsagent.cluster.utilwatch import UtilisationWatch, WatchedWriter
from opsagent.detect import Attempts, detect
from opsagent.gate import Gate
from opsagent.leases import LeaseService
from opsagent.model import Finding, Snapshot, Workload, WorkloadRef
from opsagent.policy import Policy, PolicyError, load_policy
from opsagent.yamlfile import FileError

if TYPE_CHECKING:
    from opsagent.agent import Agent, AgentConfig
    from opsagent.metrics import PrometheusClient

HISTORY_WINDOW = timedelta(days=2)
NODE_MEMORY = timedelta(days=7)   # how far back why a node was cordoned is remembered (see `action_history`)


class RuntimeError_(Exception):
    """A part could not be opened; `hint` says how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class Runtime:
    cluster: ClusterReader  # a read-only view: only the gate holds the writer
    clock: Clock
    policy: Policy
    audit: AuditStore
    approvals: ApprovalQueue
    gate: Gate
    sim: object | None = None  # the SimCluster when cluster is simulated

    def observe(self) -> Snapshot:
        """The cluster now; its notes also say which annotations the policy reports and does not obey."""
        snapshot = self.cluster.snapshot()
        extra = self.policy.annotation_notes(snapshot)
        return snapshot.model_copy(update={"notes": snapshot.notes + extra}) if extra else snapshot

    def observe_of(self, refs: Sequence[WorkloadRef]) -> Snapshot:
        """`observe()` narrowed to the workloads `refs` when the cluster can show them alone (`ReadsWorkloads`)."""
        narrow = getattr(self.cluster, "snapshot_of", None)
        if narrow is None:
            return self.observe()
        snapshot = narrow(refs)
        extra = self.policy.annotation_notes(snapshot)
        return snapshot.model_copy(update={"notes": snapshot.notes + extra}) if extra else snapshot

    def findings(self, snapshot: Snapshot | None = None) -> list[Finding]:
        """Findings now, with history: how often each was already acted on (for bounded retries)."""
        snap = snapshot or self.observe()
        now = self.clock.now()
        history = action_history(self, since=now - HISTORY_WINDOW, nodes_since=now - NODE_MEMORY)
        return detect(snap, intents=self.policy.intent_book, now=now, history=history, leased=self.leases().held(snap))

    def leases(self) -> LeaseService:
        """Time-boxed wakes over this runtime's audit log and gate."""
        return LeaseService(audit=self.audit, gate=self.gate, policy=self.policy, cluster=self.cluster, clock=self.clock)


def open_cluster(spec: str, *, prometheus: str | None = None, request_rate_query: str | None = None,
                 seed: int | None = None, watch: bool = False) -> tuple[Cluster, Clock, object | None]:
    """Build a cluster from a spec; returns (cluster, clock, sim-or-None).

    `prometheus` (a URL) and `request_rate_query` (a preset name such as
    `ingress-nginx` or `keda-http`, or raw PromQL) feed the kube adapter's
    metrics; the simulator has its own. `watch` (for a long-running process)
    makes a kube adapter read one watched cache (list once, then watch) for
    every snapshot and lookup of the process; the simulator ignores it.
    """
    kind, _, arg = spec.partition(":")
    if kind == "sim":
        from opsagent.cluster.sim import ScenarioError, SimCluster, builtin_scenario, load_scenario

        name = arg or "demo"
        try:
            scenario = load_scenario(name) if Path(name).suffix in (".yaml", ".yml") else builtin_scenario(name)
        except (ScenarioError, FileError, KeyError, ValueError) as exc:
            raise RuntimeError_(f"cannot load scenario {name!r}: {exc}", hint="use sim:demo or sim:path/to/scenario.yaml") from None
        sim = SimCluster(scenario, seed=seed)
        return sim, sim.clock, sim
    if kind == "kube":
        from opsagent.cluster.kube import KubeCluster

        metrics = open_prometheus(prometheus, request_rate_query)
        try:
            cluster = KubeCluster.from_config(context=arg or None, prometheus=metrics, clock=RealClock(), watch=watch)
        except Exception as exc:  # config loading raises several library types; report and stop
            raise RuntimeError_(
                f"cannot reach the cluster: {exc}",
                hint="check KUBECONFIG / --cluster kube:CONTEXT, or run `opsagent doctor`",
            ) from None
        return cluster, RealClock(), None
    raise RuntimeError_(f"--cluster {spec!r} is not a cluster", hint="use sim:demo, sim:PATH.yaml, kube or kube:CONTEXT")


def open_prometheus(url: str | None, request_rate_query: str | None) -> "PrometheusClient | None":
    """The Prometheus client for the kube adapter, or None without a URL."""
    from opsagent.metrics import REQUEST_RATE_PRESETS, PrometheusClient
    from opsagent.metrics import request_rate_query as resolve

    try:
        query = resolve(request_rate_query)
    except ValueError as exc:
        raise RuntimeError_(f"--request-rate-query: {exc}",
                            hint=f"use {' or '.join(REQUEST_RATE_PRESETS)}, or a PromQL query (see docs/kubernetes.md)") from None
    if not url:
        if query is not None:
            raise RuntimeError_("--request-rate-query needs --prometheus (the server to run it on)",
                                hint="add --prometheus http://prometheus:9090 (or OPSAGENT_PROMETHEUS)")
        return None
    return PrometheusClient(url, request_rate_query=query)


def open_policy(directory: Path) -> Policy:
    from tools.registry import risk_table

    try:
        return load_policy(directory, tool_risks=risk_table())
    except PolicyError as exc:
        raise RuntimeError_(f"cannot load the policy from {directory}:\n{exc}", hint=f"check the files with: opsagent policy lint {directory}") from None
    except FileNotFoundError:
        raise RuntimeError_(f"cannot load the policy from {directory}: no such directory", hint="pass --policies DIR (the repository ships policies/)") from None


def open_audit(db: Path) -> AuditStore:
    """The audit store on `db`: a new file is created there (never its directory); a file that is
    not an opsagent database, is damaged or stays locked is refused with a message naming it."""
    try:
        return AuditStore(db)
    except AuditError as exc:
        raise RuntimeError_(str(exc), hint=database_hint(exc)) from None


def database_hint(exc: AuditError) -> str | None:
    """What to do about a database that cannot be used, for the person who named it."""
    if isinstance(exc, DatabaseLocked):
        return "another opsagent process is writing; wait for it or stop it"
    if isinstance(exc, DatabaseMissing):
        return "point --db (or OPSAGENT_DB) at the database the daemon writes, or at a new file in an existing directory"
    if isinstance(exc, NotAnOpsagentDatabase):
        return ("opsagent opens only its own databases; point --db (or OPSAGENT_DB) at one, "
                "or at a path that does not exist yet to start a new one")
    if isinstance(exc, DatabaseCorrupt):
        return "restore the file from a backup; `opsagent audit verify` checks a database"
    return None


def idle_threshold(policy: Policy) -> Callable[[Workload], float | None]:
    """The GPU-utilisation idle threshold of a workload's intent (None: its intent has none)."""
    def threshold(workload: Workload) -> float | None:
        intent = policy.intent_for(workload)
        return intent.idle.gpu_util_below if intent is not None and intent.idle is not None else None
    return threshold


def open_runtime(
    *,
    cluster: str = "sim:demo",
    policies: Path = Path("policies"),
    db: Path = Path("opsagent.db"),
    prometheus: str | None = None,
    request_rate_query: str | None = None,
    seed: int | None = None,
    proposals_dir: Path | None = None,
    clock: Clock | None = None,
    cluster_obj: Cluster | None = None,
    findings: Callable[[], list[Finding]] | None = None,
    watch: bool = False,
) -> Runtime:
    """Open every part. `cluster_obj` (with `clock`) reuses an existing cluster, e.g. a running simulator, or
    another runtime's gate cluster (its reads, utilisation memory and watched cache are shared, not copied).
    `watch`: see `open_cluster` (long-running processes pass it)."""
    policy = open_policy(policies)
    if cluster_obj is not None:
        the_cluster, the_clock, sim = cluster_obj, clock or getattr(cluster_obj, "clock", RealClock()), None
        if hasattr(cluster_obj, "advance") and hasattr(cluster_obj, "record_request"):
            sim = cluster_obj
    else:
        the_cluster, the_clock, sim = open_cluster(cluster, prometheus=prometheus, request_rate_query=request_rate_query,
                                                   seed=seed, watch=watch)
    utilisation = (the_cluster.watch if isinstance(the_cluster, WatchedWriter)
                   else UtilisationWatch(the_cluster, idle_threshold(policy)))
    audit = open_audit(db)
    if sim is not None and audit.clock_kind() == "real":
        audit.close()
        # On the simulator anyone may say who they are (--as, for demos); a real cluster's approvals must not
        # be decided there.
        raise RuntimeError_(f"--db {db} holds the records of a real cluster; the simulator does not open it",
                            hint="give the simulator its own --db file")
    if sim is None and audit.clock_kind() == "virtual":
        audit.close()
        # A database's clock is fixed when it is first written: simulated times would make real approvals look
        # expired or not yet begun, and `--since` would mean nothing.
        raise RuntimeError_(f"--db {db} holds the records of a simulated cluster (virtual clock); a real cluster does not open it",
                            hint="give the real cluster its own --db file, or drop --db to use the default")
    approvals = ApprovalQueue(
        audit,
        clock=the_clock,
        is_member=policy.actor_matches,
        default_ttl_seconds=int(policy.approval_ttl_seconds),
    )
    runtime = Runtime(cluster=utilisation, clock=the_clock, policy=policy, audit=audit, approvals=approvals, gate=None, sim=sim)  # type: ignore[arg-type]
    runtime.gate = Gate(
        policy=policy,
        cluster=utilisation.writer(),
        clock=the_clock,
        recorder=audit,
        approvals=approvals,
        findings=findings or (lambda: runtime.findings()),
        wait=getattr(sim, "advance", None),
        proposals_dir=proposals_dir or db.parent / "proposals",
    )
    approvals.current_approvers = runtime.gate.approvers_now  # approving and executing check the same people
    return runtime


def action_history(runtime: Runtime, *, since: datetime, nodes_since: datetime | None = None) -> dict[str, Attempts]:
    """finding id -> what the audit log remembers of it since `since`.

    Each ok write made for it (tool and time), when a run last saw it resolved,
    and the calls people rejected for it. The detectors cut this to the current
    incident (`opsagent.detect.incident`) for bounded retries with backoff;
    without it every retry looks like the first.

    From `nodes_since` (further back) come the node cordons and uncordons that
    went through and the runs started for node_unhealthy findings, with the
    details they recorded (`seen`): why a node was cordoned, after the events
    that said so have aged out (see `opsagent.detect.nodes`).
    """
    from opsagent.detect.common import Acted, Rejection, Seen
    from tools import get_tool

    acted: dict[str, list[Acted]] = {}
    resolved: dict[str, datetime] = {}
    rejected: dict[str, list[Rejection]] = {}
    seen: dict[str, list[Seen]] = {}
    records = runtime.audit.finding_history(since=since)   # only the window, through an index
    if nodes_since is not None:
        ids = {r.id for r in records}
        records += [r for r in runtime.audit.node_history(since=nodes_since) if r.id not in ids]
    for record in records:
        if not record.finding_id:
            continue
        if record.kind == "run" and (record.idempotency_key or "").endswith(":run:started"):
            details = (record.data or {}).get("details")
            seen.setdefault(record.finding_id, []).append(
                Seen(at=record.time, details=details if isinstance(details, dict) else {}))
        elif record.kind == "result":
            tool = get_tool(record.tool or "")
            if tool is not None and tool.risk != "read":
                acted.setdefault(record.finding_id, []).append(Acted(tool=tool.name, at=record.time))
        elif record.kind == "run":
            resolved[record.finding_id] = max(record.time, resolved.get(record.finding_id, record.time))
        elif record.kind == "approval" and record.tool:
            reason = (record.summary or "").split(": ", 1)[-1]
            rejected.setdefault(record.finding_id, []).append(
                Rejection(tool=record.tool, args=record.args or {}, by=record.actor, reason=reason, at=record.time))
    out = {}
    for fid in set(acted) | set(resolved) | set(rejected) | set(seen):
        done = sorted(acted.get(fid, []), key=lambda a: a.at)
        out[fid] = Attempts(attempts=len(done), last_action_at=done[-1].at if done else None, actions=tuple(done),
                            resolved_at=resolved.get(fid), rejected=tuple(rejected.get(fid, ())),
                            seen=tuple(sorted(seen.get(fid, []), key=lambda s: s.at)))
    return out


def workloads_present(cluster: ClusterReader, keys: Collection[str]) -> set[str] | None:
    """Which of the NAMESPACE/NAME `keys` name a workload the cluster has, looking at those workloads only when the
    cluster can (`ReadsWorkloads`); None when the cluster cannot be read (the caller then cannot tell)."""
    narrow = getattr(cluster, "snapshot_of", None)
    try:
        snapshot = narrow([WorkloadRef.parse(key) for key in keys]) if narrow is not None else cluster.snapshot()
    except (ClusterError, ValueError):
        return None
    return {key for key in keys if snapshot.workload(key) is not None}


def make_detect(runtime: Runtime) -> Callable[[Snapshot], list[Finding]]:
    """The detection function agents use: `runtime.findings` for a given snapshot."""
    return runtime.findings


def build_agent(runtime: Runtime, *, db: Path, playbooks: Path | None, model: str | None,
                base_url: str | None = None, observe: Callable[[], Snapshot] | None = None,
                observe_of: Callable[[Sequence[WorkloadRef]], Snapshot] | None = None,
                detect_fn: Callable[[Snapshot], list[Finding]] | None = None,
                config: "AgentConfig | None" = None, planner: Any = None) -> "Agent":
    """The agent every entry point runs: LLM planner when `model` is set (offline fallback built in), else offline.

    Checkpoints go to the same SQLite file as the audit log (`db`). On the
    simulator, waiting for a change to show advances simulated time.
    """
    from opsagent.agent import Agent, AgentConfig

    loaded = None
    if playbooks is not None:
        from opsagent.playbooks import load_playbooks

        loaded = load_playbooks(Path(playbooks))
    if config is None:
        config = AgentConfig.from_env(model=model, base_url=base_url)
    settle = None
    if runtime.sim is not None:
        sim, seconds = runtime.sim, config.verify_interval_seconds
        settle = lambda: sim.advance(seconds)  # type: ignore[attr-defined]  # noqa: E731
    return Agent(gate=runtime.gate, policy=runtime.policy, playbooks=loaded, observe=observe or runtime.observe,
                 detect_fn=detect_fn or make_detect(runtime), planner=planner or ("llm" if model else "offline"),
                 checkpoint_path=db, recorder=runtime.audit, clock=runtime.clock, config=config,
                 approvals=runtime.approvals, settle=settle, observe_of=observe_of or runtime.observe_of)
