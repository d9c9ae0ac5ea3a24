"""The Slack app (Bolt): `/ops TEXT`, @-mentions, Approve / Reject and Confirm / Refuse buttons.

Every message runs `ChatService.handle` as the Slack user's mapped actor
(`users.py`); unmapped users get read-only answers. Approval requests a
message creates are posted at once through the `ApprovalFeed`
(`approval_feed.py`), which also posts requests raised elsewhere and records
which message carries which request in the database. A click runs the same
approve/reject path as `approve N` in the CLI, so the approval queue decides
who may (the requester never can). A Confirm click runs the same path as
`confirm N`: only the Slack user who asked can confirm the write their message
led to. Refused clicks are answered to the clicker with the reason and are
audited by the queue, the confirmation store or the service.

Every request acts at most once: a replayed signed request or a Slack retry
is acknowledged without running anything (`slack_dedup.py`, keys kept in the
audit database so a restart does not forget them).

Secrets come in a `SlackSecrets` (environment or token file) and are never
logged: `build_app` installs redaction for the token values and every
`xoxb-`/`xapp-` shaped string. Signed HTTP requests are verified by Bolt
(`signing_secret`); Socket Mode needs no public endpoint. This module talks to
Slack only through the Bolt app's WebClient and never touches the cluster.
"""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from urllib.error import URLError

from pydantic import BaseModel, Field
from slack_bolt import Ack, App
from slack_bolt.error import BoltError
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from opsagent.chat import render
from opsagent.chat.approval_feed import ApprovalFeed
from opsagent.chat.grammar import Command
from opsagent.chat.secrets import SlackSecrets, install_redaction
from opsagent.chat.service import ChatReply, ChatService
from opsagent.chat.slack_dedup import SeenRequests, dedup_middleware
from opsagent.model.text import one_line, slack_escape

log = logging.getLogger("opsagent.slack")


class SlackUnreachable(Exception):
    """Slack's Web API could not be reached or refused the token at start-up (auth.test).

    The message names the URL and the network error, never a token.
    """
THREAD_OVER_LINES = 8


class SlackSettings(BaseModel):
    approvals_channel: str | None = Field(default=None, description="channel id that gets approval requests with buttons")
    base_url: str | None = Field(default=None, description="Web API base URL (tests point it at a fake)")
    process_before_response: bool = Field(default=False, description="run listeners before answering Slack (HTTP mode on FaaS, tests)")
    thread_over_lines: int = THREAD_OVER_LINES


def build_app(*, service: ChatService, secrets: SlackSecrets, settings: SlackSettings | None = None,
              socket_mode: bool = False, seen: SeenRequests | None = None) -> App:
    """A Bolt `App` wired to `service`. HTTP mode needs the signing secret; Socket Mode the app token.

    `seen` remembers which requests were acted on; default: a table in the approval queue's database."""
    settings = settings or SlackSettings()
    if not secrets.bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set (environment or --token-file)")
    if socket_mode and not secrets.app_token:
        raise ValueError("Socket Mode needs SLACK_APP_TOKEN (an xapp- token with connections:write)")
    if not socket_mode and not secrets.signing_secret:
        raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET to verify requests")
    install_redaction(secrets.values())
    base_url = settings.base_url or WebClient.BASE_URL
    client = WebClient(token=secrets.bot_token, base_url=base_url)
    try:  # Bolt checks the token with auth.test while it builds the app
        app = App(client=client, signing_secret=secrets.signing_secret or "socket-mode-unused",
                  process_before_response=settings.process_before_response,
                  request_verification_enabled=not socket_mode)
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SlackUnreachable(f"cannot reach the Slack Web API at {base_url} (auth.test): {reason}") from None
    except BoltError as exc:
        raise SlackUnreachable(f"Slack refused the bot token (auth.test at {base_url}): {exc}") from None
    app.use(dedup_middleware(seen or SeenRequests(service.approvals.store)))
    feed = ApprovalFeed(approvals=service.approvals, client=client, channel=settings.approvals_channel)
    SlackHandlers(service=service, settings=settings, feed=feed).attach(app)
    return app


