"""Every data command through a pipe: plain columns, no box drawing, headers on one line, whatever COLUMNS says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOX = set("─│┌┐└┘├┤┬┴┼━┃┏┓┗┛┡┩╇╈╭╮╯╰═║")
DATA_COMMANDS = [
    "audit list", "audit search scale", "audit show 1", "audit stats", "approvals list", "agent waiting",
    "policy lint", "policy show", "get workloads", "get approvals",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("pipes")
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_") and k != "KUBECONFIG"}
    base.update({"HOME": str(home), "PYTHONPATH": str(REPO), "COLUMNS": "50", "OPSAGENT_CLUSTER": "sim:demo",
                 "OPSAGENT_DB": str(home / "d.db")})
    subprocess.run([sys.executable, "-m", "opsagent", "ask", "scale inference/llm to 2", "--as", "bob"], env=base,
                   cwd=home, capture_output=True, timeout=120, check=True)
    return base


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_piped_output_is_plain(command: str, env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-m", "opsagent", *command.split()], env=env, cwd=env["HOME"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert not BOX & set(out.stdout), out.stdout
    lines = [line for line in out.stdout.splitlines() if line and not line.startswith("#")]
    if lines[0].isupper() and len(lines) > 1:   # a table: the header is one line, the next is a row
        assert not (lines[1].isupper() and not any(ch.isdigit() for ch in lines[1])), out.stdout
    assert "decisi" not in out.stdout.replace("decision", "")   # the word split at the terminal width, as it was


@pytest.mark.parametrize("command", ["audit list", "audit stats", "approvals list", "policy lint", "playbook lint"])
def test_yaml_is_the_json_record_and_the_variable_sets_it(command: str, env: dict[str, str]) -> None:
    import json

    import yaml

    def run(extra_env: dict[str, str], *extra: str) -> str:
        out = subprocess.run([sys.executable, "-m", "opsagent", *command.split(), *extra], env={**env, **extra_env},
                             cwd=env["HOME"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    as_json = json.loads(run({}, "-o", "json"))
    assert yaml.safe_load(run({}, "-o", "yaml")) == as_json
    assert yaml.safe_load(run({"OPSAGENT_OUTPUT": "yaml"})) == as_json
    assert not BOX & set(run({"OPSAGENT_OUTPUT": "wide"}))
