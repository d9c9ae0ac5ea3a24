"""`opsagent ask` (one message) and `opsagent chat` (an interactive session).

Thin: resolve the actor, build the chat runtime, hand each line to
`ChatService.handle`, print the reply. With `--cluster sim:SCENARIO` the
simulated cluster starts fresh in every process; the audit database and the
approval queue (`--db`) persist. Nothing here decides or executes anything.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from opsagent.approvals import MACHINE_ACTORS
from opsagent.chat.service import ChatReply
from opsagent.chat.wiring import ChatRuntime, WiringError, build_runtime
from opsagent.cli.common import DbOpt, Output, OutputOpt, PlaybooksOpt, PoliciesOpt, console, fail, print_json

ClusterOpt = typer.Option("sim:demo", "--cluster", envvar="OPSAGENT_CLUSTER",
                          help="sim:SCENARIO (builtin name or file; fresh each process), kube or kube:CONTEXT.")
ActorOpt = typer.Option(None, "--as", envvar="OPSAGENT_ACTOR", help="Actor to act as; default the OS user.")
ModelOpt = typer.Option(None, "--model", envvar="OPSAGENT_MODEL",
                        help="Ollama model for free-form questions (e.g. qwen3:8b); without it only the command grammar works.")
EXIT_WORDS = {"exit", "quit", ":q", "bye"}


def resolve_actor(value: str | None) -> str:
    """--as, then OPSAGENT_ACTOR (typer reads it), then the OS user; never a machine actor."""
    actor = (value or "").strip() or getpass.getuser()
    if not actor or any(c.isspace() for c in actor):
        fail(f"--as {actor!r} is not an actor name", hint="use a single word, e.g. --as alice")
    if actor in MACHINE_ACTORS:
        fail(f"--as {actor} (or OPSAGENT_ACTOR={actor}): {actor!r} is opsagent's own machine actor; "
             "people cannot chat as it", hint="act as yourself, e.g. --as alice; the policy decides what you may do")
    return actor


def open_runtime(cluster: str, policies: Path, db: Path, model: str | None, playbooks: Path) -> ChatRuntime:
    try:
        return build_runtime(cluster=cluster, policies=policies, db=db, model=model, playbooks=playbooks)
    except WiringError as exc:
        fail(exc.message, hint=exc.hint)


def print_reply(reply: ChatReply, output: Output, *, lines: bool = False) -> None:
    """Text for people; JSON for scripts (one compact document per line in a chat session)."""
    if output == Output.json:
        data = reply.model_dump(mode="json", exclude={"approvals"})
        if lines:
            sys.stdout.write(json.dumps(data, default=str) + "\n")
            sys.stdout.flush()
        else:
            print_json(data)
        return
    style = {"done:": "green", "refused:": "red", "failed:": "red", "waiting": "yellow"}
    for line in reply.text.splitlines():
        color = next((c for prefix, c in style.items() if line.startswith(prefix)), None)
        console.print(f"[{color}]{line}[/]" if color else line, highlight=False, markup=color is not None, soft_wrap=True)


def ask(
    text: str = typer.Argument(..., help="What to do or ask, e.g. \"scale inference/llm to 2\"."),
    actor: Optional[str] = ActorOpt,
    output: Output = OutputOpt,
    cluster: str = ClusterOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    model: Optional[str] = ModelOpt,
    playbooks: Path = PlaybooksOpt,
) -> None:
    """Send one chat message as ACTOR and print the reply.

    The command runs through the policy gate like every other action: the reply
    says what was done, what was refused and by which rule, and what waits for
    approval (with its id and who may approve).

    A write the model proposes for a free-form question (--model) does not run:
    the reply shows it as "proposed #N", and only the same person's later
    `opsagent ask "confirm N"` runs it (or "refuse N" drops it), through the
    gate, before it expires.

    Example: opsagent ask "scale inference/llm to 2" --as carol -o json
    """
    who = resolve_actor(actor)
    runtime = open_runtime(cluster, policies, db, model, playbooks)
    try:
        reply = runtime.service.handle(text, actor=who, channel="cli")
    finally:
        runtime.close()
    print_reply(reply, output)
    if reply.refused or reply.failed:
        raise typer.Exit(1)


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
    output: Output = OutputOpt,
    cluster: str = ClusterOpt,
    policies: Path = PoliciesOpt,
    db: Path = DbOpt,
    model: Optional[str] = ModelOpt,
    playbooks: Path = PlaybooksOpt,
) -> None:
    """An interactive chat session as ACTOR ('exit', 'quit' or Ctrl-D ends it).

    Reads lines from the terminal with history, or from stdin when it is not a
    terminal, so a scripted session can be piped in. The simulated cluster lives
    as long as the session does. Writes the model proposes wait for your
    "confirm N", as in opsagent ask.

    Example: printf 'show gpus\\nwake chat/chat-ui\\n' | opsagent chat --as carol
    """
    who = resolve_actor(actor)
    runtime = open_runtime(cluster, policies, db, model, playbooks)
    interactive = sys.stdin.isatty()
    if interactive and output != Output.json:
        console.print(f"opsagent chat as [bold]{who}[/] on {cluster}; 'help' lists commands, 'exit' ends.", highlight=False)
    try:
        for line in _lines(interactive):
            text = line.strip()
            if not text:
                continue
            if text.lower() in EXIT_WORDS:
                break
            if not interactive and output != Output.json:
                console.print(f"ops> {text}", highlight=False, markup=False)
            print_reply(runtime.service.handle(text, actor=who, channel="cli"), output, lines=True)
    finally:
        runtime.close()


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("chat")(chat)
