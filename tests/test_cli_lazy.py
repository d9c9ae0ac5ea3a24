"""The command table behind `opsagent --help`, and start-up that imports only what a command needs.

Promises tried here: the one-line summaries `--help` shows without importing
the command modules name exactly the commands those modules register (none
missing, none stale); `opsagent --help` imports neither the policy engine,
the audit store nor the agent; a command imports its own module only; a typo
gets the closest command names.
"""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from opsagent.cli import COMMANDS, app, load_module


def test_the_table_names_exactly_the_commands_the_modules_register() -> None:
    registered = {}
    for module in sorted({m for m, _ in COMMANDS.values()}):
        for name in load_module(module).commands:
            registered[name] = module
    assert registered == {name: module for name, (module, _) in COMMANDS.items()}


def _imported_after(args: list[str]) -> set[str]:
    code = ("import sys, json\nfrom opsagent.cli import main\nsys.argv = ['opsagent', *json.loads(sys.argv[1])]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('\\nMODULES=' + json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, timeout=60)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("MODULES=")][-1]
    return set(json.loads(line[len("MODULES="):]))


def test_top_level_help_imports_no_command_module() -> None:
    loaded = _imported_after(["--help"])
    heavy = {"opsagent.policy", "opsagent.audit", "opsagent.agent", "langgraph", "sqlite_utils", "kubernetes", "numpy"}
    assert heavy & loaded == set()
    support = {"opsagent.cli.errors", "opsagent.cli.common", "opsagent.cli.output"}  # error mapping, shared options, formats
    assert not [m for m in loaded if m.startswith("opsagent.cli.") and m not in support]


def test_a_command_imports_its_own_module_and_not_the_others() -> None:
    loaded = _imported_after(["audit", "--help"])
    assert "opsagent.cli.audit" in loaded
    assert {"opsagent.cli.eval", "opsagent.cli.daemon", "opsagent.cli.slack", "langgraph", "numpy"} & loaded == set()


def test_a_mistyped_command_names_the_closest_ones() -> None:
    result = CliRunner().invoke(app, ["adit", "list"])
    assert result.exit_code == 2
    assert "No such command 'adit'" in result.output and "'audit'" in result.output
