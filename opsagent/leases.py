"""Time-boxed wakes: "wake inference/llm for 2h".

A lease keeps one workload up, whatever its idle rule says, until it expires;
then the daemon puts the workload back to sleep through the gate as actor
`daemon` on channel `lease` (only this module builds calls on that channel,
so a policy rule can allow this sleep without allowing a planner's). The policy caps a lease per workload (`max_wake` on its intent,
counted from the lease's start, extensions included); a workload whose intent
sets no `max_wake` cannot be leased.

There is no lease table: every change is a chained audit record (kind `lease`,
`data.event` one of `EVENTS`), and the state of every lease is folded from
those records (`replay`), so it survives restarts and `opsagent audit verify`
covers it. A person who scales a leased workload by hand (a `scale_workload`
or `sleep_workload` that ran through the gate, by anyone but the daemon) ends the lease: the fold
sees that result, and the daemon's next cycle records the lease as `ended`.

Who may do what, the same on every surface (CLI, chat, Slack, MCP):

- start: the wake runs through the gate as the person; a wake the policy
  would hold for an approval or a confirmation is refused first (a lease
  cannot wait for a yes, and no approval is filed for it);
- extend: the policy must let the person wake the workload now;
- cancel: the person who started the lease may always end it; anyone else
  only if the policy lets them put the workload to sleep now (a cancelled
  lease hands the workload back to its idle rule).

Every record is checked and appended in one write transaction of the audit
database (`AuditStore.transaction`): the leases are folded from the log inside
it, so two processes that start, extend or cancel the same workload's lease
at once are serialised by SQLite, and neither can slip a second lease, an
extension past `max_wake` or a record on a lease that just ended between the
other's check and its append. The daemon closes a due lease the same way
before it asks for the sleep, so a lease extended meanwhile is not slept and a
closed one takes no extension.

An extension never ends a lease sooner (that would bring the daemon's sleep
forward). Whatever the records say, a lease holds a workload up for at most
the `max_wake` the policy in force gives it, counted from its start (a lowered
`max_wake` shortens open leases), and a lease recorded as starting later than
now holds nothing: the records say what happened, the policy what may.

`replay` and `due` are pure; `LeaseService` does the I/O (audit store, gate).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from opsagent.audit import AuditStore
from opsagent.audit.records import AuditRecord, iso
from opsagent.clock import format_duration
from opsagent.model import AuditEntry, ToolCall, ToolResult, WorkloadRef
from opsagent.model.actions import Channel, Decision

KIND = "lease"
EVENTS = ("started", "extended", "cancelled", "expired", "ended")
LeaseState = Literal["active", "cancelled", "expired", "ended"]
HAND_SCALE_TOOLS = ("scale_workload", "sleep_workload")   # a person sizing the workload by hand, to zero included


class Lease(BaseModel):
    """One lease as the audit log tells it."""

    model_config = ConfigDict(frozen=True)

    id: str
    workload: str
    actor: str
    started_at: datetime
    until: datetime
    state: LeaseState = "active"
    ended_by: str | None = None
    ended_at: datetime | None = None
    scaled_by_hand: int | None = None   # audit id of a person's scale_workload or sleep_workload that ends it (not yet recorded)

    def left(self, now: datetime) -> timedelta:
        return max(self.until - now, timedelta(0))


class LeaseRefused(Exception):
    """A lease that may not be started, extended or cancelled; the message says why in one line."""


class Recorder(Protocol):
    def record(self, entry: AuditEntry) -> int: ...


class Submitter(Protocol):
    def submit(self, call: ToolCall, *, run_id: str | None = None, confirmation: int | None = None) -> ToolResult: ...

    def preview(self, call: ToolCall) -> Decision: ...


class Cap(NamedTuple):
    """A workload's `max_wake`, the intent that sets it and where that is written ("file:line")."""

    span: timedelta | None
    intent: str | None
    where: str | None

    def names(self) -> str:
        return f"max_wake {_hours(self.span) if self.span else '(none)'} of intent {self.intent}" + \
            (f", set at {self.where}" if self.where else "")


