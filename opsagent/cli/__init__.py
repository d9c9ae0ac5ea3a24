"""The `opsagent` command. Thin: each subcommand lives in its own module here."""

from __future__ import annotations

import typer

from opsagent import __version__
from opsagent.cli.errors import CommandGroup

app = typer.Typer(
    name="opsagent",
    cls=CommandGroup,
    help=(
        "Agentic cluster-ops controller for GPU clusters. The agent does the toil "
        "(reconcile, wake, free idle GPUs, retry rollouts) inside human-written policy; "
        "people approve the architecture.\n\nExample: opsagent demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def _register() -> None:
    # One line per command module; each module exposes `register(app)`.
    from opsagent.cli import agent, approvals, audit, chat, daemon, demo, doctor, eval, playbook, policy, sim, slack, wake_proxy

    for module in (sim, policy, playbook, audit, approvals, doctor, wake_proxy, chat, slack, agent, daemon, demo, eval):
        module.register(app)


_register()


def main() -> None:
    app()
