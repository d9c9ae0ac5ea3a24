"""Docs that cannot drift: every command has help with an example, and is documented.

Walks the real `opsagent` command tree (groups and their subcommands), asks each
for `--help`, and checks that the help ends with an example and that the
command's name appears in README.md or the docs folder. The synopses in the
docs (`opsagent …` lines of ```text blocks) name only options the command has,
and where they list an option's values (`-o table|json`), values it accepts.
"""

from __future__ import annotations

import re
from enum import Enum
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


def _synopses() -> list[tuple[str, str]]:
    """(where, synopsis) for each `opsagent …` line of a ```text block, its indented continuation lines
    joined and `# …` comments dropped."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in re.finditer(r"^```text\n(.*?)^```", text, re.S | re.M):
            first = text[: block.start()].count("\n") + 2
            lines = block.group(1).splitlines()
            for i, line in enumerate(lines):
                if not line.startswith("opsagent "):
                    continue
                parts = [line]
                for more in lines[i + 1:]:
                    if not more.startswith(" ") or not more.strip():
                        break
                    parts.append(more)
                spelled = " ".join(part.split("#", 1)[0] for part in parts)
                found.append((f"{path.relative_to(REPO)}:{first + i}", " ".join(spelled.split())))
    return found


SYNOPSES = _synopses()


def test_docs_have_synopses() -> None:
    assert len(SYNOPSES) >= 15


@pytest.mark.parametrize("where,synopsis", SYNOPSES, ids=[w for w, _ in SYNOPSES])
def test_each_synopsis_names_options_the_command_has(where: str, synopsis: str) -> None:
    cmd = typer.main.get_command(app)
    words = synopsis.split()[1:]
    while words and hasattr(cmd, "get_command") and cmd.get_command(None, words[0]) is not None:
        cmd = cmd.get_command(None, words.pop(0))
    assert not hasattr(cmd, "list_commands"), f"{where}: `{synopsis}` names no command"
    params = {opt: p for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    for option, values in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)(?:[ =]([\w:-]+(?:\|[\w:-]+)+))?", synopsis):
        assert option in params, f"{where}: `{synopsis}` names {option}, which `{cmd.name} --help` does not have"
        kind = params[option].type_descriptor.annotation
        choices = [str(member.value) for member in kind] if isinstance(kind, type) and issubclass(kind, Enum) else None
        if values and choices:
            unknown = set(values.split("|")) - {str(c) for c in choices}
            assert not unknown, f"{where}: {option} {values}: {sorted(unknown)} not among {list(choices)}"