class SlackHandlers:
    """The listeners. Each one acknowledges first, then answers through the Web API."""

    def __init__(self, *, service: ChatService, settings: SlackSettings, feed: ApprovalFeed) -> None:
        # `feed` knows which message carries which approval's buttons (kept in the database).
        self.service, self.settings, self.feed = service, settings, feed

    def attach(self, app: App) -> None:
        app.command("/ops")(self.on_command)
        app.event("app_mention")(self.on_mention)
        app.action(render.APPROVE_ACTION)(self.on_approve)
        app.action(render.REJECT_ACTION)(self.on_reject)
        app.action(render.CONFIRM_ACTION)(self.on_confirm)
        app.action(render.REFUSE_ACTION)(self.on_refuse)

    # --- messages ----------------------------------------------------------------
    def on_command(self, ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        text = (command.get("text") or "").strip()
        ack(response_type="ephemeral", text=f"working on `/ops {text}`…" if text else "try `/ops help`")
        if not text:
            return
        reply = self.service.handle(text, actor=command["user_id"], channel="slack")
        header = f"<@{command['user_id']}> asked: `/ops {slack_escape(one_line(text, 300))}`"
        self._post_reply(client, channel=command["channel_id"], reply=reply, header=header, user=command["user_id"])

    def on_mention(self, event: dict[str, Any], client: WebClient, context: Any) -> None:
        if event.get("bot_id") or event.get("user") in (None, getattr(context, "bot_user_id", None)):
            return
        reply = self.service.handle(event.get("text") or "", actor=event["user"], channel="slack")
        self._send(client, channel=event["channel"], text=slack_escape(reply.text), blocks=render.reply_blocks(reply),
                   thread_ts=event.get("thread_ts") or event.get("ts"))
        self._post_approvals(client, reply, origin=event["channel"])

    def _post_reply(self, client: WebClient, *, channel: str, reply: ChatReply, header: str, user: str) -> None:
        long = len(reply.text.splitlines()) > self.settings.thread_over_lines or reply.command == "agent"
        if reply.refused and not (reply.done or reply.pending or reply.failed or reply.proposed):
            self._send(client, channel=channel, text=slack_escape(reply.text), blocks=render.reply_blocks(reply), user=user)
            return
        if long:
            summary = f"{header}: {_headline(reply)} (details in the thread)"
            ts = self._send(client, channel=channel, text=slack_escape(summary))
            self._send(client, channel=channel, text=slack_escape(reply.text), blocks=render.reply_blocks(reply), thread_ts=ts)
        else:
            self._send(client, channel=channel, text=f"{header}\n{slack_escape(reply.text)}",
                       blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": header}}, *render.reply_blocks(reply)])
        self._post_approvals(client, reply, origin=channel)

    def _post_approvals(self, client: WebClient, reply: ChatReply, *, origin: str) -> None:
        """Post the requests this reply created (each once), and retire the buttons of one it decided."""
        for approval in reply.approvals:
            self.feed.post(approval, channel=self.settings.approvals_channel or origin)
        decided = reply.data.get("approval_id")
        if not isinstance(decided, int):
            return
        if reply.refused:
            self.feed.sync(decided)  # e.g. it had expired or was decided elsewhere
        else:
            self.feed.settle(decided, f"{reply.command} by `{reply.actor}`\n{slack_escape(reply.text)}")

    # --- buttons -----------------------------------------------------------------
    def on_approve(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        self._decide(body, action, client, approve=True)

    def on_reject(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        self._decide(body, action, client, approve=False)

    def _decide(self, body: dict[str, Any], action: dict[str, Any], client: WebClient, *, approve: bool) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message_ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        try:
            approval_id = int(action.get("value") or "")
        except ValueError:
            self._send(client, channel=channel, user=user, text=f"this button does not name an approval ({action.get('value')!r})")
            return
        verb = "approve" if approve else "reject"
        note = None if approve else f"rejected in Slack by <@{user}>"
        reply = self.service.handle_decision(Command(action=verb, approval_id=approval_id, note=note, summary=f"{verb} {approval_id}"),
                                             actor=user, channel="slack")
        if reply.refused and not reply.done:
            self._send(client, channel=channel, user=user, text=f"Not {verb}d: {slack_escape(one_line(reply.refused[0].reason, 500))}")
            self._send(client, channel=channel, thread_ts=message_ts,
                       text=f"<@{user}> tried to {verb} #{approval_id} and was refused: "
                            f"{slack_escape(one_line(reply.refused[0].reason, 500))}")
            self.feed.sync(approval_id)  # if it had left `pending` meanwhile, its message now says so
            return
        outcome = f"{'approved' if approve else 'rejected'} by <@{user}> (as `{reply.actor}`)\n{slack_escape(reply.text)}"
        self.feed.settle(approval_id, outcome, where=(channel, message_ts) if channel and message_ts else None)
        self._send(client, channel=channel, thread_ts=message_ts, text=slack_escape(reply.text))

    def on_confirm(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        self._answer(body, action, client, verb="confirm")

    def on_refuse(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        self._answer(body, action, client, verb="refuse")

    def _answer(self, body: dict[str, Any], action: dict[str, Any], client: WebClient, *, verb: str) -> None:
        """A Confirm / Refuse click: the same checks as `confirm N`, as the Slack user who clicked (signed by Slack)."""
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message_ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        try:
            number = int(action.get("value") or "")
        except ValueError:
            self._send(client, channel=channel, user=user, text=f"this button does not name a confirmation ({action.get('value')!r})")
            return
        reply = self.service.handle_confirmation(Command(action=verb, confirmation_id=number, summary=f"{verb} {number}"),  # type: ignore[arg-type]
                                                 actor=user, channel="slack")
        if reply.refused and "result" not in reply.data:  # refused before anything ran: tell only the clicker
            self._send(client, channel=channel, user=user, text=f"Not {'confirmed' if verb == 'confirm' else 'refused'}: "
                                                                f"{slack_escape(one_line(reply.refused[0].reason, 500))}")
            return
        self._send(client, channel=channel, thread_ts=message_ts, text=f"<@{user}> (as `{reply.actor}`): {slack_escape(reply.text)}")
        self._post_approvals(client, reply, origin=channel or "")

    # --- Web API, failures logged (redacted) and never raised into Bolt ------------
    def _send(self, client: WebClient, *, channel: str | None, text: str, blocks: list | None = None,
              thread_ts: str | None = None, user: str | None = None) -> str | None:
        if not channel:
            return None
        try:
            if user is not None:
                client.chat_postEphemeral(channel=channel, user=user, text=text[:3900], blocks=blocks)
                return None
            resp = client.chat_postMessage(channel=channel, text=text[:3900], blocks=blocks, thread_ts=thread_ts)
            return resp.get("ts")
        except SlackApiError as exc:
            log.warning("Slack refused a message to %s: %s", channel, exc.response.get("error"))
            return None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - request lines go to our logger
        log.debug("http %s", format % args)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def make_http_server(app: App, *, host: str, port: int, path: str = "/slack/events", background: bool = True) -> WSGIServer:
    """Serve Slack's signed HTTP requests for `app` on host:port (POST `path`; GET /healthz answers ok).

    With `background`, serving starts on a daemon thread and the caller stops it
    with `server.shutdown()`; otherwise the caller runs `server.serve_forever()`.
    """
    handler = SlackRequestHandler(app)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        return handler(environ, start_response)

    server = make_server(host, port, wsgi, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    if background:
        threading.Thread(target=server.serve_forever, name="slack-http", daemon=True,
                         kwargs={"poll_interval": 0.05}).start()   # shutdown() returns within this
    return server


def _headline(reply: ChatReply) -> str:
    parts = []
    if reply.done:
        parts.append(f"{len(reply.done)} done")
    if reply.refused:
        parts.append(f"{len(reply.refused)} refused")
    if reply.pending:
        parts.append(f"{len(reply.pending)} waiting for approval")
    if reply.failed:
        parts.append(f"{len(reply.failed)} failed")
    return ", ".join(parts) or (reply.text.splitlines()[0] if reply.text else "nothing to do")
