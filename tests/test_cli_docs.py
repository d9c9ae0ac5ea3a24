"""Docs that cannot drift: every command has help with an example, and is documented.

Walks the real `opsagent` command tree (groups and their subcommands), asks each
for `--help`, and checks that the help ends with an example and that the
command's name appears in README.md or the docs folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from opsagent.cli import app

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    out: list[tuple[str, ...]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "list_commands"):  # groups, the lazy top level included
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), path + (name,))
        else:
            out.append(path)

    walk(root, ())
    return sorted(out)


def _docs_text() -> str:
    parts = [(REPO / "README.md").read_text()]
    parts += [p.read_text() for p in sorted((REPO / "docs").glob("*.md"))]
    evals_readme = REPO / "evals" / "README.md"
    if evals_readme.exists():
        parts.append(evals_readme.read_text())
    return "\n".join(parts)


COMMANDS = _commands()


def test_the_command_tree_is_not_empty():
    tops = {c[0] for c in COMMANDS}
    assert {"sim", "policy", "audit", "approvals", "ask", "wake-proxy"} <= tops


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "example" in result.output.lower(), f"`opsagent {' '.join(path)} --help` shows no example"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_is_documented(path):
    text = _docs_text()
    spelled = "opsagent " + " ".join(path)
    assert spelled in text, f"`{spelled}` is not mentioned in README.md, docs/ or evals/README.md"
