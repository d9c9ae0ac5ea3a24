"""Shipped files and starter files: what an installed opsagent finds without the source tree.

Promises tried here: the shipped policies, playbooks and eval scenarios are
found through one place (`opsagent.shipped`), and an installed layout
(`opsagent/defaults/`) wins over the checkout; `opsagent init` writes starter
policies that lint clean, never overwrites an edited file unless --force, and
refuses a folder whose parent does not exist. (The wheel itself is built,
installed and run from an empty folder by .ci/wheel-smoke in `make test`.)
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opsagent import shipped
from opsagent.cli import app
from opsagent.policy import load_policy
from tools import risk_table


def test_the_checkout_is_the_shipped_root_here() -> None:
    root = shipped.root()
    assert (root / "policies" / "default.yaml").is_file()
    assert (root / "playbooks").is_dir() and any((root / "evals" / "scenarios").glob("*.yaml"))


def test_an_installed_layout_wins(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "defaults" / "policies").mkdir(parents=True)
    monkeypatch.setattr(shipped, "_INSTALLED", tmp_path / "defaults")
    assert shipped.root() == tmp_path / "defaults"
    assert shipped.path("evals", "scenarios") == tmp_path / "defaults" / "evals" / "scenarios"


def test_init_writes_starters_that_lint_and_keeps_edits(tmp_path: Path) -> None:
    target = tmp_path / "ops"
    first = CliRunner().invoke(app, ["init", str(target), "-o", "json"])
    assert first.exit_code == 0, first.output
    written = json.loads(first.stdout)["written"]
    assert str(target / "policies" / "default.yaml") in written and any("/playbooks/" in p for p in written)
    assert load_policy(target / "policies", tool_risks=risk_table()).rules
    edited = target / "policies" / "default.yaml"
    edited.write_text(edited.read_text() + "\n# our own edit\n")
    again = json.loads(CliRunner().invoke(app, ["init", str(target), "-o", "json"]).stdout)
    assert again["written"] == [] and str(edited) in again["kept"]
    assert edited.read_text().endswith("# our own edit\n")
    forced = json.loads(CliRunner().invoke(app, ["init", str(target), "--force", "-o", "json"]).stdout)
    assert str(edited) in forced["written"] and "# our own edit" not in edited.read_text()


def test_init_refuses_a_folder_whose_parent_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "missing" / "ops")])
    assert result.exit_code == 2 and "parent does not exist" in result.output
    assert not (tmp_path / "missing").exists()
