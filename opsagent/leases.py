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

Authority: the records say what happened, the policy says what may. Starting,
extending and cancelling a lease need a person the policy lets wake the
workload (the lease's own starter may always cancel it); a lease is never
shorter than zero and an extension never ends it sooner. Whatever the records
say, a lease holds a workload up for at most the `max_wake` the policy in
force gives it, counted from its start, and a lease recorded as starting
later than now holds nothing.

`replay` and `due` are pure; `LeaseService` does the I/O (audit store, gate).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from opsagent.audit import AuditStore
from opsagent.audit.records import AuditRecord, iso
from opsagent.model import AuditEntry, ToolCall, ToolResult, WorkloadRef
from opsagent.model.actions import Channel

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

    def preview(self, call: ToolCall) -> Any: ...


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


def check_cap(requested_until: datetime, started_at: datetime, cap: timedelta | None, workload: str,
              intent: str | None) -> None:
    """Refuse a lease that would run past the policy's `max_wake`, counted from its start."""
    if cap is None:
        raise LeaseRefused(f"{workload}: its intent {intent or '(none)'} sets no max_wake, so it cannot be woken "
                           "for a fixed time")
    if requested_until - started_at > cap:
        raise LeaseRefused(f"{workload}: {_hours(requested_until - started_at)} from the lease's start is past "
                           f"max_wake {_hours(cap)} of intent {intent}")


def _positive(span: timedelta, workload: str) -> None:
    if span <= timedelta(0):
        raise LeaseRefused(f"{workload}: a time-boxed wake must last longer than zero, e.g. 2h")


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


class LeaseService:
    """Start, extend, cancel and list leases; close the ones that are due (the daemon's part)."""

    def __init__(self, *, audit: AuditStore, gate: Submitter, policy: Any, cluster: Any, clock: Any) -> None:
        self.audit, self.gate, self.policy, self.cluster, self.clock = audit, gate, policy, cluster, clock

    @classmethod
    def over(cls, gate: Any) -> "LeaseService":
        """Leases over a gate's own audit log, policy, cluster and clock."""
        return cls(audit=gate.recorder, gate=gate, policy=gate.policy, cluster=gate.cluster, clock=gate.clock)

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

    def _cap(self, ref: WorkloadRef) -> tuple[timedelta | None, str | None]:
        workload = self.cluster.snapshot().workload(ref)
        if workload is None:
            raise LeaseRefused(f"{ref.namespace}/{ref.name}: no such workload")
        intent = self.policy.intent_for(workload)
        return (intent.max_wake if intent else None), (intent.name if intent else None)

    def _may_wake(self, ref: WorkloadRef, actor: str, actor_groups: tuple[str, ...], channel: Channel) -> str | None:
        """Why `actor` may not hold a lease on `ref` open (None when the policy lets them wake it outright)."""
        preview = getattr(self.gate, "preview", None)
        if not callable(preview):
            return "cannot ask the policy who may wake it"
        decision = preview(ToolCall(tool="wake_workload", args={"namespace": ref.namespace, "name": ref.name},
                                    actor=actor, actor_groups=actor_groups, channel=channel))
        if getattr(decision, "effect", None) == "allow" and not getattr(decision, "confirm", False):
            return None
        return f"the policy does not let {actor} wake it outright ({getattr(decision, 'reason', '') or 'no rule allows it'})"

    def _record(self, lease_id: str, workload: str, event: str, *, actor: str, channel: Channel, until: datetime,
                summary: str, extra: dict[str, Any] | None = None) -> int:
        namespace, name = workload.split("/", 1)
        now = self.clock.now()
        key = f"lease:{lease_id}:{event}" + (f":{iso(until)}" if event == "extended" else "")
        return self.audit.record(AuditEntry(
            time=now, kind="lease", actor=actor, channel=channel, args={"namespace": namespace, "name": name},
            summary=summary, idempotency_key=key,
            data={"event": event, "lease": lease_id, "workload": workload, "until": iso(until), **(extra or {})}))

    def start(self, ref: WorkloadRef, span: timedelta, *, actor: str, channel: Channel = "cli",
              actor_groups: tuple[str, ...] = ()) -> tuple[Lease, ToolResult]:
        """Wake the workload through the gate as `actor`, then record the lease (only if the wake ran)."""
        workload = f"{ref.namespace}/{ref.name}"
        now = self.clock.now()
        _positive(span, workload)
        if active_for(self.leases(), workload) is not None:
            raise LeaseRefused(f"{workload} already has an active lease; extend or cancel it")
        cap, intent = self._cap(ref)
        check_cap(now + span, now, cap, workload, intent)
        result = self.gate.submit(ToolCall(tool="wake_workload", args={"namespace": ref.namespace, "name": ref.name},
                                           actor=actor, actor_groups=actor_groups, channel=channel))
        if result.status != "ok":
            raise LeaseRefused(f"{workload}: the wake did not run ({result.status}): {result.message}")
        lease_id = f"{workload}@{iso(now)}"
        self._record(lease_id, workload, "started", actor=actor, channel=channel, until=now + span,
                     summary=f"{workload} kept up until {iso(now + span)} by {actor}",
                     extra={"max_wake_seconds": cap.total_seconds() if cap else None, "wake_audit_id": result.audit_id})
        return self.leases()[lease_id], result

    def extend(self, ref: WorkloadRef, span: timedelta, *, actor: str, channel: Channel = "cli",
               actor_groups: tuple[str, ...] = ()) -> Lease:
        """Push the lease's end `span` past now; refused past the cap counted from its start, or sooner than it ends
        now, or for a person the policy does not let wake the workload."""
        workload = f"{ref.namespace}/{ref.name}"
        _positive(span, workload)
        lease = active_for(self.leases(), workload)
        if lease is None:
            raise LeaseRefused(f"{workload} has no active lease to extend")
        if (why := self._may_wake(ref, actor, actor_groups, channel)) is not None:
            raise LeaseRefused(f"{workload}: {actor} may not extend its lease: {why}")
        cap, intent = self._cap(ref)
        until = self.clock.now() + span
        if until < lease.until:
            raise LeaseRefused(f"{workload}: its lease already runs until {iso(lease.until)}; an extension cannot end "
                               "it sooner (cancel it instead)")
        check_cap(until, lease.started_at, cap, workload, intent)
        self._record(lease.id, workload, "extended", actor=actor, channel=channel, until=until,
                     summary=f"{workload} lease extended to {iso(until)} by {actor}")
        return self.leases()[lease.id]

    def cancel(self, ref: WorkloadRef, *, actor: str, channel: Channel = "cli",
               actor_groups: tuple[str, ...] = ()) -> Lease:
        """End the lease now; the workload stays up and its idle rule applies again. Its starter, or a person the
        policy lets wake the workload, may cancel it."""
        workload = f"{ref.namespace}/{ref.name}"
        lease = active_for(self.leases(), workload)
        if lease is None:
            raise LeaseRefused(f"{workload} has no active lease to cancel")
        if actor != lease.actor and (why := self._may_wake(ref, actor, actor_groups, channel)) is not None:
            raise LeaseRefused(f"{workload}: {actor} may not cancel {lease.actor}'s lease: {why}")
        self._record(lease.id, workload, "cancelled", actor=actor, channel=channel, until=lease.until,
                     summary=f"{workload} lease cancelled by {actor}; its idle rule applies again")
        return self.leases()[lease.id]

    def close_due(self) -> list[tuple[Lease, ToolResult | None]]:
        """The daemon's part: sleep expired leases through the gate as `daemon`; record hand-scaled ones as ended."""
        out: list[tuple[Lease, ToolResult | None]] = []
        for lease in due(self.leases(), self.clock.now()):
            if lease.scaled_by_hand is not None:
                self._record(lease.id, lease.workload, "ended", actor="daemon", channel="daemon", until=lease.until,
                             summary=f"{lease.workload} lease ended: a person scaled it by hand (audit {lease.scaled_by_hand})",
                             extra={"scaled_by_hand": lease.scaled_by_hand})
                out.append((lease, None))
                continue
            namespace, name = lease.workload.split("/", 1)
            result = self.gate.submit(ToolCall(tool="sleep_workload", args={"namespace": namespace, "name": name},
                                               actor="daemon", channel="lease"))
            self._record(lease.id, lease.workload, "expired", actor="daemon", channel="daemon", until=lease.until,
                         summary=f"{lease.workload} lease expired; sleep {result.status}: {result.message}"[:400],
                         extra={"sleep_status": result.status, "sleep_audit_id": result.audit_id})
            out.append((lease, result))
        return out
