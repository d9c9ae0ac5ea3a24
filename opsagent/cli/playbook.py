"""`opsagent playbook`: check and read the playbook files.

Thin: `lint` calls `lint_playbooks` and prints each problem as
file:line:column; `show` loads the playbooks and prints those for one finding
kind in the order they are tried. Neither touches a cluster.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from opsagent.cli.common import Output, OutputOpt, PlaybooksOpt, console, fail, print_json
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
    output: Output = OutputOpt,
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
    if output.data:
        print_json({"ok": not failed, "errors": len(errors), "warnings": len(warnings),
                    "issues": [i.as_dict() for i in issues]})
    else:
        for issue in issues:
            colour = "red" if issue.level == "error" else "yellow"
            console.print(f"[{colour}]{escape(str(issue))}[/]", highlight=False, soft_wrap=True)
        files = len([p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")])
        console.print(f"{files} file(s): {len(errors)} error(s), {len(warnings)} warning(s)", highlight=False)
    if failed:
        raise typer.Exit(1)


@playbook_app.command("show")
def show_cmd(
    kind: str = typer.Argument(..., help=f"Finding kind: {', '.join(FINDING_KINDS)}."),
    playbooks: Path = PlaybooksOpt,
    output: Output = OutputOpt,
) -> None:
    """Show the playbooks for one finding kind, in the order they are tried.

    Example: opsagent playbook show rollout_failed --playbooks playbooks/
    """
    if kind not in FINDING_KINDS:
        fail(f"unknown finding kind {kind!r}", hint=f"use one of: {', '.join(FINDING_KINDS)}")
    try:
        loaded = load_playbooks(playbooks)
    except PlaybookError as exc:
        fail(f"playbooks in {playbooks} do not load:\n{exc}", hint=f"run: opsagent playbook lint {playbooks}")
    found = loaded.for_kind(kind)
    if output.data:
        print_json([{**p.model_dump(mode="json"), "source": p.source} for p in found])
        return
    if not found:
        fail(f"no playbook answers {kind} findings in {playbooks}", hint="see the playbooks shipped in playbooks/", code=1)
    for p in found:
        console.print(f"[bold]{escape(p.name)}[/]  [dim]{escape(p.source)}[/]", highlight=False)
        console.print(f"  when:   {escape(p.when or '(always)')}", highlight=False)
        for step in p.steps:
            loop = f" for each {step.for_each}" if step.for_each else ""
            console.print(f"  step:   {step.tool}{loop} {escape(str(step.args))}", highlight=False)
        if not p.steps:
            console.print("  step:   (none: wait)", highlight=False)
        console.print(f"  verify: {escape(p.verify or '(finding closed)')}", highlight=False)
        console.print(f"  retry:  {p.retry.max_attempts} attempt(s), backoff {p.retry.backoff}", highlight=False)
        console.print("  guidance:", highlight=False)
        for line in p.guidance.strip().splitlines():
            console.print(f"    {escape(line)}", highlight=False)
        console.print()


def register(app: typer.Typer) -> None:
    app.add_typer(playbook_app, name="playbook")
