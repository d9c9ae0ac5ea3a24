"""`ApprovalQueue`: durable approval requests, bound to the exact arguments hash of a call.

Requests live in the `approvals` table of the audit database (mutable state), and
every transition is appended to the audit log (kind='approval') in the same
transaction, so the log and the state never disagree. Rules enforced here:
only a named approver may approve; the requester never approves their own call;
machine actors never approve; an expired or already decided request cannot be
approved. Refusals raise an `ApprovalError` subclass and are audited too.

The chain, not the table, is the authority: every transition's record carries
the request's `args_hash` and `call_sha256`, and the `requested` record the whole
call. A request whose table row disagrees with its chained records
(`opsagent.approvals.ledger`) is neither approved nor run (`ApprovalTampered`),
and `verify_approvals` lists every such row.

It implements the gate's `ApprovalSink` (`request`). It never runs a tool: the
caller passes the gate's `run_approved` to `execute`, which runs it at most once,
whichever process asks: the claim is a chained record plus a run lock held while
the call runs (`opsagent.approvals.claims`), so a second claimant either leaves a
live run alone (`AlreadyRunning`) or, when its claimant died, marks it failed.

Time: a queue opened with a runtime's clock notes that clock's kind (virtual or
real) in the database; a queue opened without one (the CLI, after the runtime
stopped) judges expiry and stamps decisions on the database's own clock, so a
request made on the simulator expires in simulated time (`opsagent.audit.clocks`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, get_args

from opsagent.approvals import claims
from opsagent.approvals.errors import (
    AlreadyDecided,
    AlreadyRunning,
    ApprovalError,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalTampered,
    ExecutionInterrupted,
    NotApproved,
    NotAuthorized,
    SelfApproval,
)
from opsagent.approvals.ledger import Chained, call_sha256, disagreements, replay
from opsagent.audit import AuditStore
from opsagent.audit.chain import content_of, row_hash
from opsagent.audit.clocks import clock_kind_of, database_clock
from opsagent.audit.database import Connection, Row
from opsagent.audit.records import AuditRecord, iso
from opsagent.audit.schema import AUDIT_TABLE
from opsagent.clock import Clock
from opsagent.gate.keys import approval_done_key, execution_claim_key
from opsagent.model import Approval, ApprovalState, AuditEntry, Decision, RuleRef, ToolCall, ToolResult
from opsagent.model.actor import MACHINE_ACTORS, ActorNameError, actor_refusal, normalize_actor, same_person

TABLE = "approvals"
APPROVAL_STATES: tuple[str, ...] = get_args(ApprovalState)
IsMember = Callable[[str, str], bool]

_COLUMNS: dict[str, type] = {
    "id": int, "tool": str, "call": str, "args_hash": str, "state": str, "requested_by": str,
    "approvers": str, "rule_file": str, "rule_name": str, "reason": str, "created_at": str,
    "expires_at": str, "decided_by": str, "decided_at": str, "comment": str, "thread_id": str,
    "executed_at": str, "result_summary": str,
}


def approval_threads(conn: Connection) -> list[str]:
    """The agent runs (thread ids) that ever asked a person for an approval, in order.

    Only these can be waiting: a run pauses for a person right after the gate files its
    request, and the request carries the run's thread id. The caller asks the checkpointer
    which of them are still paused. An empty list when the file holds no approvals yet.
    """
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
    if exists is None:
        return []
    rows = conn.execute(f"SELECT DISTINCT thread_id FROM [{TABLE}] WHERE thread_id IS NOT NULL ORDER BY thread_id")
    return [thread_id for (thread_id,) in rows]


def _canonical(by: str) -> str:
    """The decider's name as every door normalises it; a name that cannot be a person's stays as given,
    so `_check_approver` refuses it (and the refusal is audited)."""
    try:
        return normalize_actor(by)
    except ActorNameError:
        return by


def verify_call(approval: Approval, call: ToolCall) -> bool:
    """True only if `call` is exactly the call that was approved (same tool, same arguments)."""
    return call.tool == approval.call.tool and call.args_hash() == approval.args_hash


class ApprovalMismatch(NamedTuple):
    """An approvals row that disagrees with its chained records, and how."""

    approval_id: int
    problems: tuple[str, ...]


def _chained(conn: Connection, approval_id: int | None = None) -> dict[int, Chained]:
    sql = f"SELECT * FROM [{AUDIT_TABLE}] WHERE kind = 'approval' AND approval_id IS NOT NULL"
    rows = conn.execute(sql + " AND approval_id = ? ORDER BY id", (approval_id,)) if approval_id is not None \
        else conn.execute(sql + " ORDER BY id")
    return replay(AuditRecord.from_row(dict(r)) for r in rows)


def _links_of(conn: Connection, approval_id: int) -> list[str]:
    """Whether the chained records of one request are themselves intact: each matches its own hash,
    and the row after it links to it. (The whole chain is `AuditStore.verify`; this is its part
    that approving or running a request must not wait for.)"""
    problems = []
    for row in conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] WHERE kind = 'approval' AND approval_id = ? ORDER BY id",
                            (approval_id,)).fetchall():
        if row_hash(row["prev_hash"], content_of(dict(row))) != row["hash"]:
            problems.append(f"its audit row {row['id']} was edited")
            continue
        after = conn.execute(f"SELECT prev_hash FROM [{AUDIT_TABLE}] WHERE id > ? ORDER BY id LIMIT 1",
                             (row["id"],)).fetchone()
        if after is not None and after[0] != row["hash"]:
            problems.append(f"the chain is broken right after its audit row {row['id']}")
    return problems


def _row_problems(row: Row, chained: Chained | None) -> list[str]:
    try:
        approval = _to_approval(row)
    except (ValueError, TypeError) as exc:
        return [f"the row cannot be read ({type(exc).__name__}: {str(exc)[:120]})"]
    return disagreements(approval, chained, expires_at=row["expires_at"])


def verify_approvals(store: AuditStore) -> list[ApprovalMismatch]:
    """Every approvals row that disagrees with the hash chain (read-only; empty when there is no table)."""
    with store.reading() as conn:  # one consistent view of both tables
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone() is None:
            return []
        chained = _chained(conn)
        found = [ApprovalMismatch(row["id"], tuple(p)) for row in conn.execute(f"SELECT * FROM [{TABLE}] ORDER BY id")
                 if (p := _row_problems(row, chained.pop(row["id"], None)))]
        found += [ApprovalMismatch(aid, ("the chain records this request but the approvals table has no row for it",))
                  for aid in sorted(chained)]
    return found


def _to_approval(row: Row) -> Approval:
    return Approval(
        id=row["id"], call=ToolCall.model_validate_json(row["call"]), args_hash=row["args_hash"],
        state=row["state"], requested_by=row["requested_by"], approvers=tuple(json.loads(row["approvers"])),
        rule=RuleRef(file=row["rule_file"], name=row["rule_name"]), reason=row["reason"] or "",
        created_at=datetime.fromisoformat(row["created_at"]), expires_at=datetime.fromisoformat(row["expires_at"]),
        decided_by=row["decided_by"],
        decided_at=datetime.fromisoformat(row["decided_at"]) if row["decided_at"] else None,
        comment=row["comment"], thread_id=row["thread_id"],
    )


class ApprovalQueue:
    """Approval requests in the audit database. Pass an `AuditStore` or a path to one.

    `clock` is the runtime's clock; None means the database's own (`database_clock`).
    """

    def __init__(self, store: AuditStore | str | Path, *, clock: Clock | None, is_member: IsMember | None = None,
                 default_ttl_seconds: int = 3600) -> None:
        self._owns_store = not isinstance(store, AuditStore)
        self.store = store if isinstance(store, AuditStore) else AuditStore(store)
        if clock is None:
            clock = database_clock(self.store)
        elif (kind := clock_kind_of(clock)) is not None:
            self.store.note_clock(kind)
        self.clock = clock
        self.is_member = is_member
        self.default_ttl_seconds = default_ttl_seconds
        # The approvers the policy in force names for a request's call (the gate's `approvers_now`); when set and
        # not empty they are the ones who may decide, so a policy change since the request takes effect.
        self.current_approvers: Callable[[Approval], Sequence[str]] | None = None
        db = self.store.db
        if not db[TABLE].exists():
            with self.store.transaction():
                if not db[TABLE].exists():
                    db.create_table(TABLE, _COLUMNS, pk="id", not_null={"call", "args_hash", "state"}, if_not_exists=True)
                    db[TABLE].create_index(["state", "expires_at"], index_name="idx_approvals_state", if_not_exists=True)
                    db[TABLE].create_index(["args_hash"], index_name="idx_approvals_args_hash", if_not_exists=True)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    @staticmethod
    def execution_key(approval_id: int) -> str:
        """Idempotency key of the audit row that claims an approval's one execution."""
        return execution_claim_key(approval_id)

    # --- reading -----------------------------------------------------------------

    def get(self, approval_id: int) -> Approval | None:
        row = self.store.db.conn.execute(f"SELECT * FROM [{TABLE}] WHERE id = ?", (approval_id,)).fetchone()
        return _to_approval(row) if row is not None else None

    def list(self, state: ApprovalState | None = None) -> list[Approval]:
        """Requests in id order; `state='approved'` finds approved calls still to execute."""
        if state is not None and state not in APPROVAL_STATES:
            raise ValueError(f"unknown approval state {state!r}: use one of {', '.join(APPROVAL_STATES)}")
        if state is None:
            rows = self.store.db.conn.execute(f"SELECT * FROM [{TABLE}] ORDER BY id")
        else:
            rows = self.store.db.conn.execute(f"SELECT * FROM [{TABLE}] WHERE state = ? ORDER BY id", (state,))
        return [_to_approval(r) for r in rows]

    def threads(self) -> tuple[str, ...]:
        """Agent runs that ever asked for an approval (`approval_threads`)."""
        return tuple(approval_threads(self.store.db.conn))

    def running(self, approval_id: int) -> bool:
        """Whether a live process (this one included) holds the run lock of this request: it is running the
        approved call now, and will record how it ended."""
        return claims.running(claims.claims_path(self.store.path), approval_id)

    def result_summary(self, approval_id: int) -> str | None:
        row = self.store.db.conn.execute(f"SELECT result_summary FROM [{TABLE}] WHERE id = ?", (approval_id,)).fetchone()
        return row[0] if row is not None else None

    # --- the ApprovalSink protocol --------------------------------------------------

    def request(self, *, call: ToolCall, decision: Decision, run_id: str | None = None) -> Approval:
        """Ask people to approve `call`. A pending, unexpired request for the same call by
        the same requester is returned instead of a duplicate (a restarted run re-asks)."""
        now = self.clock.now()
        ttl = decision.expires_after_seconds or self.default_ttl_seconds
        args_hash = call.args_hash()
        with self.store.transaction() as conn:
            row = conn.execute(
                f"SELECT * FROM [{TABLE}] WHERE args_hash = ? AND requested_by = ? AND state = 'pending' "
                f"AND expires_at > ? ORDER BY id LIMIT 1", (args_hash, call.actor, iso(now))).fetchone()
            if row is not None:
                return _to_approval(row)
            values = {
                "tool": call.tool, "call": call.model_dump_json(), "args_hash": args_hash, "state": "pending",
                "requested_by": call.actor, "approvers": json.dumps(list(decision.approvers)),
                "rule_file": decision.rule.file, "rule_name": decision.rule.name, "reason": decision.reason,
                "created_at": iso(now), "expires_at": iso(now + timedelta(seconds=ttl)), "thread_id": run_id,
            }
            cols = ", ".join(values)
            cursor = conn.execute(f"INSERT INTO [{TABLE}] ({cols}) VALUES ({', '.join('?' for _ in values)})",
                                  list(values.values()))
            approval = self._load(conn, int(cursor.lastrowid))
            assert approval is not None
            self._audit(conn, approval, actor=call.actor, channel=call.channel, outcome="pending", event="requested",
                        summary=f"approval requested: {decision.reason}",
                        extra={"approvers": list(decision.approvers), "expires_at": iso(approval.expires_at),
                               "call": call.model_dump(mode="json")})
        return approval

    # --- people's decisions ----------------------------------------------------------

    def approve(self, approval_id: int, *, by: str, comment: str | None = None, channel: str = "cli") -> Approval:
        by = _canonical(by)
        now = self.clock.now()
        names = self._approvers_now(approval_id)  # outside the transaction: it may read the cluster
        with self.store.transaction() as conn:
            approval = self._load(conn, approval_id)
            error = self._check_open(conn, approval_id, approval, now) or self._check_approver(approval, by, names=names) \
                or self._check_chain(conn, approval_id)
            if error is None:
                assert approval is not None
                approval = self._set(conn, approval_id, state="approved", decided_by=by, decided_at=iso(now),
                                     comment=comment)
                self._audit(conn, approval, actor=by, channel=channel, outcome="approved", event="approved",
                            summary=f"approved by {by}" + (f": {comment}" if comment else ""))
            else:
                self._audit_refusal(conn, approval_id, approval, by=by, channel=channel, action="approve", error=error)
        if error is not None:
            raise error
        return approval  # type: ignore[return-value]

    def reject(self, approval_id: int, *, by: str, reason: str, channel: str = "cli") -> Approval:
        """Approvers reject; the requester may also withdraw their own request."""
        if not reason or not reason.strip():
            raise ValueError("a rejection needs a reason")
        by = _canonical(by)
        now = self.clock.now()
        names = self._approvers_now(approval_id)
        with self.store.transaction() as conn:
            approval = self._load(conn, approval_id)
            error = self._check_open(conn, approval_id, approval, now)
            if error is None and by != approval.requested_by:  # type: ignore[union-attr]
                error = self._check_approver(approval, by, action="reject", names=names)
            if error is None:
                approval = self._set(conn, approval_id, state="rejected", decided_by=by, decided_at=iso(now),
                                     comment=reason)
                self._audit(conn, approval, actor=by, channel=channel, outcome="rejected", event="rejected",
                            summary=f"rejected by {by}: {reason}")
            else:
                self._audit_refusal(conn, approval_id, approval, by=by, channel=channel, action="reject", error=error)
        if error is not None:
            raise error
        return approval  # type: ignore[return-value]

    def expire_due(self) -> list[Approval]:
        """Mark every pending request past its expiry as expired; returns them."""
        now = self.clock.now()
        with self.store.transaction() as conn:
            due = conn.execute(f"SELECT id FROM [{TABLE}] WHERE state = 'pending' AND expires_at <= ? ORDER BY id",
                               (iso(now),)).fetchall()
            return [self._expire(conn, row[0]) for row in due]

    # --- execution, at most once -----------------------------------------------------

    def execute(self, approval_id: int, *, run: Callable[[Approval], ToolResult], actor: str | None = None,
                channel: str = "cli") -> ToolResult:
        """Run an approved request once through `run` (the gate's run_approved) and record how it went.

        The claim is one transaction: the row must agree with the chain and be
        approved, this process takes the request's run lock, and a claim record
        (`execution_key(id)`) joins the chain. Only then is `run` called; the lock
        is let go once the result is committed. A claim already in the chain with
        no result means another claimant: while its process lives and holds the
        lock the call is left to it (`AlreadyRunning`, nothing recorded); when it
        died mid-call the request is marked failed (`ExecutionInterrupted`) rather
        than risk running it twice.
        """
        now = self.clock.now()
        error: ApprovalError | None = None
        lock = claims.claims_path(self.store.path)
        with self.store.transaction() as conn:
            approval = self._load(conn, approval_id)
            who = actor or (approval.decided_by if approval else None) or "unknown"
            if approval is None:
                error = ApprovalNotFound(f"approval {approval_id} does not exist", approval_id=approval_id)
            elif approval.state in ("executed", "failed"):
                error = AlreadyDecided(f"approval {approval_id} was already executed ({approval.state})",
                                       approval_id=approval_id)
            elif (error := self._check_chain(conn, approval_id)) is not None:
                pass
            elif approval.state != "approved":
                error = NotApproved(f"approval {approval_id} is {approval.state}, not approved", approval_id=approval_id)
            elif conn.execute(f"SELECT 1 FROM [{AUDIT_TABLE}] WHERE idempotency_key = ?",
                              (self.execution_key(approval_id),)).fetchone() is not None:
                if claims.running(lock, approval_id):
                    raise AlreadyRunning(f"approval {approval_id} is being run now by the process that claimed it; "
                                         "it runs once, there", approval_id=approval_id)
                error = ExecutionInterrupted(
                    f"approval {approval_id}: an earlier execution started and recorded no result; "
                    "not running it again", approval_id=approval_id)
                self._finish(conn, approval, ok=False, summary=error.message, now=now, actor=who, channel=channel)
            elif not claims.hold(lock, approval_id):
                raise AlreadyRunning(f"approval {approval_id} is being claimed by another process; it runs once, there",
                                     approval_id=approval_id)
            else:
                claim = self._entry(approval, actor=who, channel=channel, outcome="info", event="executing",
                                    summary=f"executing the approved call (approved by {approval.decided_by})", now=now,
                                    key=self.execution_key(approval_id))
                try:
                    self.store.append_in_transaction(conn, claim)
                except BaseException:
                    claims.release(lock, approval_id)
                    raise
            if error is not None:
                self._audit_refusal(conn, approval_id, approval, by=who, channel=channel, action="execute", error=error)
        if error is not None:
            raise error
        assert approval is not None
        try:
            try:
                result = run(approval)
            except Exception as exc:
                self.mark_executed(approval_id, ok=False, summary=f"{type(exc).__name__}: {exc}", channel=channel)
                raise
            self.mark_executed(approval_id, ok=result.ok, summary=result.message or result.status, channel=channel)
        finally:
            claims.release(lock, approval_id)
        return result

    def mark_executed(self, approval_id: int, *, ok: bool, summary: str, channel: str = "cli") -> Approval:
        """Record that an approved call ran (ok) or failed. Only approved requests qualify."""
        now = self.clock.now()
        with self.store.transaction() as conn:
            approval = self._load(conn, approval_id)
            if approval is None:
                raise ApprovalNotFound(f"approval {approval_id} does not exist", approval_id=approval_id)
            if approval.state != "approved":
                raise NotApproved(f"approval {approval_id} is {approval.state}, not approved", approval_id=approval_id)
            return self._finish(conn, approval, ok=ok, summary=summary, now=now,
                                actor=approval.decided_by or "unknown", channel=channel)

    # --- internals ---------------------------------------------------------------------

    def _check_chain(self, conn: Connection, approval_id: int) -> ApprovalError | None:
        """ApprovalTampered when the table's row for the request disagrees with its chained records."""
        row = conn.execute(f"SELECT * FROM [{TABLE}] WHERE id = ?", (approval_id,)).fetchone()
        problems = _row_problems(row, _chained(conn, approval_id).get(approval_id)) if row is not None else []
        problems += _links_of(conn, approval_id) if row is not None else []
        if not problems:
            return None
        return ApprovalTampered(f"approval {approval_id} does not match its record in the audit chain "
                                f"({'; '.join(problems)}); refusing. Run `opsagent audit verify`",
                                approval_id=approval_id)

    def _load(self, conn: Connection, approval_id: int) -> Approval | None:
        row = conn.execute(f"SELECT * FROM [{TABLE}] WHERE id = ?", (approval_id,)).fetchone()
        return _to_approval(row) if row is not None else None

    def _set(self, conn: Connection, approval_id: int, **values: Any) -> Approval:
        sets = ", ".join(f"{k} = ?" for k in values)
        conn.execute(f"UPDATE [{TABLE}] SET {sets} WHERE id = ?", [*values.values(), approval_id])
        approval = self._load(conn, approval_id)
        assert approval is not None
        return approval

    def _finish(self, conn: Connection, approval: Approval, *, ok: bool, summary: str, now: datetime,
                actor: str, channel: str = "cli") -> Approval:
        state = "executed" if ok else "failed"
        done = self._set(conn, approval.id, state=state, executed_at=iso(now), result_summary=summary)
        self._audit(conn, done, actor=actor, channel=channel, outcome="ok" if ok else "error", event=state,
                    summary=summary, key=approval_done_key(approval.id))
        return done

    def _expire(self, conn: Connection, approval_id: int) -> Approval:
        approval = self._set(conn, approval_id, state="expired")
        self._audit(conn, approval, actor="opsagent", channel="daemon", outcome="expired", event="expired",
                    summary=f"expired at {iso(approval.expires_at)} without a decision")
        return approval

    def _check_open(self, conn: Connection, approval_id: int, approval: Approval | None,
                    now: datetime) -> ApprovalError | None:
        if approval is None:
            return ApprovalNotFound(f"approval {approval_id} does not exist", approval_id=approval_id)
        if approval.state != "pending":
            by = f" by {approval.decided_by}" if approval.decided_by else ""
            return AlreadyDecided(f"approval {approval_id} is already {approval.state}{by}", approval_id=approval_id)
        if approval.expires_at <= now:
            self._expire(conn, approval_id)
            return ApprovalExpired(f"approval {approval_id} expired at {iso(approval.expires_at)}; "
                                   "propose the call again", approval_id=approval_id)
        return None

    def _approvers_now(self, approval_id: int) -> tuple[str, ...]:
        if self.current_approvers is None:
            return ()
        approval = self.get(approval_id)
        return tuple(self.current_approvers(approval)) if approval is not None and approval.state == "pending" else ()

    def _check_approver(self, approval: Approval | None, by: str, *, action: str = "approve",
                        names: Sequence[str] = ()) -> ApprovalError | None:
        assert approval is not None
        if same_person(by, approval.requested_by):
            return SelfApproval(f"{by} asked for this call and cannot {action} it; another approver must",
                                approval_id=approval.id)
        if by in MACHINE_ACTORS:
            return NotAuthorized(f"{by} is a machine actor; only people {action} calls", approval_id=approval.id)
        if (why := actor_refusal(by)) is not None:  # a look-alike of a machine actor, or not a plain name
            return NotAuthorized(f"only people {action} calls: {why}", approval_id=approval.id)
        approvers = tuple(names) or tuple(approval.approvers)
        if not approvers:
            return NotAuthorized(f"rule {approval.rule.name} names no approvers; nobody can {action} this call",
                                 approval_id=approval.id)
        if not any(self._matches(by, name) for name in approvers):
            changed = f"; the request was made when they were {', '.join(approval.approvers)}" \
                if names and set(names) != set(approval.approvers) else ""
            return NotAuthorized(f"{by} is not an approver for this call under the policy in force "
                                 f"(approvers: {', '.join(approvers)}){changed}", approval_id=approval.id)
        return None

    def _matches(self, actor: str, name: str) -> bool:
        if self.is_member is not None:
            return bool(self.is_member(actor, name))
        return actor == name

    def _entry(self, approval: Approval, *, actor: str, channel: str, outcome: str, event: str, summary: str,
               now: datetime | None = None, key: str | None = None, extra: dict[str, Any] | None = None) -> AuditEntry:
        call = approval.call
        return AuditEntry(
            time=now or self.clock.now(), kind="approval", actor=actor, channel=channel, run_id=approval.thread_id,
            finding_id=call.finding_id, tool=call.tool, args=call.args, decision="require_approval",
            rule_file=approval.rule.file, rule_name=approval.rule.name, approval_id=approval.id,
            outcome=outcome, summary=summary, idempotency_key=key,  # type: ignore[arg-type]
            data={"event": event, "state": approval.state, "args_hash": approval.args_hash,
                  "call_sha256": call_sha256(call), **(extra or {})},
        )

    def _audit(self, conn: Connection, approval: Approval, *, actor: str, channel: str, outcome: str,
               event: str, summary: str, key: str | None = None, extra: dict[str, Any] | None = None) -> int:
        entry = self._entry(approval, actor=actor, channel=channel, outcome=outcome, event=event, summary=summary,
                            key=key, extra=extra)
        return self.store.append_in_transaction(conn, entry)[0]

    def _audit_refusal(self, conn: Connection, approval_id: int, approval: Approval | None, *, by: str,
                       channel: str, action: str, error: ApprovalError) -> None:
        summary = f"{action} refused ({type(error).__name__}): {error.message}"
        if approval is None:
            self.store.append_in_transaction(conn, AuditEntry(
                time=self.clock.now(), kind="approval", actor=by, channel=channel, approval_id=approval_id,
                outcome="denied", summary=summary, data={"event": f"{action}_refused"}))
            return
        current = self._load(conn, approval_id) or approval
        self._audit(conn, current, actor=by, channel=channel, outcome="denied", event=f"{action}_refused",
                    summary=summary)
