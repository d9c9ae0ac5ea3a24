"""The `opsagent` command. Thin: each subcommand lives in its own module here.

Command modules are imported only when their command runs: `opsagent --help`
lists names and one-line summaries from the table below without importing
the policy engine, the audit store or the agent, so chat-ops commands start
at once. A test checks that the table matches what the modules register.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from opsagent import __version__
from opsagent.cli.errors import CommandGroup

# name -> (module under opsagent.cli, one-line summary shown by `opsagent --help`), in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "get": ("get", "List what opsagent sees: workloads, GPUs, nodes, findings, approvals, runs."),
    "init": ("init", "Write starter policies and playbooks to edit."),
    "sim": ("sim", "Run a simulated GPU cluster scenario and show, step by step, GPUs held, busy and idle."),
    "policy": ("policy", "Check and explain the policy files that bound what the agent may do."),
    "playbook": ("playbook", "Check and read playbooks: the human-written procedure per finding kind."),
    "audit": ("audit", "Read, search, export and verify the audit log."),
    "approvals": ("approvals", "Decide on calls the policy sent to people."),
    "doctor": ("doctor", "Check what a new install needs (cluster, RBAC, Ollama, Prometheus, Slack) and how to fix it."),
    "wake": ("wake", "Wake a workload for a fixed time (--for 2h); the daemon puts it back to sleep after."),
    "wake-proxy": ("wake_proxy", "Reverse proxy in front of workloads that may be scaled to zero."),
    "ask": ("chat", "Send one chat message as ACTOR and print the reply."),
    "chat": ("chat", "An interactive chat session as ACTOR."),
    "mcp": ("mcp", "Serve the tools over MCP (stdio or HTTP) to an assistant, every call through the gate."),
    "slack": ("slack", "Run the Slack app: /ops TEXT and @-mentions as the mapped actor, approval buttons."),
    "agent": ("agent", "The agent loop: plan, act through the gate, verify."),
    "daemon": ("daemon", "Run the reconcile loop: observe, detect, plan, act through the gate, verify."),
    "demo": ("demo", "Run the daemon over a simulated day of the demo GPU cluster and compare with no agent."),
    "eval": ("eval", "Score the agent on simulated incidents, side by side with the do-nothing baseline."),
}

_loaded: dict[str, TyperGroup] = {}


def load_module(module: str) -> TyperGroup:
    """The click commands one command module registers (imported on first use)."""
    if module not in _loaded:
        sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

        @sub.callback()
        def _group() -> None:  # a callback makes typer build a group even for a single command
            pass

        importlib.import_module(f"opsagent.cli.{module}").register(sub)
        group = typer.main.get_command(sub)
        assert isinstance(group, TyperGroup)
        for name, command in group.commands.items():
            give_envvars(command, [name])
        _loaded[module] = group
    return _loaded[module]


def envvar_for(path: list[str], option: Any) -> str:
    """OPSAGENT_<COMMAND>_<SUBCOMMAND>_<OPTION>: the variable of an option that names none itself."""
    flag = max(option.opts, key=len).lstrip("-")
    return "_".join(["OPSAGENT", *path, flag]).upper().replace("-", "_")


def give_envvars(command: Any, path: list[str]) -> None:
    """Every option can be set from the environment: an option without a variable of its own gets `envvar_for`'s
    (shown in --help like the others). Flags take 1/true/yes or 0/false/no."""
    for sub_name, sub in (getattr(command, "commands", None) or {}).items():
        give_envvars(sub, [*path, sub_name])
    for param in command.params:
        if isinstance(param, TyperOption) and not param.envvar and not param.hidden and param.name != "help":
            param.envvar = envvar_for(path, param)
            param.show_envvar = True
    own_params = command.get_params

    def get_params(ctx: Any) -> list[Any]:   # --help is added here, after the command is built
        return plain_flags(own_params(ctx))
    command.get_params = get_params
    command.format_help = plain_when_piped(command, command.format_help)


def plain_when_piped(command: Any, format_help: Any) -> Any:
    """--help as rich panels on a terminal, as click's plain text when piped (no box drawing in `| less`)."""
    def formatted(ctx: Any, formatter: Any) -> None:
        import sys

        mode = getattr(command, "rich_markup_mode", None)
        if mode is None or sys.stdout.isatty():
            return format_help(ctx, formatter)
        command.rich_markup_mode = None
        try:
            return format_help(ctx, formatter)
        finally:
            command.rich_markup_mode = mode
    return formatted


def plain_flags(params: list[Any]) -> list[Any]:
    """A flag takes no value: show no `<bool>` metavar for it in --help."""
    for param in params:
        if getattr(param, "is_flag", False) and hasattr(param, "metavar"):
            param.metavar = ""
    return params


class LazyGroup(CommandGroup):
    """The root group: imports a command's module only when that command is asked for, and maps what escapes it."""

    _listing = False

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_flags(super().get_params(ctx))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        import sys

        if not sys.stderr.isatty():   # a usage error read by a script or a log: click's plain lines, no panel
            self.rich_markup_mode = None
        return super().main(*args, **kwargs)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        module, summary = found
        if self._listing:  # the top-level help needs names and summaries only
            return TyperCommand(name=cmd_name, callback=None, help=summary, short_help=summary)
        return load_module(module).commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            plain_when_piped(self, super().format_help)(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # A typo gets the closest names from the table, without importing every module.
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="opsagent",
    cls=LazyGroup,
    help=(
        "Agentic cluster-ops controller for GPU clusters. The agent does the toil "
        "(reconcile, wake, free idle GPUs, retry rollouts) inside human-written policy; "
        "people approve the architecture.\n\nExample: opsagent demo"
    ),
    no_args_is_help=True,
    add_completion=True,   # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    verbose: bool = typer.Option(False, "--verbose", "-v", envvar="OPSAGENT_VERBOSE", show_default=False,
                                 help="Also say on stderr which policies and playbooks were read when they are the "
                                      "ones given or ./policies (a fallback to the user config or the shipped "
                                      "defaults is always said)."),
) -> None:
    if verbose:
        from opsagent.cli import resolve

        resolve.VERBOSE[0] = True
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def main() -> None:
    app()
