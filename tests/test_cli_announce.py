"""Which policies a command read, on stderr: always when it fell back to the user config or the shipped
defaults (that can surprise), only with `-v` / OPSAGENT_VERBOSE when it is the folder given or ./policies
(as kubectl, nothing extra by default), and never on stdout, so `-o json` stays parseable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.test_cli_get import REPO, run


def test_a_fallback_to_the_shipped_policies_is_always_said(tmp_path: Path) -> None:
    out = run("policy", "lint", "-o", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ok"] is True
    said = [line for line in out.stderr.splitlines() if line.startswith("policies:")]
    assert len(said) == 1 and "shipped with opsagent" in said[0] and "files)" in said[0]


def test_a_fallback_to_the_user_config_is_said(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / ".config" / "opsagent" / "policies")
    out = run("policy", "lint", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"policies: {tmp_path / '.config' / 'opsagent' / 'policies'} (user config, " in out.stderr


def test_the_expected_folder_is_said_only_when_verbose(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    count = len(list((tmp_path / "policies").glob("*.y*ml")))
    quiet = run("policy", "lint", cwd=tmp_path)
    assert quiet.returncode == 0 and "policies:" not in quiet.stderr
    for loud in (run("-v", "policy", "lint", cwd=tmp_path), run("policy", "lint", cwd=tmp_path, env={"OPSAGENT_VERBOSE": "1"})):
        assert loud.returncode == 0, loud.stderr
        assert f"policies: policies (./policies, {count} files)" in loud.stderr
        assert loud.stdout == quiet.stdout
