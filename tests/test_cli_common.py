"""`fail()` prints messages and hints exactly as given: brackets in a path or a hint are
text, not rich markup (they used to crash with MarkupError or vanish)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from opsagent.cli import app
from opsagent.cli.common import fail


def _failing_app(message: str, hint: str) -> typer.Typer:
    small = typer.Typer()

    @small.command()
    def go() -> None:
        fail(message, hint=hint)

    return small


def test_markup_like_text_in_a_message_and_hint_is_printed_as_is():
    r = CliRunner().invoke(_failing_app("cannot read [/bold]x.yaml", "risk must be one of [read, write]"), [])
    assert r.exit_code == 2
    assert "error: cannot read [/bold]x.yaml" in r.output
    assert "hint: risk must be one of [read, write]" in r.output


def test_a_scenario_path_with_a_closing_tag_is_a_clean_error():
    r = CliRunner().invoke(app, ["sim", "[/bold]x.yaml"])
    assert r.exit_code == 2, r.output
    assert "MarkupError" not in r.output and "Traceback" not in r.output
    assert "[/bold]x.yaml" in r.output


def test_a_directory_as_db_points_at_the_file_the_daemon_keeps_there(tmp_path: Path) -> None:
    """`daemon --db DIR` writes DIR/opsagent.db; the other commands refuse a directory, and say which file to name."""
    from opsagent.audit import AuditStore

    AuditStore(tmp_path / "opsagent.db").close()
    r = CliRunner().invoke(app, ["audit", "list", "--db", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.output
    assert f"pass --db {tmp_path / 'opsagent.db'}" in " ".join(r.output.split())
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(app, ["approvals", "list", "--db", str(empty)])
    assert r.exit_code == 2 and f"--db {empty / 'opsagent.db'}" in " ".join(r.output.split())
