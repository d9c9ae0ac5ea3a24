"""`opsagent slack`: run the Slack app (Socket Mode or signed HTTP events).

Thin: read the secrets (environment or --token-file, never flags), the user
mapping file, build the chat runtime and the Bolt app, start the approval feed
(a thread that posts pending approvals to the approvals channel and updates
decided ones), and serve. Secrets are redacted from every log line from the
moment they are read.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from opsagent.chat.secrets import SecretsError, SlackMode, install_redaction, load_secrets, uses_socket_mode
from opsagent.chat.users import UserMapError, load_user_map
from opsagent.chat.wiring import ChatRuntime, WiringError, build_runtime
from opsagent.cli.chat import ModelOpt
from opsagent.cli.model_options import BaseUrlOpt
from opsagent.cli.common import ClusterOpt, DbOpt, PlaybooksOpt, PoliciesOpt, err_console, fail

if TYPE_CHECKING:
    from opsagent.daemon.http import HealthServer
    from slack_bolt import App

    from opsagent.approvals import ApprovalQueue


def slack(
    mode: SlackMode = typer.Option(SlackMode.auto, "--mode", envvar="OPSAGENT_SLACK_MODE",
                              help="socket (needs SLACK_APP_TOKEN), http (needs SLACK_SIGNING_SECRET), or auto: socket when an app token is set."),
    port: int = typer.Option(3000, "--port", min=0, max=65535, envvar="OPSAGENT_SLACK_PORT", help="HTTP mode: port for Slack's requests (POST /slack/events)."),
    host: str = typer.Option("0.0.0.0", "--host", envvar="OPSAGENT_SLACK_HOST", help="HTTP mode: address to listen on."),
    users: Optional[Path] = typer.Option(None, "--users", envvar="OPSAGENT_SLACK_USERS",
                                         help="Slack user id → actor mapping file (YAML); default "
                                              "POLICIES/actors/slack-users.yaml inside the --policies directory."),
    approvals_channel: Optional[str] = typer.Option(None, "--approvals-channel", envvar="OPSAGENT_SLACK_APPROVALS_CHANNEL",
                                                    help="Channel id that gets approval requests with Approve / Reject buttons."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", envvar="OPSAGENT_SLACK_TOKEN_FILE",
                                              help="File with SLACK_BOT_TOKEN=..., SLACK_APP_TOKEN=..., SLACK_SIGNING_SECRET=... lines."),
    api_url: Optional[str] = typer.Option(None, "--api-url", envvar="OPSAGENT_SLACK_API_URL",
                                          help="Slack Web API base URL (default Slack's own; set for a proxy or a local fake)."),
    listen: Optional[str] = typer.Option(None, "--listen", envvar="OPSAGENT_SLACK_LISTEN",
                                         help="HOST:PORT for /healthz, /readyz and /metrics (probes in a pod)."),
    poll_seconds: float = typer.Option(10.0, "--poll-seconds", envvar="OPSAGENT_SLACK_POLL_SECONDS", min=0.05, max=3600,
                                       help="How often to look for approval requests to post to the approvals channel "
                                            "(raised by the daemon, opsagent ask or the wake proxy) and for decided ones "
                                            "whose message to update."),
    cluster: Optional[str] = ClusterOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    model: Optional[str] = ModelOpt,
    playbooks: Path = PlaybooksOpt,
    base_url: Optional[str] = BaseUrlOpt,
) -> None:
    """Run the Slack app: /ops TEXT and @-mentions as the mapped actor, approval buttons.

    With --approvals-channel, every pending approval request in the database is
    posted there with Approve / Reject buttons, whoever raised it (chat, the daemon,
    opsagent ask, the wake proxy), checked every --poll-seconds. Which message
    carries which request is kept in the database, so a restart does not post a
    request again. When a request is decided or expires, its message is updated.

    Tokens come only from the environment (SLACK_BOT_TOKEN, SLACK_APP_TOKEN,
    SLACK_SIGNING_SECRET) or --token-file, and never appear in logs or the audit log.

    Example: SLACK_BOT_TOKEN=xoxb-... SLACK_APP_TOKEN=xapp-... opsagent slack --approvals-channel C0123APPROV
    """
    try:
        secrets = load_secrets(token_file=token_file)
    except SecretsError as exc:
        fail(str(exc), hint="one NAME=value per line; names: SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET")
    install_redaction(secrets.values())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction(secrets.values())  # again, for the handler basicConfig just added
    socket = uses_socket_mode(mode, secrets)
    users = users if users is not None else Path(policies) / "actors" / "slack-users.yaml"
    try:
        user_map = load_user_map(users)
    except UserMapError as exc:
        fail(str(exc), hint="see docs/chat.md for the mapping file format")
    from opsagent.chat.slack_app import SlackSettings, SlackUnreachable, build_app, make_http_server

    from opsagent.cli.resolve import session

    cluster, db = session(cluster, db)
    try:
        runtime = build_runtime(cluster=cluster, policies=policies, db=db, model=model, playbooks=playbooks,
                                base_url=base_url, actor_resolver=user_map.resolve, watch=True)
    except WiringError as exc:
        fail(exc.message, hint=exc.hint)
    try:
        app = build_app(service=runtime.service, secrets=secrets, socket_mode=socket,
                        settings=SlackSettings(approvals_channel=approvals_channel, base_url=api_url))
    except ValueError as exc:
        runtime.close()
        fail(str(exc), hint="set the variables in the environment or pass --token-file")
    except SlackUnreachable as exc:
        runtime.close()
        fail(str(exc), hint="check the network or proxy to Slack (--api-url / OPSAGENT_SLACK_API_URL) "
                            "and that SLACK_BOT_TOKEN is a valid bot token")
    health = _serve_health(listen) if listen else None
    stop = threading.Event()
    feed_thread, feed_queue = _start_feed(app=app, runtime=runtime, db=db, channel=approvals_channel,
                                          poll_seconds=poll_seconds, stop=stop)
    try:
        if socket:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            err_console.print(f"opsagent slack: Socket Mode, {len(user_map.users)} mapped user(s), cluster {cluster}", highlight=False)
            SocketModeHandler(app, secrets.app_token).start()
        else:
            server = make_http_server(app, host=host, port=port, background=False)
            err_console.print(f"opsagent slack: HTTP mode on {host}:{server.server_port}/slack/events, "
                              f"{len(user_map.users)} mapped user(s), cluster {cluster}", highlight=False)
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if feed_thread is not None:
            feed_thread.join(timeout=30)
        if feed_queue is not None:
            feed_queue.close()
        if health is not None:
            health.stop()
        runtime.close()


def _serve_health(listen: str) -> "HealthServer":
    """Probes for the Slack app: alive while the process runs, ready once the app is built and connected."""
    from opsagent.daemon.http import HealthServer, Status
    from opsagent.daemon.metrics import Metrics

    status = Status(leader=True, last_ok=True, cycles=0)
    metrics = Metrics()
    metrics.set("opsagent_slack_up", 1)
    try:
        return HealthServer(listen, status=status, metrics=metrics).start()
    except ValueError as exc:
        fail(str(exc), hint="e.g. --listen 0.0.0.0:8081")
    except OSError as exc:
        fail(f"--listen {listen}: {exc.strerror or exc}", hint="is another process using the port?")


def _start_feed(*, app: App, runtime: ChatRuntime, db: Path, channel: Optional[str], poll_seconds: float,
                stop: threading.Event) -> tuple[Optional[threading.Thread], Optional[ApprovalQueue]]:
    """Start the approval feed thread on its own database connection; (None, None) without a channel."""
    if not channel:
        err_console.print("opsagent slack: no --approvals-channel, so only approvals asked for in Slack are posted "
                          "(to the channel where they were asked)", highlight=False)
        return None, None
    from opsagent.approvals import ApprovalQueue
    from opsagent.chat.approval_feed import ApprovalFeed, start_polling

    queue = ApprovalQueue(db, clock=runtime.clock)
    feed = ApprovalFeed(approvals=queue, client=app.client, channel=channel)
    return start_polling(feed, every_seconds=poll_seconds, stop=stop), queue


def register(app: typer.Typer) -> None:
    app.command("slack")(slack)
