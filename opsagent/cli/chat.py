"""`opsagent ask` (one message) and `opsagent chat` (an interactive session).

Thin: establish the actor (`opsagent.identity`: the kube credentials on a
real cluster, `--as` on the simulator), build the chat runtime, hand each line
to `ChatService.handle`, print the reply. With `--cluster sim:SCENARIO` the
simulated cluster starts fresh in every process; the audit database and the
approval queue (`--db`) persist. Nothing here decides or executes anything.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from opsagent.chat.outcome import AskOutcome, ask_outcome, model_problem
from opsagent.chat.service import ChatReply
from opsagent.chat.wiring import ChatRuntime, WiringError, build_runtime
from opsagent.cli.common import ClusterOpt, DbOpt, PlaybooksOpt, PoliciesOpt, console, err_console, fail
from opsagent.cli.model_options import BaseUrlOpt, model_option
from opsagent.cli.output import Format, print_data, record_option
from opsagent.cli.resolve import session
from opsagent.cli.whoami import ActorOpt, AsGroupOpt, bind, identify, is_kube
from opsagent.model.actor import Actor
from opsagent.model.text import safe_line

ModelOpt = model_option("Needed for free-form questions; without it only the command grammar works.")
ReplyOpt = record_option("one reply per message (in `chat`, json is one compact document a line and yaml one "
                         "document per reply)")
EXIT_WORDS = {"exit", "quit", ":q", "bye"}


def open_runtime(cluster: str, policies: Path, db: Path, model: str | None, playbooks: Path,
                 base_url: str | None = None, *, watch: bool = False) -> ChatRuntime:
    try:
        return build_runtime(cluster=cluster, policies=policies, db=db, model=model, playbooks=playbooks, base_url=base_url,
                             watch=watch)
    except WiringError as exc:
        fail(exc.message, hint=exc.hint)


def open_as(*, actor: str | None, as_group: str | None, cluster: str, policies: Path, db: Path, model: str | None,
            playbooks: Path, base_url: str | None = None, watch: bool = False) -> tuple[ChatRuntime, Actor]:
    """The chat runtime and who uses it: on the simulator `--as` is checked before anything opens; on a real
    cluster the runtime's own connection asks the API server (and impersonates, if --as is allowed).
    `cluster` and `db` are already resolved (`opsagent.cli.resolve.session`)."""
    who = None if is_kube(cluster) else identify(cluster_spec=cluster, as_user=actor, as_group=as_group)
    runtime = open_runtime(cluster, policies, db, model, playbooks, base_url, watch=watch)
    if who is None:
        who = identify(cluster_spec=cluster, cluster=runtime.cluster, as_user=actor, as_group=as_group,
                       on_error=runtime.close)
    bind(runtime.service, runtime.approvals, runtime.policy, who)
    return runtime, who
def outcome_of(runtime: ChatRuntime, reply: ChatReply, *, model: str | None) -> AskOutcome:
    """How the message ended (see opsagent.chat.outcome); with a model, why it could not serve, from the audit log."""
    problem = model_problem(runtime.store, reply.run_id) if model else None
    config = getattr(runtime.service.agent, "config", None)
    server = config.server_url if config is not None else None
    return ask_outcome(reply, model_problem=problem, server=server)


def print_reply(reply: ChatReply, output: Format, *, lines: bool = False) -> None:
    """Text for people; JSON or YAML for scripts (in a chat session one compact JSON document a line, or one
    YAML document per reply)."""
    if output.data:
        data = reply.model_dump(mode="json", exclude={"approvals"})
        if lines and output is Format.json:   # a session: one compact document a line
            sys.stdout.write(json.dumps(data, default=str) + "\n")
        else:
            sys.stdout.write("---\n" if lines else "")   # a session in yaml: one document per reply
            print_data(data, output)
        sys.stdout.flush()
        return
    style = {"done:": "green", "refused:": "red", "failed:": "red", "waiting": "yellow"}
    for line in reply.text.splitlines():
        line = safe_line(line, 100_000)
        color = next((c for prefix, c in style.items() if line.startswith(prefix)), None)
        # markup only around the line: `[...]` inside it (cluster text) is shown as written, never read as Rich markup
        console.print(f"[{color}]{escape(line)}[/]" if color else line, highlight=False, markup=color is not None,
                      soft_wrap=True)


def ask(
    text: str = typer.Argument(..., help="What to do or ask, e.g. \"scale inference/llm to 2\"."),
    actor: Optional[str] = ActorOpt,
    as_group: Optional[str] = AsGroupOpt,
    output: Format = ReplyOpt,
    cluster: Optional[str] = ClusterOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    model: Optional[str] = ModelOpt,
    playbooks: Path = PlaybooksOpt,
    base_url: Optional[str] = BaseUrlOpt,
) -> None:
    """Send one chat message as ACTOR and print the reply.

    The command runs through the policy gate like every other action: the reply
    says what was done, what was refused and by which rule, and what waits for
    approval (with its id and who may approve).

    A write the model proposes for a free-form question (--model) does not run:
    the reply shows it as "proposed #N", and only the same person's later
    `opsagent ask "confirm N"` runs it (or "refuse N" drops it), through the
    gate, before it expires.

    Who you are: on a real cluster, the user your kube credentials belong to (as
    `kubectl auth whoami` shows), with that user's cluster groups; on the
    simulator, --as (for demos).

    Exit codes: 0 the message was understood and answered; 1 it was not understood, something
    was refused or failed, or a free-form request reached no usable model (the server is named on
    stderr); 2 a bad argument or file (the database, the policy).

    Example: opsagent ask "scale inference/llm to 2" --cluster sim:demo --as carol -o json
    """
    cluster, db = session(cluster, db)
    runtime, who = open_as(actor=actor, as_group=as_group, cluster=cluster, policies=policies, db=db, model=model,
                           playbooks=playbooks, base_url=base_url)
    try:
        reply = runtime.service.handle(text, actor=who.name, channel="cli")
        outcome = outcome_of(runtime, reply, model=model)
    finally:
        runtime.close()
    print_reply(reply, output)
    if outcome.problem:
        err_console.print(f"[bold red]error:[/] {escape(outcome.problem)}", highlight=False, soft_wrap=True)
    raise typer.Exit(outcome.exit_code)


def _lines(interactive: bool):
    if not interactive:
        for line in sys.stdin:
            yield line.rstrip("\n")
        return
    try:
        import readline  # noqa: F401  (line editing and history for input())

        history = Path(os.environ.get("OPSAGENT_CHAT_HISTORY", Path.home() / ".opsagent_history"))
        try:
            readline.read_history_file(history)
        except OSError:
            pass
        readline.set_history_length(1000)
    except ImportError:
        history, readline = None, None  # type: ignore[assignment]
    try:
        while True:
            try:
                yield input("ops> ")
            except EOFError:
                console.print()
                return
    finally:
        if readline is not None and history is not None:
            try:
                readline.write_history_file(history)
            except OSError:
                pass


def chat(
    actor: Optional[str] = ActorOpt,
    as_group: Optional[str] = AsGroupOpt,
    output: Format = ReplyOpt,
    cluster: Optional[str] = ClusterOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    model: Optional[str] = ModelOpt,
    playbooks: Path = PlaybooksOpt,
    base_url: Optional[str] = BaseUrlOpt,
) -> None:
    """An interactive chat session as ACTOR ('exit', 'quit' or Ctrl-D ends it).

    Reads lines from the terminal with history, or from stdin when it is not a
    terminal, so a scripted session can be piped in. The simulated cluster lives
    as long as the session does. Who you are is established as for `opsagent ask`. Writes the model
    proposes wait for your "confirm N", as in opsagent ask.

    Example: printf 'show gpus\\nwake chat/chat-ui\\n' | opsagent chat --cluster sim:demo --as carol
    """
    cluster, db = session(cluster, db)
    runtime, who = open_as(actor=actor, as_group=as_group, cluster=cluster, policies=policies, db=db, model=model,
                           playbooks=playbooks, base_url=base_url, watch=True)
    interactive = sys.stdin.isatty()
    if interactive and not output.data:
        console.print(f"opsagent chat as [bold]{escape(who.name)}[/] ({escape(who.source)}) on {escape(cluster)}; "
                      "'help' lists commands, 'exit' ends.", highlight=False)
    try:
        for line in _lines(interactive):
            text = line.strip()
            if not text:
                continue
            if text.lower() in EXIT_WORDS:
                break
            if not interactive and not output.data:
                console.print(f"ops> {text}", highlight=False, markup=False)
            reply = runtime.service.handle(text, actor=who.name, channel="cli")
            print_reply(reply, output, lines=True)
            outcome = outcome_of(runtime, reply, model=model)
            if outcome.model_failed:   # say plainly when the model could not serve a message; the session goes on
                err_console.print(f"[bold red]error:[/] {escape(outcome.problem or '')}", highlight=False, soft_wrap=True)
    finally:
        runtime.close()


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("chat")(chat)
