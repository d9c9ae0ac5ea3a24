"""Approval requests in Slack, whoever raised them, remembered in the audit database.

`ApprovalFeed` posts every pending approval request (from chat, the daemon,
`opsagent ask` or the wake proxy) to the approvals channel with the Approve /
Reject blocks from `render.py`, and keeps which message carries which request
in a table of its own (`slack_approval_messages`) in the same SQLite file as
the approval queue. A request is claimed in that table before it is posted, so
two posters (the Slack listeners and the polling thread, or two processes)
never post it twice, and a restart neither posts it again nor forgets where it
is. When a request leaves `pending` by any path, the next pass rewrites its
message (`chat.update`) to say what happened, without buttons.

`run_once()` is one pass; `start_polling` runs passes on a daemon thread until
a stop event is set. This module decides nothing about approvals: it only
shows what the queue says.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from opsagent.approvals import ApprovalQueue
from opsagent.audit.records import iso
from opsagent.chat import render
from opsagent.model import Approval

log = logging.getLogger("opsagent.slack.approvals")

TABLE = "slack_approval_messages"
# States a posted message can still move on from; 'approved' later becomes executed or failed.
OPEN_STATES = ("pending", "approved")
# A claim whose post never recorded a message ts (the poster died mid-post) is retried after this.
STALE_CLAIM = timedelta(minutes=2)
# chat.update errors that retrying cannot fix: the message is gone or can no longer be edited.
GIVE_UP = frozenset({"message_not_found", "channel_not_found", "cant_update_message", "edit_window_closed",
                     "is_archived", "not_in_channel"})

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS [{TABLE}] (
    approval_id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    ts TEXT,
    claimed_at TEXT NOT NULL,
    shown_state TEXT NOT NULL DEFAULT 'pending',
    updated_at TEXT
)
"""


@dataclass(frozen=True)
class PostedMessage:
    approval_id: int
    channel: str
    ts: str | None
    shown_state: str


@dataclass
class FeedReport:
    """What one pass did: approval ids posted, and approval ids whose message was updated."""

    posted: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)


