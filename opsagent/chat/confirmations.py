"""`ConfirmationStore`: writes proposed in conversation, waiting for the yes of the person who asked.

A confirmation is one exact tool call (tool + arguments hash) that chat will
not run until the person it belongs to confirms it: a write the model proposed
in answer to their message, or a command matched by a policy rule with
`confirm: true`. It belongs to the actor *and* the identity that asked (a CLI
name, a Slack user id) on one channel; anyone else, or the same person on
another channel, is refused. It expires after the policy's `confirmation_ttl`.

States: `proposed` → `confirmed` | `refused` (the person said no) | `expired`.
Each change, and each refused attempt, is appended to the audit log
(kind `confirmation`) in the same transaction as the change, so the table and
the log never disagree. `confirm` moves a row out of `proposed` under a write
lock, so of two confirmations of one id (two clicks, two processes) exactly one
succeeds: the call runs at most once.

The rows live in the `confirmations` table of the audit database. Time comes
from the runtime's clock, never earlier than the newest time the database has
recorded (so a simulated clock restarted by a new process cannot bring an
expired confirmation back). This module never runs a tool: the chat service
hands a confirmed call to the gate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from opsagent.approvals.ledger import call_sha256
from opsagent.audit import AuditStore
from opsagent.audit.chain import content_of, row_hash
from opsagent.audit.clocks import database_clock
from opsagent.audit.database import Connection, Row
from opsagent.audit.records import AuditRecord, iso
from opsagent.audit.schema import AUDIT_TABLE
from opsagent.clock import Clock
from opsagent.model import AuditEntry, ToolCall
from opsagent.model.cluster import Frozen

TABLE = "confirmations"
DEFAULT_TTL_SECONDS = 15 * 60
ConfirmationState = Literal["proposed", "confirmed", "refused", "expired"]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS [{TABLE}] (
    id INTEGER PRIMARY KEY, call TEXT NOT NULL, tool TEXT NOT NULL, args_hash TEXT NOT NULL, state TEXT NOT NULL,
    actor TEXT NOT NULL, identity TEXT NOT NULL, channel TEXT NOT NULL, why TEXT NOT NULL, run_id TEXT,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, decided_at TEXT
)"""


class Confirmation(Frozen):
    id: int
    call: ToolCall
    args_hash: str
    state: ConfirmationState = "proposed"
    actor: str = Field(description="the actor who asked; only they may confirm")
    identity: str = Field(description="who asked as the channel knows them (CLI name, Slack user id)")
    channel: str
    why: str = Field(description="why it waits: the model proposed it, or the rule that asks for confirmation")
    run_id: str | None = None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None


class ConfirmationRefused(Exception):
    """A confirm or refuse that may not happen. `code` says why (not_found, not_yours, other_channel,
    already_decided, expired, tampered); each refusal is in the audit log."""

    def __init__(self, message: str, *, code: str, confirmation_id: int) -> None:
        super().__init__(message)
        self.message, self.code, self.confirmation_id = message, code, confirmation_id


def _proposed_key(confirmation_id: int) -> str:
    return f"confirmation:{confirmation_id}:proposed"


