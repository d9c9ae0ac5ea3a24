"""`opsagent playbook`: check and read the playbook files.

Thin: `lint` calls `lint_playbooks` and prints each problem as
file:line:column; `show` loads the playbooks and prints those for one finding
kind in the order they are tried. Neither touches a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from opsagent.cli.common import PlaybooksOpt, fail
from opsagent.cli.output import (PROBLEM_COLUMNS, Column, Format, FormatOpt, LintOutputOpt, NoHeadersOpt, Section, emit,
                                 emit_sections)
from opsagent.clock import format_duration
from opsagent.model import FINDING_KINDS
from opsagent.playbooks import PlaybookError, lint_playbooks, load_playbooks

playbook_app = typer.Typer(
    name="playbook",
    help="Check and read playbooks: the human-written procedure per finding kind.\n\n"
         "Example: opsagent playbook lint playbooks/",
    no_args_is_help=True,
)


def _playbooks(value: Path | None) -> Path:
    from opsagent.cli.resolve import folder

    return folder(value, "playbooks")


@playbook_app.command("lint")
def lint_cmd(
    directory: Path = typer.Argument(None, envvar="OPSAGENT_PLAYBOOKS", callback=_playbooks, show_default=False,
                                     help="Directory of playbook YAML files (default: ./playbooks, ~/.config/opsagent/playbooks, then the shipped ones)."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors too."),
    output: Format = LintOutputOpt,
    no_headers: bool = NoHeadersOpt,
) -> None:
    """Check every playbook file: schema, CEL, templates, tool names, finding kinds.

    Exits 1 when there are errors (or warnings, with --strict).

    Example: opsagent playbook lint playbooks/ -o json
    """
    if not directory.is_dir():
        fail(f"{directory}: not a directory", hint="pass the folder that holds the playbook *.yaml files")
    issues = lint_playbooks(directory)
    errors = [i for i in issues if i.level == "error"]
    warnings = [i for i in issues if i.level != "error"]
    failed = bool(errors) or (strict and bool(warnings))
    files = len([p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")])
    emit_sections([Section(issues, PROBLEM_COLUMNS, hide_empty=True)], output, headers=not no_headers,
                  notes=[f"{files} file(s): {len(errors)} error(s), {len(warnings)} warning(s)"],
                  record={"ok": not failed, "errors": len(errors), "warnings": len(warnings),
                          "issues": [i.as_dict() for i in issues]})
    if failed:
        raise typer.Exit(1)


@playbook_app.command("show")
def show_cmd(
    kind: str = typer.Argument(..., help=f"Finding kind: {', '.join(FINDING_KINDS)}."),
    playbooks: Path = PlaybooksOpt,
    output: Format = FormatOpt,
    no_headers: bool = NoHeadersOpt,
) -> None:
    """Show the playbooks for one finding kind, in the order they are tried: the first whose `when` holds
    answers the finding. `-o wide` adds each step's arguments, where the playbook was written and its guidance for the planner (on one
    line); `-o name` prints `playbook/NAME` lines; json and yaml hold every field.

    Example: opsagent playbook show rollout_failed --playbooks playbooks/
    """
    if kind not in FINDING_KINDS:
        fail(f"unknown finding kind {kind!r}", hint=f"use one of: {', '.join(FINDING_KINDS)}")
    try:
        loaded = load_playbooks(playbooks)
    except PlaybookError as exc:
        fail(f"playbooks in {playbooks} do not load:\n{exc}", hint=f"run: opsagent playbook lint {playbooks}")
    found = loaded.for_kind(kind)
    if not found and not output.data:
        fail(f"no playbook answers {kind} findings in {playbooks}", hint="see the playbooks shipped in playbooks/", code=1)
    emit(found, PLAYBOOK_COLUMNS, output, kind="playbook", name_of=lambda p: p.name, headers=not no_headers,
         record_of=lambda p: {**p.model_dump(mode="json"), "source": p.source})


def _step(step: Any) -> str:
    return step.tool + (f" for each {step.for_each}" if step.for_each else "")


def _args(p: Any) -> str | None:
    return "; ".join(json.dumps(s.args, sort_keys=True) for s in p.steps) or None


PLAYBOOK_COLUMNS = [
    Column("name", lambda p: p.name), Column("when", lambda p: p.when or "(always)"),
    Column("steps", lambda p: "; ".join(_step(s) for s in p.steps) or "(none: wait)"),
    Column("verify", lambda p: p.verify or "(finding closed)"),
    Column("retry", lambda p: f"{p.retry.max_attempts}x/{format_duration(p.retry.backoff.total_seconds())}"),
    Column("args", _args, wide=True), Column("source", lambda p: p.source, wide=True), Column("guidance", lambda p: p.guidance, wide=True),
]


def register(app: typer.Typer) -> None:
    app.add_typer(playbook_app, name="playbook")
