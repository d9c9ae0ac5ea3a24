"""At most once per Slack request: replays and Slack's own retries are acknowledged, not acted on.

A validly signed request can be sent again by anyone who saw it, for as long
as its timestamp is fresh (five minutes), and Slack itself re-sends an event it
thinks we missed (`X-Slack-Retry-Num`, same body, new timestamp). Either would
run `/ops restart ...` twice. So before any listener runs, `SeenRequests`
claims the request's keys in the audit database, durably, in one write
transaction:

- `body:<sha256 of the raw body>`: the signed bytes. Nobody can change them
  without breaking the signature, and they carry Slack's own unique ids
  (`trigger_id` of a command or a click, `event_id` of an event), so two real
  requests never share it; a replay or a retry always does.
- `event:<event_id>`: an Events API delivery, whatever bytes it came in.

In Socket Mode there is no raw body (Slack's payload arrives as JSON over the
socket), so the digest is of the payload in canonical JSON; it still holds
the `trigger_id` or `event_id` that makes each request unique. A request with
neither a body nor a payload is not remembered.

A request with a key already claimed gets an empty 200 (Slack stops
retrying) and runs nothing. Keys are kept for `keep_seconds` (an hour: longer
than the signature window and Slack's retry schedule), so a restart in between
does not forget them. This module reads only what the signature covers and
never talks to Slack or the cluster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opsagent.audit import AuditStore

log = logging.getLogger("opsagent.slack")

TABLE = "slack_requests_seen"
KEEP_SECONDS = 3600.0
_SCHEMA = f"CREATE TABLE IF NOT EXISTS [{TABLE}] (key TEXT PRIMARY KEY, seen_at REAL NOT NULL, retry TEXT)"


def request_keys(*, raw_body: str | bytes, body: Mapping[str, Any] | None) -> list[str]:
    """The keys that identify one Slack request (see the module docstring)."""
    raw = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
    if not raw and body:  # Socket Mode: the payload, canonically
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    keys = [f"body:{hashlib.sha256(raw).hexdigest()}"] if raw else []
    event_id = (body or {}).get("event_id")
    if isinstance(event_id, str) and event_id:
        keys.append(f"event:{event_id}")
    return keys


class SeenRequests:
    """Slack request keys already claimed, in the audit database (survives restarts)."""

    def __init__(self, store: AuditStore, *, keep_seconds: float = KEEP_SECONDS,
                 now: Callable[[], float] = time.time) -> None:
        self.store, self.keep_seconds, self.now = store, keep_seconds, now
        with self.store.transaction() as conn:
            conn.execute(_SCHEMA)

    def claim(self, keys: Sequence[str], *, retry: str | None = None) -> bool:
        """True the first time any of `keys` is seen (and they are now claimed); False for a repeat."""
        now = self.now()
        with self.store.transaction() as conn:
            conn.execute(f"DELETE FROM [{TABLE}] WHERE seen_at < ?", (now - self.keep_seconds,))
            marks = ", ".join("?" for _ in keys)
            if conn.execute(f"SELECT 1 FROM [{TABLE}] WHERE key IN ({marks}) LIMIT 1", tuple(keys)).fetchone():
                return False
            conn.executemany(f"INSERT INTO [{TABLE}] (key, seen_at, retry) VALUES (?, ?, ?)",
                             [(k, now, retry) for k in keys])
        return True


def dedup_middleware(seen: SeenRequests) -> Callable[..., Any]:
    """A Bolt global middleware (it runs after Bolt's signature check): a repeat gets an empty 200."""
    from slack_bolt.response import BoltResponse

    def middleware(req: Any, resp: Any, next: Callable[[], Any]) -> Any:  # noqa: A002 - Bolt's argument name
        retry = _header(req.headers, "x-slack-retry-num")
        keys = request_keys(raw_body=req.raw_body, body=req.body)
        if keys and not seen.claim(keys, retry=retry):
            reason = _header(req.headers, "x-slack-retry-reason")
            log.info("Slack request seen before (%s): acknowledged, not acted on",
                     f"retry {retry}" + (f", {reason}" if reason else "") if retry else "a replay")
            return BoltResponse(status=200, body="", headers={"X-Slack-No-Retry": "1"})
        return next()

    return middleware


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return str(value) if value is not None else None