def log_problem(conn: Connection, found: Confirmation) -> str | None:
    """How a confirmations row disagrees with the hash chain, or None when it agrees.

    The row must hold the same whole call (tool, arguments, asker, their groups, channel), identity and
    expiry as its `proposed` record; that record must itself be intact (its own hash, and the link after
    it); and the row's state must be the one the log records (a waiting row has no answer logged yet).
    """
    if found.call.actor != found.actor or found.call.args_hash() != found.args_hash:
        return "its call is not the call its own columns name (asker or arguments hash)"
    row = conn.execute(f"SELECT * FROM [{AUDIT_TABLE}] WHERE idempotency_key = ?", (_proposed_key(found.id),)).fetchone()
    if row is None:
        return "the audit chain has no 'proposed' record for it"
    if row_hash(row["prev_hash"], content_of(dict(row))) != row["hash"]:
        return f"its 'proposed' audit row {row['id']} was edited"
    after = conn.execute(f"SELECT prev_hash FROM [{AUDIT_TABLE}] WHERE id > ? ORDER BY id LIMIT 1", (row["id"],)).fetchone()
    if after is not None and after[0] != row["hash"]:
        return f"the chain is broken right after its audit row {row['id']}"
    logged = AuditRecord.from_row(dict(row))
    data = logged.data or {}
    if (logged.actor, logged.channel, logged.tool) != (found.actor, found.channel, found.call.tool) or \
            (data.get("args_hash"), data.get("identity"), data.get("expires_at")) != \
            (found.args_hash, found.identity, iso(found.expires_at)):
        return "its call, asker, identity, channel or expiry differs from the chained 'proposed' record"
    if "call_sha256" in data and data["call_sha256"] != call_sha256(found.call):  # rows proposed before it was kept lack it
        return "its call's hash differs from the call_sha256 chained with it"
    answers = [end for end in ("confirmed", "refused", "expired") if conn.execute(
        f"SELECT 1 FROM [{AUDIT_TABLE}] WHERE idempotency_key = ?", (f"confirmation:{found.id}:{end}",)).fetchone()]
    if found.state == "proposed" and answers:
        return f"it waits, but the chain says it was {answers[0]}"
    if found.state != "proposed" and found.state not in answers:
        return f"its state is {found.state}; the chain " + (f"says {answers[0]}" if answers else "records no answer")
    return None


def verify_confirmations(store: AuditStore) -> list[tuple[int, str]]:
    """(id, problem) for every confirmations row that disagrees with the hash chain (read-only)."""
    with store.reading() as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone() is None:
            return []
        found = []
        for row in conn.execute(f"SELECT * FROM [{TABLE}] ORDER BY id").fetchall():
            try:
                problem = log_problem(conn, _row_to(row))
            except (ValueError, TypeError) as exc:
                problem = f"the row cannot be read ({type(exc).__name__}: {str(exc)[:120]})"
            if problem is not None:
                found.append((row["id"], problem))
    return found


def _row_to(row: Row) -> Confirmation:
    return Confirmation(
        id=row["id"], call=ToolCall.model_validate_json(row["call"]), args_hash=row["args_hash"], state=row["state"],
        actor=row["actor"], identity=row["identity"], channel=row["channel"], why=row["why"], run_id=row["run_id"],
        created_at=datetime.fromisoformat(row["created_at"]), expires_at=datetime.fromisoformat(row["expires_at"]),
        decided_at=datetime.fromisoformat(row["decided_at"]) if row["decided_at"] else None,
    )


