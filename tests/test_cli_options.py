"""Every command and option, walked: an example at the end of every --help, a variable for every option,
no `<bool>` metavar on flags, shell completion on, and a derived variable that really sets its option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from typer.core import TyperOption
from typer.testing import CliRunner

from opsagent.cli import COMMANDS, app, load_module

REPO = Path(__file__).resolve().parents[1]


def commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command
    for name, (module, _) in COMMANDS.items():
        yield from walk(load_module(module).commands[name], [name])


def test_every_help_ends_with_an_example() -> None:
    missing = []
    for path, command in commands():
        text = "\n".join(filter(None, [command.help, command.epilog])).strip()
        last_paragraph = text.split("\n\n")[-1].strip()
        if not last_paragraph.startswith("Example"):
            missing.append(path)
    assert missing == []


def test_every_option_has_an_environment_variable() -> None:
    missing = [f"{path} {p.opts[0]}" for path, command in commands() for p in command.params
               if isinstance(p, TyperOption) and p.name != "help" and not p.envvar]
    assert missing == []
    names = [p.envvar for _, command in commands() for p in command.params if isinstance(p, TyperOption) and p.envvar]
    assert all(str(n).startswith(("OPSAGENT_", "OLLAMA_", "SLACK_", "OPENAI_", "POD_", "KUBECONFIG", "['"))
               or isinstance(n, (list, tuple)) for n in names)


def test_flags_show_no_bool_metavar() -> None:
    runner = CliRunner()
    for args in (["--help"], ["demo", "--help"], ["daemon", "--help"], ["policy", "lint", "--help"]):
        out = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert out.exit_code == 0, out.output
        assert "<bool>" not in out.output, args


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    base.update({"HOME": str(cwd), "PYTHONPATH": str(REPO), **env})
    return subprocess.run([sys.executable, "-c", "from opsagent.cli import main; main()", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=120)


def test_a_derived_variable_sets_its_option(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    env = {"OPSAGENT_CLUSTER": "sim:demo", "OPSAGENT_DB": db}
    for _ in range(2):
        assert cli("ask", "scale inference/llm to 2", "--as", "carol", cwd=tmp_path, env=env).returncode == 0
    every = cli("audit", "list", "-o", "json", cwd=tmp_path, env=env)
    limited = cli("audit", "list", "-o", "json", cwd=tmp_path, env={**env, "OPSAGENT_AUDIT_LIST_LIMIT": "1"})
    assert every.returncode == 0 and limited.returncode == 0, limited.stderr
    assert every.stdout.count('"id"') > 1 and limited.stdout.count('"id"') == 1


def test_shell_completion_names_commands(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'opsagent'; from opsagent.cli import main; main()"],
                         env={**os.environ, "PYTHONPATH": str(REPO), "_OPSAGENT_COMPLETE": "complete_bash",
                              "COMP_WORDS": "opsagent audit li", "COMP_CWORD": "2"},
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.stdout.split() == ["list"], out.stderr


def test_durations_print_in_the_form_they_are_read() -> None:
    from opsagent.clock import format_duration, parse_duration

    assert [format_duration(s) for s in (0, 45, 90, 5400, 172800)] == ["0s", "45s", "1m30s", "1h30m", "2d"]
    assert format_duration(7384, parts=2) == "2h3m"
    for text in ("2d", "1h30m", "1m30s", "3d4h5m6s"):
        assert format_duration(parse_duration(text)) == text


def test_progress_is_silent_off_a_terminal_and_counts_on_one(monkeypatch) -> None:
    import io

    from rich.console import Console

    from opsagent.cli import common, output

    quiet = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=quiet, force_terminal=False))
    with output.progress("eval offline") as update:
        update(1, 2, "first")
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=shown, force_terminal=True, width=100))
    with output.progress("eval offline") as update:
        update(1, 2, "first")
        update(2, 2, "second")
    assert "eval offline" in shown.getvalue() and "2/2" in shown.getvalue()


def test_a_bad_value_from_a_variable_names_the_variable(tmp_path: Path) -> None:
    """A user who never typed --since or --for must be told which variable holds the bad value."""
    from opsagent.audit import AuditStore

    AuditStore(tmp_path / "x.db").close()
    since = cli("audit", "list", cwd=tmp_path, env={"OPSAGENT_DB": str(tmp_path / "x.db"),
                                                    "OPSAGENT_AUDIT_LIST_SINCE": "yesterday"})
    assert since.returncode == 2 and "Traceback" not in since.stderr
    assert "--since (from OPSAGENT_AUDIT_LIST_SINCE): cannot read 'yesterday'" in since.stderr
    span = cli("wake", "inference/llm", cwd=tmp_path, env={"OPSAGENT_CLUSTER": "sim:demo", "OPSAGENT_WAKE_FOR": "abc"})
    assert span.returncode == 2 and "--for (from OPSAGENT_WAKE_FOR) 'abc' is not a duration" in span.stderr
    typed = cli("wake", "inference/llm", "--for", "abc", cwd=tmp_path, env={"OPSAGENT_CLUSTER": "sim:demo"})
    assert typed.returncode == 2 and "--for 'abc' is not a duration" in typed.stderr   # typed: no variable named
