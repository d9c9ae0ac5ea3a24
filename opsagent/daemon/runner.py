"""The daemon process: leader election, the cycle timer, signals, HTTP endpoints, logs.

`Daemon(options).run()` opens the runtime once, then loops: lead or wait as
standby, run one `Reconciler.cycle()`, sleep until the next. On the simulator
each cycle first advances the simulated cluster by the interval (virtual
time); `sim_speed` divides the wall-clock wait (0 = no wait at all).
SIGTERM/SIGINT finish the step in progress and return exit code 0. A bounded
run (`once`, `cycles`) returns 1 when one of its cycles failed.
When the Lease cannot be used at all (RBAC refuses a verb, the namespace is
missing, the API server does not answer), the daemon does not act, logs why
once and keeps asking each interval; /readyz says why. While it leads, the
Lease is renewed on its own thread (leader.py); when a renewal fails, /readyz
says so at once, the cycle in progress stops between findings, and the gate
refuses any further write (`Gate.leading` is the leader's `still_leading`). Each distinct snapshot
note (what the adapter could not see) is logged once as a warning and the
current ones are listed on /readyz.
After each cycle the audit chain's head (row count and newest hash) is
published: on /metrics, in the log, and on a real cluster as the annotation
`opsagent.dev/audit-head` (ROWS:HASH) on the Lease, so a copy of it lives
outside the database for `opsagent audit verify --expect-head`.
It must not decide anything the Reconciler or the gate decides.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Collection
from typing import Any, Callable

from opsagent.audit import AuditError
from opsagent.cluster.port import ClusterError, read_only
from opsagent.daemon.http import HealthServer, Status
from opsagent.daemon.internal import GatePool, InternalApi
from opsagent.gate import Gate
from opsagent.daemon.leader import FileLeader, Leader, LeaseLeader, check_single_name, lock_path_for
from opsagent.daemon.loop import CycleReport, Reconciler
from opsagent.daemon.metrics import Metrics
from opsagent.daemon.signals import StopFlag, install
from opsagent.daemon.wiring import make_observe, make_observe_of
from opsagent.model import Snapshot
from opsagent.runtime import build_agent, make_detect
from opsagent.runtime import Runtime, open_runtime, workloads_present
from opsagent.wake.activity import ActivityLog, activity_path_for

log = logging.getLogger("opsagent.daemon")

DEFAULT_LEASE_NAMESPACE = "opsagent"
DEFAULT_LEASE_NAME = "opsagent-daemon"
HEAD_ANNOTATION = "opsagent.dev/audit-head"


@dataclass
class DaemonOptions:
    cluster: str = "sim:demo"
    policies: Path = Path("policies")
    playbooks: Path | None = Path("playbooks")
    db: Path = Path("opsagent.db")
    model: str | None = None
    base_url: str | None = None
    interval: float = 15.0
    once: bool = False
    cycles: int | None = None
    sim_speed: float = 1.0
    listen: str | None = None
    prometheus: str | None = None
    request_rate_query: str | None = None
    seed: int | None = None
    lease_namespace: str = DEFAULT_LEASE_NAMESPACE
    lease_name: str = DEFAULT_LEASE_NAME
    internal_token: str | None = None   # turns on POST /v1/wake and /v1/activity for a wake proxy in another pod

    def database(self) -> Path:
        """`--db` may name a file or a directory (then `opsagent.db` inside it)."""
        db = Path(self.db)
        return db / "opsagent.db" if db.is_dir() else db


class Daemon:
    def __init__(self, options: DaemonOptions, *, runtime: Runtime | None = None, leader: Leader | None = None,
                 stop: StopFlag | None = None, on_cycle: Callable[[CycleReport], None] | None = None,
                 on_run: Callable | None = None, planner: Any = None) -> None:
        self.options = options
        self.db = options.database()
        self.runtime = runtime or open_runtime(cluster=options.cluster, policies=options.policies, db=self.db,
                                               prometheus=options.prometheus,
                                               request_rate_query=options.request_rate_query, seed=options.seed)
        self.stop = stop or StopFlag()
        self.metrics = Metrics()
        self.status = Status(stuck_after=max(300.0, options.interval * 20))
        # a real cluster: snapshots come from one watched cache (listed once, then followed); /readyz says when stale
        watched = self.runtime.cluster if self.runtime.sim is None else None
        self._start_watching: Callable[[], Any] | None = getattr(watched, "start_watching", None)
        self._stop_watching: Callable[[], Any] | None = getattr(watched, "stop_watching", None)
        if self._start_watching is not None:
            self._start_watching()
            self.status.cache_health = self.runtime.cluster.cache_health
        self.leader = leader or self._default_leader()
        if hasattr(self.leader, "on_lost"):
            self.leader.on_lost = self._leadership_lost
        self._guarded = False   # True while run() loops: then every write needs the leader's still_leading()
        self.on_cycle = on_cycle or _log_cycle
        model = options.model
        if model:
            from opsagent.agent import AgentConfig
            from opsagent.agent.server import server_problem

            problem = server_problem(AgentConfig.from_env(model=model, base_url=options.base_url))
            if problem is not None:
                log.warning("%s; runs will fall back to the offline planner", problem)
        self._notes_logged: set[str] = set()
        self.observe = self._watch_notes(make_observe(self.runtime, db=self.db))
        self.observe_of = make_observe_of(self.runtime, db=self.db)
        self.detect = make_detect(self.runtime)
        self.agent = build_agent(self.runtime, db=self.db, playbooks=options.playbooks, model=model,
                                 base_url=options.base_url, observe=self.observe, observe_of=self.observe_of,
                                 detect_fn=self.detect, planner=planner)  # planner: a Planner object (evals, the demo)
        self.reconciler = Reconciler(self.runtime, self.agent, metrics=self.metrics, observe=self.observe, detect=self.detect,
                                     observe_of=self.observe_of,
                                     on_run=on_run, should_stop=lambda: self.stop.is_set or not self.still_leading())
        self.server: HealthServer | None = None
        self._cycle_lock = threading.Lock()

    def _internal_api(self) -> InternalApi | None:
        """The wake proxy's way in (internal.py): on a real cluster with its own runtime, so a wake never waits for
        a cycle; on the simulator, whose one cluster object is not thread-safe, taking turns with the cycle."""
        if not self.options.internal_token:
            return None
        gate: Gate | GatePool
        lock: AbstractContextManager[Any]
        if self.runtime.sim is not None:
            sim_gate = self.runtime.gate
            gate, lock = sim_gate, self._cycle_lock

            def present(keys: Collection[str]) -> set[str] | None:
                return workloads_present(sim_gate.reader, keys)
        else:
            options, shared = self.options, self.runtime.gate.cluster
            # each pooled gate has its own database connection; all read the daemon's one watched cache
            pool = GatePool(lambda: open_runtime(cluster_obj=shared, clock=self.runtime.clock, policies=options.policies,
                                                 db=self.db).gate,
                            leading=self.still_leading)
            gate, lock = pool, nullcontext()

            def present(keys: Collection[str]) -> set[str] | None:
                return workloads_present(read_only(shared), keys)
        activity = ActivityLog(activity_path_for(self.db), clock=self.runtime.clock)

        def leading() -> bool:
            with self.status.lock:
                chosen = self.status.leader
            return chosen and self.still_leading()

        return InternalApi(token=self.options.internal_token, gate=gate, activity=activity, leading=leading, lock=lock,
                           now=self.runtime.clock.now, present=present)

    def _default_leader(self) -> Leader:
        if self.runtime.sim is None and self.options.cluster.startswith("kube"):
            from opsagent.cluster.kube.lease import KubeLease

            return LeaseLeader(KubeLease.for_cluster(self.runtime.cluster, namespace=self.options.lease_namespace,
                                                      name=self.options.lease_name,
                                                      lease_seconds=max(60, int(self.options.interval * 3))))
        check_single_name(self.db)
        return FileLeader(lock_path_for(self.db))

    # --- the loop -------------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        if install_signals:
            install(self.stop, on_signal=lambda name: log.info("%s received: finishing the current step, then exiting", name))
        if self.options.listen:
            internal = self._internal_api()
            self.server = HealthServer(self.options.listen, status=self.status, metrics=self.metrics,
                                       internal=internal).start()
            log.info("serving /healthz /readyz /metrics%s on http://%s",
                     " and the internal API" if internal else "", self.server.address)
        if self._start_watching is not None:
            self._start_watching()   # idempotent; again after an earlier run() stopped it
        limit = 1 if self.options.once else self.options.cycles
        done, failed, was = 0, 0, None
        gate_leading, self.runtime.gate.leading, self._guarded = self.runtime.gate.leading, self.still_leading, True
        try:
            while not self.stop.is_set and (limit is None or done < limit):
                leading, error = self._try_lead()
                reason = "" if leading else (f"not leading: {error}" if error else
                                             f"standby: another daemon holds the {self.leader.where}")
                self.metrics.set("opsagent_leader", 1 if leading else 0)
                with self.status.lock:
                    self.status.leader = leading
                    self.status.standby_reason = reason
                if (leading, reason) != was:
                    if leading:
                        log.info("leader (%s)", self.leader.where)
                    elif error:
                        log.error("%s; doing nothing until it is fixed (asking again every %ss)", reason, self.options.interval)
                    else:
                        log.info("%s; waiting", reason)
                    was = (leading, reason)
                if leading:
                    if self._one_cycle() is None:
                        failed += 1
                    done += 1
                elif self.options.once:
                    log.warning("not the leader: nothing done")
                    return 3
                if limit is not None and done >= limit:
                    break
                self.stop.wait(self._pause())
        finally:
            self._guarded, self.runtime.gate.leading = False, gate_leading
            self.leader.release()
            self.agent.close()
            if self.server is not None:
                self.server.stop()
            if self._stop_watching is not None:   # cut the open watches now, not when the server ends each one
                self._stop_watching()
        if self.stop.is_set:
            log.info("stopped cleanly after %d cycle(s)", done)
        if limit is not None and failed:  # a bounded run (--once, --cycles) tells whether its cycles worked
            log.error("%d of %d cycle(s) failed", failed, done)
            return 1
        return 0

    def still_leading(self) -> bool:
        """Outside run() (a test driving one cycle, a gate borrowed by a command) there is nothing to lose."""
        if not self._guarded:
            return True
        still = getattr(self.leader, "still_leading", None)
        leading = bool(still()) if callable(still) else True
        if not leading:   # the renewer clears its flag before its callback runs: whoever sees the loss first reports it
            self._leadership_lost(getattr(self.leader, "lost_reason", "") or f"lost the {self.leader.where}")
        return leading

    def _leadership_lost(self, reason: str) -> None:
        """Called on the renewer's thread the moment the Lease is lost (and by still_leading() should it see the
        loss first): /readyz and /metrics say so now. Reported once per loss."""
        with self.status.lock:
            if not self.status.leader:
                return
            self.status.leader = False
            self.status.standby_reason = f"not leading: {reason}"
        self.metrics.set("opsagent_leader", 0)
        log.error("%s; stopping the current cycle's writes", reason)

    def _try_lead(self) -> tuple[bool, str]:
        """(leading, why not when the election itself failed). A failure means: do not act."""
        try:
            return self.leader.try_acquire(), ""
        except ClusterError as exc:
            return False, exc.message

    def _watch_notes(self, observe: Callable[[], Snapshot]) -> Callable[[], Snapshot]:
        """Observe, then log each note not logged before (once) and publish the current notes."""
        def watched() -> Snapshot:
            snapshot = observe()
            for note in snapshot.notes:
                if note not in self._notes_logged:
                    self._notes_logged.add(note)
                    log.warning("cluster view incomplete: %s", note)
            with self.status.lock:
                self.status.notes = tuple(snapshot.notes)
            return snapshot

        return watched

    def _pause(self) -> float:
        if self.runtime.sim is None:
            return self.options.interval
        return 0.0 if self.options.sim_speed <= 0 else self.options.interval / self.options.sim_speed

    def _one_cycle(self) -> CycleReport | None:
        with self.status.lock:
            self.status.cycle_started = time.monotonic()
        try:
            with self._cycle_lock:
                if self.runtime.sim is not None:
                    self.runtime.sim.advance(self.options.interval)  # type: ignore[attr-defined]
                report = self.reconciler.cycle()
        except Exception as exc:  # boundary: one bad cycle is logged and counted; the next one tries again
            log.error("cycle failed: %s: %s", type(exc).__name__, exc)
            log.debug("cycle failure traceback", exc_info=True)
            self.metrics.inc("opsagent_cycles_total", result="error")
            with self.status.lock:
                self.status.cycle_started, self.status.last_ok, self.status.last_error = None, False, f"{type(exc).__name__}: {exc}"
            return None
        self.metrics.inc("opsagent_cycles_total", result="ok")
        with self.status.lock:
            self.status.cycle_started, self.status.last_ok, self.status.last_error = None, True, ""
            self.status.cycles += 1
        self.on_cycle(report)
        self._publish_head()
        return report

    def _publish_head(self) -> None:
        """The audit head on /metrics, in the log, and on the Lease (where there is one)."""
        try:
            head = self.runtime.audit.head()
        except (AuditError, sqlite3.Error) as exc:  # the next cycle publishes again; this one's work is done
            log.warning("could not read the audit head: %s", exc)
            return
        self.metrics.set("opsagent_audit_head_rows", head.rows)
        self.metrics.replace("opsagent_audit_head_info", [({"hash": head.hash}, 1)])
        log.info("audit head: %d rows, hash %s (anchor %s)", head.rows, head.hash, head.anchor)
        publish = getattr(self.leader, "publish", None)
        if callable(publish):
            try:
                publish({HEAD_ANNOTATION: head.anchor})
            except ClusterError as exc:
                log.warning("could not note the audit head on the %s: %s", self.leader.where, exc.message)


def _log_cycle(report: CycleReport) -> None:
    for run in report.runs + report.resumed:
        for action in run.actions:
            log.info("%s: %s %s -> %s %s", run.run_id, action.tool, action.args, action.status, action.message[:160])
    log.info("cycle at %s: %d finding(s), %d run(s), %d resumed, %d waiting, %d expired, %d LLM call(s), %.2fs",
             report.at, len(report.findings), len(report.runs), len(report.resumed), len(report.skipped_waiting),
             len(report.expired), report.llm_calls, report.seconds)