def _parse(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def replay(records: Iterable[AuditRecord]) -> dict[str, Lease]:
    """lease id -> its state, from lease records and scale_workload results in chain (id) order."""
    leases: dict[str, Lease] = {}
    for record in records:
        data = record.data or {}
        if record.kind == "result" and record.tool in HAND_SCALE_TOOLS and record.outcome == "ok" \
                and record.actor != "daemon" and not record.dry_run:
            subject = f"{(record.args or {}).get('namespace')}/{(record.args or {}).get('name')}"
            for lease in list(leases.values()):
                if lease.workload == subject and lease.state == "active" and lease.scaled_by_hand is None:
                    leases[lease.id] = lease.model_copy(update={"scaled_by_hand": record.id})
            continue
        if record.kind != KIND or data.get("event") not in EVENTS or not isinstance(data.get("lease"), str):
            continue
        lease_id, event = data["lease"], data["event"]
        until = _parse(data.get("until"))
        if event == "started" and lease_id not in leases and until is not None:
            leases[lease_id] = Lease(id=lease_id, workload=str(data.get("workload")), actor=record.actor,
                                     started_at=record.time, until=until)
            continue
        found = leases.get(lease_id)
        if found is None or found.state != "active":
            continue
        if event == "extended" and until is not None:
            leases[lease_id] = found.model_copy(update={"until": until})
        elif event in ("cancelled", "expired", "ended"):
            by_hand = data.get("scaled_by_hand")
            leases[lease_id] = found.model_copy(update={
                "state": event, "ended_by": record.actor, "ended_at": record.time,
                "scaled_by_hand": by_hand if isinstance(by_hand, int) else found.scaled_by_hand})
    return leases


def read_leases(audit: AuditStore) -> dict[str, Lease]:
    """Every lease the audit log records (the lease records and people's scale_workload results, folded)."""
    rows = audit.list(kind=KIND, limit=None)
    open_since = [lease.started_at for lease in replay(rows[::-1]).values() if lease.state == "active"]
    if open_since:  # only a scale made while a lease is open can end it
        for tool in HAND_SCALE_TOOLS:
            rows += audit.list(kind="result", tool=tool, since=min(open_since), limit=None)
    return replay(sorted(rows, key=lambda r: r.id))


def active_for(leases: dict[str, Lease], workload: str) -> Lease | None:
    return next((lease for lease in leases.values() if lease.workload == workload and lease.state == "active"), None)


def held(leases: dict[str, Lease], now: datetime) -> frozenset[str]:
    """Workloads an active, unexpired lease keeps up (what the idle detector skips)."""
    return frozenset(lease.workload for lease in leases.values()
                     if lease.state == "active" and lease.scaled_by_hand is None and lease.until > now
                     and lease.started_at <= now)


def bounded(lease: Lease, cap: timedelta | None) -> Lease:
    """The lease as the policy in force allows it: ending at most `cap` after its start (at its start without one)."""
    if lease.state != "active":
        return lease
    limit = lease.started_at + cap if cap is not None else lease.started_at
    return lease.model_copy(update={"until": limit}) if lease.until > limit else lease


def due(leases: dict[str, Lease], now: datetime) -> list[Lease]:
    """Active leases the daemon must close now: expired ones, and ones a person scaled by hand."""
    return sorted((lease for lease in leases.values() if lease.state == "active"
                   and (lease.scaled_by_hand is not None or lease.until <= now)), key=lambda lease: lease.id)


def check_span(span: timedelta, workload: str) -> None:
    """Refuse a lease length that is not a positive span (zero or negative)."""
    if span <= timedelta(0):
        raise LeaseRefused(f"{workload}: a time-boxed wake must be longer than zero (got {format_duration(span)})")


def check_cap(from_start: timedelta, cap: Cap, workload: str) -> None:
    """Refuse a lease that would run past the policy's `max_wake`, `from_start` counted from the lease's start."""
    if cap.span is None:
        raise LeaseRefused(f"{workload}: its intent {cap.intent or '(none)'} sets no max_wake, so it cannot be woken "
                           "for a fixed time")
    if from_start > cap.span:
        raise LeaseRefused(f"{workload}: {_hours(from_start)} from the lease's start is past {cap.names()}")


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def line(lease: Lease) -> str:
    """One line per lease, for people."""
    end = f"until {lease.until:%Y-%m-%d %H:%M} UTC" if lease.state == "active" else \
        f"{lease.state} by {lease.ended_by}" + (f" at {lease.ended_at:%Y-%m-%d %H:%M} UTC" if lease.ended_at else "")
    return f"{lease.workload}: {lease.state}, woken by {lease.actor} at {lease.started_at:%Y-%m-%d %H:%M} UTC, {end}"


def newest_first(leases: dict[str, Lease]) -> list[Lease]:
    return sorted(leases.values(), key=lambda lease: (lease.started_at, lease.id), reverse=True)


class LeaseService:
    """Start, extend, cancel and list leases; close the ones that are due (the daemon's part)."""

    def __init__(self, *, audit: AuditStore, gate: Submitter, policy: Any, cluster: Any, clock: Any) -> None:
        self.audit, self.gate, self.policy, self.cluster, self.clock = audit, gate, policy, cluster, clock

    @classmethod
    def over(cls, gate: Any) -> "LeaseService":
        """Leases over a gate's own audit log, policy, cluster and clock."""
        return cls(audit=gate.recorder, gate=gate, policy=gate.policy, cluster=gate.reader, clock=gate.clock)

    def leases(self, snapshot: Any = None) -> dict[str, Lease]:
        """Every lease, each active one cut to the `max_wake` the policy in force gives its workload (read from
        `snapshot`, or from the cluster when there is an active lease and no snapshot)."""
        leases = read_leases(self.audit)
        if not any(lease.state == "active" for lease in leases.values()):
            return leases
        snapshot = snapshot if snapshot is not None else self.cluster.snapshot()

        def cap(workload: str) -> timedelta | None:
            try:
                found = snapshot.workload(WorkloadRef.parse(workload))
            except ValueError:   # not a workload name: no intent, no time
                found = None
            intent = self.policy.intent_for(found) if found is not None else None
            return intent.max_wake if intent else None
        return {key: bounded(lease, cap(lease.workload)) for key, lease in leases.items()}

    def held(self, snapshot: Any = None) -> frozenset[str]:
        return held(self.leases(snapshot), self.clock.now())

    def _cap(self, ref: WorkloadRef) -> Cap:
        workload = self.cluster.snapshot().workload(ref)
        if workload is None:
            raise LeaseRefused(f"{ref.namespace}/{ref.name}: no such workload")
        resolved = self.policy.resolve(workload)
        intent = resolved.intent
        if intent is None:
            return Cap(None, None, None)
        where = next((source.removesuffix(f" (intent {intent.name})") for bound, source in resolved.sources
                      if bound.startswith("max_wake ")), None)
        return Cap(intent.max_wake, intent.name, where)

    def _authority(self, tool: str, ref: WorkloadRef, *, actor: str, actor_groups: tuple[str, ...],
                   channel: Channel) -> Decision:
        """What the policy in force says to `actor` calling `tool` on the workload now (nothing runs or is recorded)."""
        return self.gate.preview(ToolCall(tool=tool, args={"namespace": ref.namespace, "name": ref.name}, actor=actor,
                                          actor_groups=actor_groups, channel=channel))

    def _require(self, tool: str, ref: WorkloadRef, what: str, *, actor: str, actor_groups: tuple[str, ...],
                 channel: Channel) -> None:
        decision = self._authority(tool, ref, actor=actor, actor_groups=actor_groups, channel=channel)
        if decision.effect != "allow" or decision.confirm:   # outright only: a lease cannot wait for a yes
            raise LeaseRefused(f"{ref.namespace}/{ref.name}: {what} needs the policy to let {actor} call {tool} on it "
                               f"now, and rule {decision.rule.file}:{decision.rule.name} says {decision.effect}: "
                               f"{decision.reason}")

    def _entry(self, lease_id: str, workload: str, event: str, *, actor: str, channel: Channel, until: datetime,
               summary: str, extra: dict[str, Any] | None = None, run_id: str | None = None) -> AuditEntry:
        namespace, name = workload.split("/", 1)
        key = f"lease:{lease_id}:{event}" + (f":{iso(until)}" if event == "extended" else "")
        return AuditEntry(
            time=self.clock.now(), kind="lease", actor=actor, channel=channel, args={"namespace": namespace, "name": name},
            summary=summary, idempotency_key=key, run_id=run_id,
            data={"event": event, "lease": lease_id, "workload": workload, "until": iso(until), **(extra or {})})

    def _append_checked(self, decide: Callable[[dict[str, Lease]], AuditEntry]) -> Lease:
        """Fold the leases and append what `decide` makes of them in one write transaction (see the module
        docstring): no other writer can come between the check and the record. `decide` raises LeaseRefused
        to write nothing. Returns the lease as the log tells it after the record."""
        with self.audit.transaction() as conn:
            entry = decide(self.leases())   # read on the transaction's own connection: the state it commits on
            self.audit.append_in_transaction(conn, entry)
        return self.leases()[str((entry.data or {})["lease"])]

    def start(self, ref: WorkloadRef, span: timedelta, *, actor: str, channel: Channel = "cli",
              actor_groups: tuple[str, ...] = (), run_id: str | None = None) -> tuple[Lease, ToolResult]:
        """Wake the workload through the gate as `actor`, then record the lease (only if the wake ran)."""
        workload = f"{ref.namespace}/{ref.name}"
        check_span(span, workload)
        if active_for(self.leases(), workload) is not None:
            raise LeaseRefused(f"{workload} already has an active lease; extend or cancel it")
        cap = self._cap(ref)
        check_cap(span, cap, workload)
        decision = self._authority("wake_workload", ref, actor=actor, actor_groups=actor_groups, channel=channel)
        if decision.effect == "require_approval" or (decision.effect == "allow" and decision.confirm):
            held_for = "an approval" if decision.effect == "require_approval" else "your confirmation"
            raise LeaseRefused(f"{workload}: rule {decision.rule.file}:{decision.rule.name} holds this wake for "
                               f"{held_for}, and a time-boxed wake cannot wait for a yes; nothing was run or filed")
        result = self.gate.submit(ToolCall(tool="wake_workload", args={"namespace": ref.namespace, "name": ref.name},
                                           actor=actor, actor_groups=actor_groups, channel=channel), run_id=run_id)
        if result.status != "ok":
            raise LeaseRefused(f"{workload}: the wake did not run ({result.status}): {result.message}")
        now = self.clock.now()

        def decide(leases: dict[str, Lease]) -> AuditEntry:
            other = active_for(leases, workload)
            if other is not None:
                raise LeaseRefused(f"{workload}: {other.actor} started a lease on it meanwhile ({other.id}); your "
                                   f"wake ran (audit {result.audit_id}) but keeps no lease: extend theirs")
            lease_id, n = f"{workload}@{iso(now)}", 1
            while lease_id in leases:   # a lease of the same second, already ended
                n += 1
                lease_id = f"{workload}@{iso(now)}#{n}"
            return self._entry(lease_id, workload, "started", actor=actor, channel=channel, until=now + span, run_id=run_id,
                               summary=f"{workload} kept up until {iso(now + span)} by {actor}",
                               extra={"max_wake_seconds": cap.span.total_seconds() if cap.span else None,
                                      "wake_audit_id": result.audit_id})
        return self._append_checked(decide), result

    def extend(self, ref: WorkloadRef, span: timedelta, *, actor: str, channel: Channel = "cli",
               actor_groups: tuple[str, ...] = (), run_id: str | None = None) -> Lease:
        """Push the lease's end `span` past now; refused past the cap counted from its start."""
        workload = f"{ref.namespace}/{ref.name}"
        check_span(span, workload)
        self._require("wake_workload", ref, "extending its lease", actor=actor, actor_groups=actor_groups, channel=channel)
        cap = self._cap(ref)

        def decide(leases: dict[str, Lease]) -> AuditEntry:
            lease = active_for(leases, workload)
            if lease is None:
                raise LeaseRefused(f"{workload} has no active lease to extend")
            now = self.clock.now()
            if now + span < lease.until:   # it would bring the daemon's sleep forward
                raise LeaseRefused(f"{workload}: its lease already runs until {iso(lease.until)}; an extension "
                                   "cannot end it sooner (cancel it instead)")
            check_cap(now - lease.started_at + span, cap, workload)
            return self._entry(lease.id, workload, "extended", actor=actor, channel=channel, until=now + span,
                               run_id=run_id, summary=f"{workload} lease extended to {iso(now + span)} by {actor}")
        return self._append_checked(decide)

    def cancel(self, ref: WorkloadRef, *, actor: str, channel: Channel = "cli", actor_groups: tuple[str, ...] = (),
               run_id: str | None = None) -> Lease:
        """End the lease now; the workload stays up and its idle rule applies again. Someone else's lease only
        if the policy lets `actor` put the workload to sleep."""
        workload = f"{ref.namespace}/{ref.name}"
        seen = active_for(self.leases(), workload)
        if seen is not None and seen.actor != actor:
            self._require("sleep_workload", ref, f"cancelling {seen.actor}'s lease", actor=actor,
                          actor_groups=actor_groups, channel=channel)

        def decide(leases: dict[str, Lease]) -> AuditEntry:
            lease = active_for(leases, workload)
            if lease is None:
                raise LeaseRefused(f"{workload} has no active lease to cancel")
            if seen is None or lease.id != seen.id:
                raise LeaseRefused(f"{workload}: its lease changed while you asked ({lease.id} now); look again with "
                                   "opsagent get leases")
            return self._entry(lease.id, workload, "cancelled", actor=actor, channel=channel, until=lease.until,
                               run_id=run_id, summary=f"{workload} lease cancelled by {actor}; its idle rule applies again")
        return self._append_checked(decide)

    def close_due(self) -> list[tuple[Lease, ToolResult | None]]:
        """The daemon's part: end the leases that are due, then sleep the expired ones through the gate as `daemon`.

        Each lease is closed first, in one write transaction that checks it is still active and still due: a
        lease extended or cancelled meanwhile is left alone, and once closed no extension can land on it. Only
        then is the sleep asked for (on channel `lease`, under the run id the `expired` record names), so a
        sleep never runs on a lease someone has just extended."""
        out: list[tuple[Lease, ToolResult | None]] = []
        for lease in due(self.leases(), self.clock.now()):
            run_id = f"lease-expiry-{uuid.uuid4().hex[:12]}"

            def decide(leases: dict[str, Lease], seen: Lease = lease, run_id: str = run_id) -> AuditEntry:
                now_due = next((x for x in due(leases, self.clock.now()) if x.id == seen.id), None)
                if now_due is None:
                    raise LeaseRefused(f"{seen.workload}: its lease changed meanwhile; not due any more")
                if now_due.scaled_by_hand is not None:
                    return self._entry(now_due.id, now_due.workload, "ended", actor="daemon", channel="daemon",
                                       until=now_due.until, extra={"scaled_by_hand": now_due.scaled_by_hand},
                                       summary=f"{now_due.workload} lease ended: a person scaled it by hand "
                                               f"(audit {now_due.scaled_by_hand})")
                return self._entry(now_due.id, now_due.workload, "expired", actor="daemon", channel="daemon",
                                   until=now_due.until, run_id=run_id, extra={"sleep_run_id": run_id},
                                   summary=f"{now_due.workload} lease expired; the daemon puts it back to sleep "
                                           f"(run {run_id})")
            try:
                closed = self._append_checked(decide)
            except LeaseRefused:
                continue
            if closed.state != "expired":
                out.append((closed, None))
                continue
            namespace, name = closed.workload.split("/", 1)
            result = self.gate.submit(ToolCall(tool="sleep_workload", args={"namespace": namespace, "name": name},
                                               actor="daemon", channel="lease"), run_id=run_id)
            out.append((closed, result))
        return out
