"""`opsagent init DIR`: starter policies and playbooks for a team to edit.

Copies the policies and playbooks shipped with opsagent into DIR/policies and
DIR/playbooks. It never overwrites a file that is already there (unless
--force), so running it twice is safe, and it says what it wrote.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from opsagent import shipped
from opsagent.cli.common import fail
from opsagent.cli.output import Column, Format, FormatOpt, NoHeadersOpt, Section, emit_sections


def copy_starters(target: Path, *, force: bool) -> tuple[list[Path], list[Path]]:
    """(written, kept): the shipped policy and playbook files copied into `target`, and those left as they were."""
    written: list[Path] = []
    kept: list[Path] = []
    for kind in ("policies", "playbooks"):
        source = shipped.path(kind)
        for src in sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".md")):
            dst = target / kind / src.relative_to(source)
            if dst.exists() and not force:
                kept.append(dst)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
    return written, kept


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_command(
        directory: Path = typer.Argument(Path("."), help="Where to write policies/ and playbooks/ (created if missing; its parent must exist)."),
        force: bool = typer.Option(False, "--force", envvar="OPSAGENT_INIT_FORCE", show_default=False,
                                   help="Overwrite files that are already there."),
        output: Format = FormatOpt,
        no_headers: bool = NoHeadersOpt,
    ) -> None:
        """Write starter policies and playbooks to edit: a copy of the ones opsagent ships, which govern the
        demo cluster's namespaces. Edit the scope, intents, rules and groups for your cluster, then check
        them with `opsagent policy lint DIR/policies`. Existing files are kept unless --force.

        One row per file, `wrote` or `kept`; `-o name` prints `file/PATH` lines (wide is the same as table).

        Exit codes: 0 when the files are in place; 2 when DIR cannot be written.

        Example: opsagent init ./ops && opsagent policy lint ./ops/policies
        """
        usable = directory.is_dir() if directory.exists() else directory.parent.is_dir()
        if not usable:
            fail(f"{directory}: not a directory, or its parent does not exist", hint="pick a folder to create or an existing one")
        try:
            written, kept = copy_starters(directory, force=force)
        except OSError as exc:
            fail(f"cannot write to {directory}: {exc.strerror or exc}", hint="check the folder's permissions")
        files = [("wrote", p) for p in written] + [("kept", p) for p in kept]
        emit_sections([Section(files, FILE_COLUMNS, "file", lambda f: f[1])], output, headers=not no_headers,
                      record={"written": [str(p) for p in written], "kept": [str(p) for p in kept]},
                      notes=[*(["kept files were already there; --force overwrites them"] if kept else []),
                             f"next: edit {directory / 'policies'}, then run: opsagent policy lint {directory / 'policies'}"])


FILE_COLUMNS = [Column("action", lambda f: f[0]), Column("path", lambda f: f[1])]