class ConfirmationStore:
    """Confirmations in the audit database. `clock` None means the database's own (`database_clock`)."""

    def __init__(self, store: AuditStore, *, clock: Clock | None, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        if ttl_seconds <= 0:
            raise ValueError("a confirmation's time to live must be positive")
        self.store, self.ttl_seconds = store, ttl_seconds
        self.clock = clock if clock is not None else database_clock(store)
        with store.transaction() as conn:
            conn.execute(_SCHEMA)
            conn.execute(f"CREATE INDEX IF NOT EXISTS idx_confirmations_state ON [{TABLE}] (state, expires_at)")

    def now(self) -> datetime:
        """The clock's time, never earlier than the newest time the audit log holds."""
        now, latest = self.clock.now(), self.store.latest_time()
        return max(now, latest) if latest is not None else now

    # --- reading -----------------------------------------------------------------
    def get(self, confirmation_id: int) -> Confirmation | None:
        row = self.store.db.conn.execute(f"SELECT * FROM [{TABLE}] WHERE id = ?", (confirmation_id,)).fetchone()
        return _row_to(row) if row is not None else None

    def waiting(self, *, actor: str, channel: str) -> list[Confirmation]:
        """The actor's confirmations on `channel` still waiting (and not yet past expiry), oldest first."""
        rows = self.store.db.conn.execute(
            f"SELECT * FROM [{TABLE}] WHERE state = 'proposed' AND actor = ? AND channel = ? AND expires_at > ? ORDER BY id",
            (actor, channel, iso(self.now())))
        return [_row_to(r) for r in rows]

    # --- changes -----------------------------------------------------------------
    def propose(self, *, call: ToolCall, identity: str, channel: str, why: str, run_id: str | None = None) -> Confirmation:
        """Hold `call` for its actor's confirmation. The same call already waiting for the same person is reused."""
        now = self.now()
        args_hash = call.args_hash()
        with self.store.transaction() as conn:
            row = conn.execute(
                f"SELECT * FROM [{TABLE}] WHERE args_hash = ? AND actor = ? AND identity = ? AND channel = ? "
                f"AND state = 'proposed' AND expires_at > ? ORDER BY id LIMIT 1",
                (args_hash, call.actor, identity, channel, iso(now))).fetchone()
            if row is not None and (held := _row_to(row)).call.actor_groups == call.actor_groups:
                return held  # (groups that changed since make a new one: the old call would run with stale groups)
            cursor = conn.execute(
                f"INSERT INTO [{TABLE}] (call, tool, args_hash, state, actor, identity, channel, why, run_id, created_at, expires_at) "
                "VALUES (?, ?, ?, 'proposed', ?, ?, ?, ?, ?, ?, ?)",
                (call.model_dump_json(), call.tool, args_hash, call.actor, identity, channel, why[:500], run_id, iso(now),
                 iso(now + timedelta(seconds=self.ttl_seconds))))
            made = self._load(conn, int(cursor.lastrowid))
            self._audit(conn, made, actor=call.actor, channel=channel, outcome="pending", event="proposed", now=now,
                        summary=f"waiting for {call.actor} to confirm: {why}"[:1000], key=self._proposed_key(made.id),
                        extra={"identity": identity, "expires_at": iso(made.expires_at), "call_sha256": call_sha256(made.call)})
        return made

    def confirm(self, confirmation_id: int, *, actor: str, identity: str, channel: str) -> Confirmation:
        """The person's yes: `proposed` → `confirmed`, once. Raises ConfirmationRefused (audited) otherwise."""
        return self._decide(confirmation_id, actor=actor, identity=identity, channel=channel, to="confirmed")

    def refuse(self, confirmation_id: int, *, actor: str, identity: str, channel: str) -> Confirmation:
        """The person's no: `proposed` → `refused`. Same checks as `confirm`."""
        return self._decide(confirmation_id, actor=actor, identity=identity, channel=channel, to="refused")

    def expire_due(self) -> list[Confirmation]:
        """Mark every waiting confirmation past its expiry as expired (audited); returns them."""
        now = self.now()
        due = self.store.db.conn.execute(f"SELECT 1 FROM [{TABLE}] WHERE state = 'proposed' AND expires_at <= ? LIMIT 1",
                                         (iso(now),)).fetchone()
        if due is None:  # the usual case: no write lock taken
            return []
        with self.store.transaction() as conn:
            due = conn.execute(f"SELECT id FROM [{TABLE}] WHERE state = 'proposed' AND expires_at <= ? ORDER BY id",
                               (iso(now),)).fetchall()
            return [self._expire(conn, row[0], now) for row in due]

    # --- internals -----------------------------------------------------------------
    def _decide(self, confirmation_id: int, *, actor: str, identity: str, channel: str,
                to: Literal["confirmed", "refused"]) -> Confirmation:
        now = self.now()
        verb = "confirm" if to == "confirmed" else "refuse"
        with self.store.transaction() as conn:
            found = self._load(conn, confirmation_id)
            error = self._problem(conn, confirmation_id, found, actor=actor, identity=identity, channel=channel, now=now)
            if error is None:
                assert found is not None
                conn.execute(f"UPDATE [{TABLE}] SET state = ?, decided_at = ? WHERE id = ? AND state = 'proposed'",
                             (to, iso(now), confirmation_id))
                done = self._load(conn, confirmation_id)
                self._audit(conn, done, actor=actor, channel=channel, now=now, event=to,
                            outcome="confirmed" if to == "confirmed" else "rejected",
                            summary=f"{to} by {actor}", key=f"confirmation:{confirmation_id}:{to}")
            else:
                self._audit_refusal(conn, confirmation_id, found, actor=actor, channel=channel, now=now,
                                    verb=verb, error=error)
        if error is not None:
            raise error
        return done

    def _problem(self, conn: Connection, confirmation_id: int, found: Confirmation | None, *, actor: str,
                 identity: str, channel: str, now: datetime) -> ConfirmationRefused | None:
        def refused(code: str, message: str) -> ConfirmationRefused:
            return ConfirmationRefused(message, code=code, confirmation_id=confirmation_id)

        if found is None:
            return refused("not_found", f"there is no confirmation {confirmation_id}")
        if found.actor != actor or found.identity != identity:
            return refused("not_yours", f"confirmation {confirmation_id} belongs to {found.actor}, who asked; "
                                        "only they can confirm or refuse it")
        if found.channel != channel:
            return refused("other_channel", f"confirmation {confirmation_id} was proposed on {found.channel}; "
                                            f"answer it there, not on {channel}")
        if found.state == "expired":
            return refused("expired", f"confirmation {confirmation_id} expired at {iso(found.expires_at)}; ask again")
        if found.state != "proposed":
            return refused("already_decided", f"confirmation {confirmation_id} is already {found.state}")
        if not self._matches_log(conn, found):
            return refused("tampered", f"confirmation {confirmation_id} no longer holds the call it was made for; nothing runs")
        if found.expires_at <= now:
            self._expire(conn, confirmation_id, now)
            return refused("expired", f"confirmation {confirmation_id} expired at {iso(found.expires_at)}; ask again")
        return None

    @staticmethod
    def _proposed_key(confirmation_id: int) -> str:
        return _proposed_key(confirmation_id)

    def _matches_log(self, conn: Connection, found: Confirmation) -> bool:
        """The waiting row still says what its intact hash-chained `proposed` record says (see `log_problem`)."""
        return log_problem(conn, found) is None

    def _load(self, conn: Connection, confirmation_id: int) -> Confirmation:
        row = conn.execute(f"SELECT * FROM [{TABLE}] WHERE id = ?", (confirmation_id,)).fetchone()
        return _row_to(row) if row is not None else None  # type: ignore[return-value]

    def _expire(self, conn: Connection, confirmation_id: int, now: datetime) -> Confirmation:
        conn.execute(f"UPDATE [{TABLE}] SET state = 'expired', decided_at = ? WHERE id = ? AND state = 'proposed'",
                     (iso(now), confirmation_id))
        gone = self._load(conn, confirmation_id)
        self._audit(conn, gone, actor="opsagent", channel=gone.channel, now=now, outcome="expired", event="expired",
                    summary=f"expired at {iso(gone.expires_at)} without an answer", key=f"confirmation:{confirmation_id}:expired")
        return gone

    def _audit(self, conn: Connection, confirmation: Confirmation, *, actor: str, channel: str, now: datetime,
               outcome: str, event: str, summary: str, key: str | None = None, extra: dict | None = None) -> None:
        call = confirmation.call
        self.store.append_in_transaction(conn, AuditEntry(
            time=now, kind="confirmation", actor=actor, channel=channel, run_id=confirmation.run_id,
            message=call.message, tool=call.tool, args=call.args, outcome=outcome, summary=summary,  # type: ignore[arg-type]
            idempotency_key=key, data={"event": event, "confirmation_id": confirmation.id, "state": confirmation.state,
                                       "args_hash": confirmation.args_hash, "asked_by": confirmation.actor, **(extra or {})}))

    def _audit_refusal(self, conn: Connection, confirmation_id: int, found: Confirmation | None, *, actor: str,
                       channel: str, now: datetime, verb: str, error: ConfirmationRefused) -> None:
        summary = f"{verb} refused ({error.code}): {error.message}"
        if found is None:
            self.store.append_in_transaction(conn, AuditEntry(
                time=now, kind="confirmation", actor=actor, channel=channel, outcome="denied", summary=summary,
                data={"event": f"{verb}_refused", "confirmation_id": confirmation_id, "code": error.code}))
            return
        current = self._load(conn, confirmation_id) or found
        self._audit(conn, current, actor=actor, channel=channel, now=now, outcome="denied", event=f"{verb}_refused",
                    summary=summary)
