"""Shared pieces of the `opsagent` command: options declared once, output, errors.

Every option is also readable from an `OPSAGENT_*` environment variable.
Commands stay thin: parse, call one library function, print. Text that comes
from users or files is escaped before rich prints it, so brackets in a path or
a message print as they are instead of being read as markup.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, get_args

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

class _Console(Console):
    """Rich for people, plain text for pipes: when stdout is not a terminal, lines are not wrapped and a rule is
    a plain `-- title --` line. Tables never come through here: opsagent.cli.output prints them as plain
    columns, terminal or not."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.is_terminal:
            kwargs.setdefault("soft_wrap", True)
        super().print(*objects, **kwargs)

    def rule(self, title: Any = "", **kwargs: Any) -> None:
        """A plain `-- title --` line when piped (no box-drawing rule)."""
        if self.is_terminal:
            return super().rule(title, **kwargs)
        from rich.text import Text

        text = title.plain if isinstance(title, Text) else Text.from_markup(str(title)).plain
        self.file.write(f"-- {text} --\n" if text else "--\n")


console = _Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error stays one line, piped or not


_FORMAT: list[str] = ["json"]   # the -o a command was given: `print_json` prints yaml when it is yaml


def remember_format(value: Any) -> Any:
    _FORMAT[0] = getattr(value, "value", value) or "json"
    return value


def _found(kind: str) -> Any:
    """Fill in the folder when none was given; a folder given is passed on as is (the command reports a bad one)."""
    def resolve(value: Path | None) -> Path:
        if value is not None:
            return value
        from opsagent.cli.resolve import folder

        return folder(None, kind)
    return resolve


_WHERE = "default: ./{0}, then ~/.config/opsagent/{0}, then the {0} shipped with opsagent"
PoliciesOpt = typer.Option(None, "--policies", envvar="OPSAGENT_POLICIES", callback=_found("policies"), show_default=False,
                           help=f"Directory of policy YAML files ({_WHERE.format('policies')}).")
PlaybooksOpt = typer.Option(None, "--playbooks", envvar="OPSAGENT_PLAYBOOKS", callback=_found("playbooks"), show_default=False,
                            help=f"Directory of playbook YAML files ({_WHERE.format('playbooks')}).")

# Numeric limits, one place: an id or a row count above SQLite's largest integer cannot exist, and
# simulated spans longer than a year are typos that would only run for hours.
MAX_ID = 2**63 - 1
MAX_ROWS = 1_000_000
MAX_SIM_HOURS = 24 * 366


def id_argument(what: str) -> Any:
    """A positional row id: a whole number from 1 to SQLite's largest integer (else exit 2 naming it)."""
    return typer.Argument(..., min=1, max=MAX_ID, help=f"{what} id.")


DB_META = "opsagent.db"   # ctx.meta key: the --db a command was given, so an error met later can name it
DB_DEFAULTED: set[Path] = set()   # the --db values filled in because none was given (see resolve.writable_db)


def _remember_db(ctx: typer.Context, value: Path | None) -> Path | None:
    DB_DEFAULTED.clear()
    if value is None:
        from opsagent.cli.resolve import default_db

        value = default_db()
        DB_DEFAULTED.add(value)
    ctx.meta[DB_META] = value
    return value


DbOpt = typer.Option(None, "--db", envvar="OPSAGENT_DB", callback=_remember_db, show_default=False,
                     help="SQLite file for audit log, approvals and agent checkpoints "
                          "(default: ~/.local/state/opsagent/opsagent.db; on the simulator a temporary file).")
ClusterOpt = typer.Option(None, "--cluster", envvar="OPSAGENT_CLUSTER", show_default=False,
                          help="sim:SCENARIO (builtin name or file; fresh each process), kube or kube:CONTEXT "
                               "(default: the current kubeconfig context, as kubectl).")


def choices(name: str, literal: Any) -> type[Enum]:
    """A str Enum of a Literal type's values, so typer offers them as choices and refuses others (exit 2)."""
    return Enum(name, {value: value for value in get_args(literal)}, type=str)  # type: ignore[return-value]


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """The record as JSON, or as YAML when the command was given `-o yaml`."""
    from opsagent.cli.output import Format, print_data

    print_data(value, Format.yaml if _FORMAT[0] == "yaml" else Format.json)


def current_context() -> Any:
    """The running command's click context, or None outside a command."""
    try:   # typer carries its own copy of click: the running command's context is in that copy
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover
        from click import get_current_context  # type: ignore[no-redef]  # a typer that uses click itself
    return get_current_context(silent=True)


def _name_the_variable(message: str) -> str:
    """`--since ...` -> `--since (from OPSAGENT_AUDIT_LIST_SINCE) ...` when that option's value came from the
    environment: a user who never typed --since must be told where the bad value is."""
    import re

    flag = re.match(r"--[a-z][a-z0-9-]*", message)
    ctx = current_context()
    if flag is None or ctx is None:
        return message
    for param in ctx.command.params:
        if flag.group() in getattr(param, "opts", ()) and param.name \
                and getattr(ctx.get_parameter_source(param.name), "name", "") == "ENVIRONMENT":
            var = param.envvar if isinstance(param.envvar, str) else "/".join(param.envvar or ())
            return f"{flag.group()} (from {var}){message[flag.end():]}"
    return message


def fail(message: str, *, hint: str | None = None, code: int = 2) -> NoReturn:
    """Print a clear error (and how to fix it) on stderr and exit non-zero. An error about an option set from
    its environment variable names the variable."""
    message = _name_the_variable(message)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # one line, never wrapped
    if hint:
        err_console.print(f"[dim]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
