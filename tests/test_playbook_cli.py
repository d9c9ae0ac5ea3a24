"""`opsagent playbook lint` and `opsagent playbook show`, run through the real command."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opsagent.cli import app

SHIPPED = str(Path(__file__).resolve().parent.parent / "playbooks")
runner = CliRunner()


def test_lint_shipped_is_clean_and_json_says_so():
    result = runner.invoke(app, ["playbook", "lint", SHIPPED, "-o", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["errors"] == 0


def test_lint_errors_exit_non_zero_with_file_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n    wen: x\n")
    result = runner.invoke(app, ["playbook", "lint", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'bad.yaml'}:5:5:" in result.stdout and "unknown field 'wen'" in result.stdout
    as_json = json.loads(runner.invoke(app, ["playbook", "lint", str(tmp_path), "-o", "json"]).stdout)
    assert as_json["ok"] is False
    assert {"line": 5, "column": 5, "field": "playbooks[0].wen"}.items() <= as_json["issues"][0].items()


def test_lint_strict_fails_on_warnings(tmp_path):
    (tmp_path / "one.yaml").write_text("playbooks:\n  - name: a\n    on: idle_gpu\n    guidance: g\n")
    assert runner.invoke(app, ["playbook", "lint", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["playbook", "lint", str(tmp_path), "--strict"]).exit_code == 1


def test_lint_missing_directory_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["playbook", "lint", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "not a directory" in " ".join(result.stderr.split())


def test_show_lists_playbooks_in_order():
    result = runner.invoke(app, ["playbook", "show", "rollout_failed", "--playbooks", SHIPPED, "-o", "json"])
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(result.stdout)]
    assert names == ["rollout-protected", "rollout-wait", "rollout-retry", "rollout-rollback", "rollout-escalate"]
    table = runner.invoke(app, ["playbook", "show", "jobs_waiting", "--playbooks", SHIPPED])
    assert "jobs-waiting-free-idle" in table.stdout and "for each details.idle_holders" in table.stdout


def test_show_unknown_kind_names_the_kinds():
    result = runner.invoke(app, ["playbook", "show", "idle", "--playbooks", SHIPPED])
    assert result.exit_code == 2
    assert "idle_gpu" in " ".join(result.stderr.split())


def test_help_ends_with_examples():
    for args in (["playbook", "--help"], ["playbook", "lint", "--help"], ["playbook", "show", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Example: opsagent playbook" in result.stdout


def test_docs_cover_every_finding_kind_and_command():
    from opsagent.model import FINDING_KINDS

    text = (Path(__file__).resolve().parent.parent / "docs" / "playbooks.md").read_text()
    for kind in FINDING_KINDS:
        assert f"`{kind}`" in text, kind
    for command in ("opsagent playbook lint", "opsagent playbook show"):
        assert command in text


def test_lint_warns_about_a_folder_with_no_playbooks_and_strict_fails(tmp_path):
    from typer.testing import CliRunner

    from opsagent.cli import app

    plain = CliRunner().invoke(app, ["playbook", "lint", str(tmp_path)])
    strict = CliRunner().invoke(app, ["playbook", "lint", str(tmp_path), "--strict"])
    assert plain.exit_code == 0 and "no playbook files here" in plain.output
    assert strict.exit_code == 1