class ApprovalFeed:
    """Posts pending approvals to `channel` and keeps their Slack messages in step with the queue."""

    def __init__(self, *, approvals: ApprovalQueue, client: WebClient, channel: str | None) -> None:
        self.approvals, self.client, self.channel = approvals, client, channel
        self.store, self.clock = approvals.store, approvals.clock
        with self.store.transaction() as conn:
            conn.execute(_SCHEMA)

    # --- one pass ----------------------------------------------------------------
    def run_once(self) -> FeedReport:
        """Expire overdue requests, post the pending ones not yet posted, update the decided ones."""
        report = FeedReport()
        self.approvals.expire_due()
        if self.channel:
            for approval in self.approvals.list("pending"):
                if self.post(approval) is not None:
                    report.posted.append(approval.id)
        for message in self._open_messages():
            if self.sync(message.approval_id):
                report.updated.append(message.approval_id)
        return report

    # --- posting -------------------------------------------------------------------
    def post(self, approval: Approval, *, channel: str | None = None) -> str | None:
        """Post `approval` with its buttons unless it was posted already; returns the new message ts."""
        target = channel or self.channel
        if not target or approval.state != "pending" or not self._claim(approval.id, target):
            return None
        text = f"Approval #{approval.id}: {render.call_summary(approval.call.tool, approval.call.args)}"
        try:
            resp = self.client.chat_postMessage(channel=target, text=text, blocks=render.approval_blocks(approval))
            ts = resp.get("ts")
        except SlackApiError as exc:
            log.warning("Slack refused approval #%s for %s: %s", approval.id, target, exc.response.get("error"))
            ts = None
        except Exception as exc:  # network trouble: let a later pass try again
            log.warning("could not post approval #%s to %s: %s", approval.id, target, exc)
            ts = None
        with self.store.transaction() as conn:
            if ts:
                conn.execute(f"UPDATE [{TABLE}] SET ts = ?, channel = ? WHERE approval_id = ?", (ts, target, approval.id))
            else:
                conn.execute(f"DELETE FROM [{TABLE}] WHERE approval_id = ? AND ts IS NULL", (approval.id,))
        return ts

    def _claim(self, approval_id: int, channel: str) -> bool:
        now = self.clock.now()
        with self.store.transaction() as conn:
            row = conn.execute(f"SELECT ts, claimed_at FROM [{TABLE}] WHERE approval_id = ?", (approval_id,)).fetchone()
            if row is None:
                conn.execute(f"INSERT INTO [{TABLE}] (approval_id, channel, claimed_at) VALUES (?, ?, ?)",
                             (approval_id, channel, iso(now)))
                return True
            if row[0] is None and row[1] <= iso(now - STALE_CLAIM):
                conn.execute(f"UPDATE [{TABLE}] SET channel = ?, claimed_at = ? WHERE approval_id = ?",
                             (channel, iso(now), approval_id))
                return True
            return False

    # --- keeping posted messages current ---------------------------------------------
    def message(self, approval_id: int) -> PostedMessage | None:
        """Where approval `approval_id` was posted, if it was."""
        row = self.store.db.conn.execute(
            f"SELECT approval_id, channel, ts, shown_state FROM [{TABLE}] WHERE approval_id = ?", (approval_id,)).fetchone()
        return PostedMessage(*row) if row is not None else None

    def sync(self, approval_id: int) -> bool:
        """Rewrite the message of a request that left the state its message shows; True if updated."""
        message, approval = self.message(approval_id), self.approvals.get(approval_id)
        if message is None or message.ts is None or approval is None or approval.state == message.shown_state:
            return False
        if not self._mark_shown(approval_id, approval.state, was=message.shown_state):
            return False  # another poster got there first
        outcome = render.slack_escaped(render.approval_outcome(approval, result=self.approvals.result_summary(approval_id)))
        if not self._update(message, approval, outcome):
            self._mark_shown(approval_id, message.shown_state, was=approval.state)
            return False
        return True

    def settle(self, approval_id: int, outcome: str, *, where: tuple[str, str] | None = None) -> bool:
        """Show `outcome` (a decision just made in Slack) on the request's message, without buttons.

        `where` (channel, ts) is the message a button was clicked on; it is recorded
        if the request had no message on record. Returns True if a message was updated.
        """
        approval = self.approvals.get(approval_id)
        if approval is None:
            return False
        message = self.message(approval_id)
        if (message is None or message.ts is None) and where is not None and all(where):
            with self.store.transaction() as conn:
                conn.execute(f"INSERT OR REPLACE INTO [{TABLE}] (approval_id, channel, ts, claimed_at) VALUES (?, ?, ?, ?)",
                             (approval_id, where[0], where[1], iso(self.clock.now())))
            message = self.message(approval_id)
        if message is None or message.ts is None:
            return False
        self._mark_shown(approval_id, approval.state, was=None)
        return self._update(message, approval, outcome)

    def _open_messages(self) -> list[PostedMessage]:
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = self.store.db.conn.execute(
            f"SELECT approval_id, channel, ts, shown_state FROM [{TABLE}] WHERE ts IS NOT NULL AND shown_state IN ({marks}) "
            "ORDER BY approval_id", OPEN_STATES).fetchall()
        return [PostedMessage(*row) for row in rows]

    def _mark_shown(self, approval_id: int, state: str, *, was: str | None) -> bool:
        """Record the state the message shows; with `was`, only if it still shows `was`."""
        with self.store.transaction() as conn:
            sql = f"UPDATE [{TABLE}] SET shown_state = ?, updated_at = ? WHERE approval_id = ?"
            params: list[Any] = [state, iso(self.clock.now()), approval_id]
            if was is not None:
                sql += " AND shown_state = ?"
                params.append(was)
            return conn.execute(sql, params).rowcount == 1

    def _update(self, message: PostedMessage, approval: Approval, outcome: str) -> bool:
        assert message.ts is not None
        try:
            self.client.chat_update(channel=message.channel, ts=message.ts, text=outcome[:3900],
                                    blocks=render.decided_blocks(approval, outcome))
            return True
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("Slack refused to update approval #%s (%s/%s): %s", approval.id, message.channel, message.ts, error)
            return error in GIVE_UP  # nothing to retry: count it as done
        except Exception as exc:
            log.warning("could not update approval #%s in Slack: %s", approval.id, exc)
            return False


def poll_once(*, approvals: ApprovalQueue, client: WebClient, channel: str) -> FeedReport:
    """One pass of the feed over `approvals`: post what is new, update what was decided."""
    return ApprovalFeed(approvals=approvals, client=client, channel=channel).run_once()


def start_polling(feed: ApprovalFeed, *, every_seconds: float, stop: threading.Event) -> threading.Thread:
    """Run `feed.run_once()` now and then every `every_seconds` on a daemon thread, until `stop` is set."""
    if every_seconds <= 0:
        raise ValueError("the poll interval must be more than 0 seconds")

    def loop() -> None:
        while not stop.is_set():
            try:
                feed.run_once()
            except Exception as exc:  # a bad pass (database busy, Slack down) must not end the thread
                log.warning("approval feed pass failed: %s: %s", type(exc).__name__, exc)
            stop.wait(every_seconds)

    thread = threading.Thread(target=loop, name="slack-approval-feed", daemon=True)
    thread.start()
    return thread
