"""Every data command of the app, walked: the same `-o` and `--no-headers` behaviour everywhere.

A data command is one with `-o/--output`. Each runs in-process on the simulator (`sim:demo`, a temporary
database) from an empty directory, and must: print JSON that parses with `-o json` (and YAML of the
same shape with `-o yaml`); print one `KIND/NAME` token a line with `-o name` where it offers it, or
say in its help why it does not; start with a row, not a header or title, with `--no-headers`; add
columns with `-o wide` unless its help says wide is the same as table; and print no box drawing when
piped. The directory is still empty at the end.
A new data command fails here until it is given arguments in ARGS. Every command's `--help`, piped, is
plain text too.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from typer.testing import CliRunner

from opsagent.cli import app
from tests.test_cli_options import commands

BOX = set("─│┌┐└┘├┤┬┴┼━┃┏┓┗┛┡┩╇╈╭╮╯╰═║")
NAME = re.compile(r"^[a-z][a-z-]*/\S+$")
EXPLAIN = '{"namespace": "render", "name": "render-ui"}'

# path -> arguments after the command (a function of a fresh temporary path, for commands that need their own).
ARGS: dict[str, Callable[[Path], list[str]]] = {
    "get": lambda _: ["workloads"],
    "init": lambda t: [str(t)],
    "sim": lambda _: ["demo", "--hours", "2"],
    "policy lint": lambda _: [],
    "policy show": lambda _: [],
    "policy explain": lambda _: ["--tool", "sleep_workload", "--args", EXPLAIN, "--actor", "daemon", "--channel", "daemon"],
    "playbook lint": lambda _: [],
    "playbook show": lambda _: ["idle_gpu"],
    "audit list": lambda _: [],
    "audit show": lambda _: ["1"],
    "audit search": lambda _: ["scale"],
    "audit stats": lambda _: [],
    "audit head": lambda _: [],
    "audit verify": lambda _: [],
    "approvals list": lambda _: [],
    "approvals show": lambda _: ["1"],
    "doctor": lambda _: ["--skip-cluster", "--skip-slack"],
    "wake": lambda t: ["render/render-ui", "--for", "1h", "--as", "erin", "--db", str(t / "wake.db")],
    "ask": lambda _: ["show gpus", "--as", "bob"],
    "chat": lambda _: ["--as", "bob"],
    "agent run": lambda t: ["--hours", "1", "--db", str(t / "agent.db")],
    "agent waiting": lambda _: [],
    "demo": lambda t: ["--hours", "0.5", "--offline", "--db", str(t / "demo.db")],
    "eval": lambda _: ["apiserver-503-during-retry"],
}
NO_ROWS_OK = {"policy lint", "playbook lint"}   # the shipped files have no problems: --no-headers prints nothing
DATA = sorted(path for path, command in commands() if any(p.name == "output" for p in command.params))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("walk")
    cwd = home / "cwd"
    cwd.mkdir()
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("OPSAGENT_", "SLACK_", "XDG_"))}
    env.update({"HOME": str(home), "OPSAGENT_CLUSTER": "sim:demo", "OPSAGENT_DB": str(home / "walk.db"),
                "COLUMNS": "40", "KUBECONFIG": None, "OLLAMA_HOST": None, "OPSAGENT_MODEL": None})
    before = os.getcwd()
    os.chdir(cwd)
    try:
        for seed in (["ask", "scale inference/llm to 2", "--as", "bob"], ["agent", "run", "--hours", "2"]):
            seeded = CliRunner().invoke(app, seed, env=env)   # an approval, audit rows and a waiting run to show
            assert seeded.exit_code == 0, seeded.output
        yield {"home": home, "cwd": cwd, "env": env, "runs": 0}
    finally:
        os.chdir(before)


def invoke(world: dict[str, Any], path: str, *extra: str) -> Any:
    world["runs"] += 1
    fresh = world["home"] / f"run{world['runs']}"
    fresh.mkdir()
    result = CliRunner().invoke(app, [*path.split(), *ARGS[path](fresh), *extra], env=world["env"],
                                input="show gpus\n" if path == "chat" else None)
    assert result.exit_code == 0, f"{path} {extra}: {result.output}"
    assert "Traceback" not in result.output
    assert not os.listdir(world["cwd"]), f"{path} {extra} wrote into the current directory"
    return result


def option_help(path: str, name: str) -> str:
    command = dict(commands())[path]
    return " ".join(next((p.help or "") for p in command.params if p.name == name).split())


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def headers(text: str) -> list[str]:
    """The header words of every table in `text`: the first line, and each line after a `# title`."""
    lines = [line for line in text.splitlines() if line.strip()]
    found = [i + 1 for i, line in enumerate(lines) if line.startswith("# ")] or [0]
    return [word for i in found if i < len(lines) for word in lines[i].split()]


def test_every_data_command_has_arguments_here() -> None:
    assert [path for path in DATA if path not in ARGS] == []


@pytest.mark.parametrize("path", DATA)
def test_data_command_output(path: str, world: dict[str, Any]) -> None:
    as_json = invoke(world, path, "-o", "json").stdout
    docs = [json.loads(doc) for doc in ([as_json] if path != "chat" else as_json.splitlines())]
    as_yaml = list(yaml.safe_load_all(invoke(world, path, "-o", "yaml").stdout))
    assert len(as_yaml) == len(docs) and all(type(a) is type(b) for a, b in zip(as_yaml, docs)), as_yaml

    offers = option_help(path, "output")
    if "name (one KIND/NAME per line)" in offers:
        names = rows(invoke(world, path, "-o", "name").stdout)
        assert names and all(NAME.match(n) for n in names), names
        assert len(names) == len(set(names))
    else:
        assert "no name output" in offers, f"{path}: say in --help why there is no -o name"

    table = invoke(world, path).stdout
    wide = invoke(world, path, "-o", "wide").stdout
    assert table.strip() and not BOX & set(table + wide), table + wide
    said = offers + " " + " ".join((dict(commands())[path].help or "").split())
    if "wide is the same as table" not in said:
        assert len(headers(wide)) > len(headers(table)), f"{path}: -o wide adds no column\n{table}\n{wide}"

    if any(p.name == "no_headers" for p in dict(commands())[path].params):
        lines = table.splitlines()
        header_at = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
        bare = invoke(world, path, "--no-headers").stdout.splitlines()
        if not bare and path in NO_ROWS_OK:
            return
        assert bare and not bare[0].startswith("#") and bare[0] != lines[header_at]
        assert bare[0].split()[0] == lines[header_at + 1].split()[0], f"{path}\n{table}\n---\n{bare}"
        assert lines[header_at].isupper() or not lines[header_at].islower()
        assert not any(line.startswith("#") or line == lines[header_at] for line in bare)


def test_help_through_a_pipe_is_plain_text() -> None:
    runner = CliRunner()
    for path in ["", "policy", *(p for p, _ in commands())]:
        out = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "60"})
        assert out.exit_code == 0, f"{path}: {out.output}"
        assert "Example" in out.output and not BOX & set(out.output), f"{path} --help:\n{out.output}"


def test_a_usage_error_through_a_pipe_is_plain_lines() -> None:
    out = CliRunner().invoke(app, ["policy", "lint", "-o", "name"])
    assert out.exit_code == 2 and not BOX & set(out.output), out.output
    assert "Error: Invalid value for '--output'" in out.output and "use one of: table, wide, json, yaml" in out.output
