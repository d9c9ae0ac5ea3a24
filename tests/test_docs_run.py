"""The shell blocks in README.md and docs/*.md are run, so what they show stays true.

Every fenced block whose info string is sh, bash, shell or console runs with
bash in its own temporary directory (parallel-safe), with `opsagent` (and the
`python` it runs on) on PATH, no kubeconfig and the repository's policies/,
playbooks/, tests/ and evals/ linked in, as in a source checkout. A block
that needs what a test cannot have (a real cluster, Slack, model servers) is
marked on the line before it with `<!-- doc-test: skip REASON -->` and skipped
with that reason. A command followed by `# → TEXT` must print TEXT.

A `console` block whose lines start with `$ ` is a transcript: each `$ ` line
(joined with its `\\` continuation lines, and a here-document's lines up to its
end word) is a command, and the lines after it,
up to the next `$ `, are the output the doc shows for it. The commands run one
after another in one shell; each must exit 0 (or N, when its last shown line is
`[exit N]`), and what it printed (stdout and stderr together) must be what is shown, line by line, whitespace-normalised and
blank lines ignored: a `…` inside a shown line matches any text, and a shown
line that is `…` alone stands for any number of lines. A command shown without
output runs, but its output is not checked. A `console` block without any `$ `
line runs as a script, like an `sh` block.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(sh|bash|shell|console)\s*$")
SKIP = re.compile(r"^<!--\s*doc-test:\s*skip\s+(.+?)\s*-->\s*$")
EXPECT = re.compile(r"\s#\s*→\s*(.+?)\s*$")
PROMPT = "$ "
ELLIPSIS = "…"
EXIT = re.compile(r"^\[exit (\d+)\]$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


class Block(NamedTuple):
    where: str  # file:line of the block's first line
    skip: str | None
    body: str
    transcript: bool


class Step(NamedTuple):
    command: str
    shown: list[str]

    def exit_code(self) -> int:
        shown = [line.strip() for line in self.shown if line.strip()]
        code = EXIT.match(shown[-1]) if shown else None
        return int(code.group(1)) if code else 0

    def output(self) -> list[str]:
        """The shown output without its `[exit N]` line (and blank lines, which do not count)."""
        shown = [line for line in self.shown if line.strip()]
        return shown[:-1] if shown and EXIT.match(shown[-1].strip()) else shown


@cache
def blocks() -> list[Block]:
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            fence = FENCE.match(lines[i])
            if fence:
                start, body = i + 1, []
                i += 1
                while i < len(lines) and not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                skip = SKIP.match(lines[start - 2]) if start >= 2 else None
                transcript = fence.group(1) == "console" and any(line.startswith(PROMPT) for line in body)
                found.append(Block(f"{path.relative_to(REPO)}:{start}", skip.group(1) if skip else None,
                                   "\n".join(body), transcript))
            i += 1
    return found


def script(body: str) -> str:
    """The block as a bash script: continuation lines joined; `cmd  # → TEXT` checks cmd's output holds TEXT."""
    out = ["set -euo pipefail"]
    for line in body.replace("\\\n", " ").splitlines():
        expect = EXPECT.search(line)
        if expect:
            command = line[: expect.start()]
            out.append(f"out=$({command}); printf '%s\\n' \"$out\"; "
                       f"grep -qF -- {shlex.quote(expect.group(1))} <<<\"$out\" || "
                       f"{{ echo 'expected: {expect.group(1)}' >&2; exit 1; }}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def transcript(body: str) -> list[Step]:
    """A console transcript as its commands, each with the output lines shown under it."""
    steps: list[Step] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith(PROMPT):
            if steps:
                steps[-1].shown.append(line)
            elif line.strip():
                raise ValueError(f"transcript line {i + 1} comes before its first `$ ` command: {line!r}")
            i += 1
            continue
        command = line[len(PROMPT):]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        heredoc = HEREDOC.search(command)
        if heredoc:
            while i + 1 < len(lines):
                i += 1
                command += "\n" + lines[i]
                if lines[i].strip() == heredoc.group(2):
                    break
        steps.append(Step(command, []))
        i += 1
    return steps


def _normal(line: str) -> str:
    return " ".join(line.split())


def _line_matches(shown: str, printed: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in shown.split(ELLIPSIS))
    return re.fullmatch(pattern, printed) is not None


def check_output(shown: list[str], printed: str) -> str | None:
    """None when `printed` is what `shown` shows (see the module's doc); otherwise what does not match."""
    want = [_normal(line) for line in shown if line.strip()]
    if not want:
        return None
    got = [_normal(line) for line in printed.splitlines() if line.strip()]

    @cache
    def fits(w: int, g: int) -> bool:  # want[w:] matches got[g:]
        if w == len(want):
            return g == len(got)
        if want[w] == ELLIPSIS:
            return any(fits(w + 1, k) for k in range(g, len(got) + 1))
        return g < len(got) and _line_matches(want[w], got[g]) and fits(w + 1, g + 1)

    if fits(0, 0):
        return None
    missing = [line for line in want if line != ELLIPSIS and not any(_line_matches(line, g) for g in got)]
    if missing:
        return f"shown but not printed: {missing[0]!r}"
    return "every shown line is printed, but not in the order or the places shown (a `…` line allows a gap)"


def transcript_script(steps: list[Step], out_dir: Path) -> str:
    """Runs each step in one shell, its output (stdout and stderr) into out_dir/N; stops at an exit not shown."""
    out = []
    for n, step in enumerate(steps):
        target, want = shlex.quote(str(out_dir / str(n))), step.exit_code()
        out.append(f"{{ {step.command}\n}} >{target} 2>&1; rc=$?; [ $rc -eq {want} ] || "
                   f"{{ cat {target}; echo \"exit $rc (shown: {want}): \"{shlex.quote(step.command)} >&2; exit 1; }}")
    return "\n".join(out) + "\n"


def _environment(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, run in (("opsagent", "-m opsagent "), ("python", "")):  # python: the one opsagent runs on
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {run}\"$@\"\n")
        shim.chmod(0o755)
    for name in ("policies", "playbooks", "tests", "evals"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSAGENT_", "XDG_")) and k != "KUBECONFIG"}
    env.update({"HOME": str(tmp_path), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"})
    return env


def _run(text: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", text], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)  # a hang, not slowness


def run_transcript(body: str, tmp_path: Path, env: dict[str, str]) -> str | None:
    """None when every command ran and printed what is shown; otherwise why not."""
    steps = transcript(body)
    out_dir = tmp_path / ".transcript"
    out_dir.mkdir()
    done = _run("set -uo pipefail\n" + transcript_script(steps, out_dir), tmp_path, env)
    if done.returncode != 0:
        return f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    for n, step in enumerate(steps):
        printed = (out_dir / str(n)).read_text()
        problem = check_output(step.output(), printed)
        if problem:
            return f"$ {step.command}\n{problem}\n--- printed\n{printed}"
        if "Traceback" in printed:
            return f"$ {step.command}\n--- printed a traceback\n{printed}"
    return None


@pytest.mark.parametrize("block", blocks(), ids=[b.where for b in blocks()])
def test_shell_block_runs(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    env = _environment(tmp_path)
    if block.transcript:
        problem = run_transcript(block.body, tmp_path, env)
        assert problem is None, f"{block.where}\n{problem}"
        return
    done = _run(script(block.body), tmp_path, env)
    assert done.returncode == 0, f"{block.where}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_every_skip_says_why() -> None:
    assert all(b.skip is None or len(b.skip.split()) >= 2 for b in blocks())


# The transcript checker itself.

def test_transcript_splits_commands_and_joins_continuations() -> None:
    steps = transcript("$ echo a \\\n    b\na b\n\n$ true\n$ echo c\nc")
    assert steps == [Step("echo a  b", ["a b", ""]), Step("true", []), Step("echo c", ["c"])]


def test_transcript_keeps_a_here_document_in_its_command(tmp_path: Path) -> None:
    steps = transcript("$ cat > f <<'EOF'\na: 1\n$ not a command\nEOF\n$ cat f\na: 1")
    assert steps == [Step("cat > f <<'EOF'\na: 1\n$ not a command\nEOF", []), Step("cat f", ["a: 1"])]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    assert run_transcript("$ cat > f <<'EOF'\na: 1\nEOF\n$ cat f\na: 1", tmp_path, env) is None


def test_transcript_refuses_output_before_any_command() -> None:
    with pytest.raises(ValueError, match="before its first"):
        transcript("stray\n$ true")


def test_shown_line_that_is_not_printed_fails() -> None:
    assert check_output(["one", "three"], "one\ntwo\n") == "shown but not printed: 'three'"


def test_whitespace_and_blank_lines_do_not_count() -> None:
    assert check_output(["a   b", "", "c"], "  a b\n\n\nc  \n") is None


def test_shown_lines_must_be_in_order_and_adjacent() -> None:
    assert check_output(["b", "a"], "a\nb\n") is not None
    assert check_output(["a", "c"], "a\nb\nc\n") is not None  # `b` printed between them is not shown
    assert check_output(["a"], "a\nb\n") is not None           # nor is what comes after


def test_ellipsis_in_a_line_matches_any_text() -> None:
    assert check_output(["intact: … rows, head hash 5f0c…"], "intact: 12 rows, head hash 5f0cabc\n") is None
    assert check_output(["intact: … rows"], "broken: 12 rows\n") is not None


def test_ellipsis_alone_skips_any_number_of_lines() -> None:
    assert check_output(["a", "…", "d"], "a\nb\nc\nd\n") is None
    assert check_output(["a", "…", "d"], "a\nd\n") is None
    assert check_output(["…", "c"], "a\nb\nc\n") is None
    assert check_output(["a", "…"], "a\nb\n") is None
    assert check_output(["a", "…", "d"], "a\nb\nc\n") == "shown but not printed: 'd'"


def test_a_command_shown_without_output_is_not_checked() -> None:
    assert check_output([], "anything\n") is None


def test_transcript_runs_and_catches_a_wrong_output(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    assert run_transcript("$ X=hello\n$ echo \"$X world\"\nhello world", tmp_path, env) is None
    wrong = tmp_path / "again"
    wrong.mkdir()
    problem = run_transcript("$ echo hello\ngoodbye", wrong, env)
    assert problem is not None and "shown but not printed: 'goodbye'" in problem


def test_transcript_fails_when_a_command_fails(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    problem = run_transcript("$ echo before; false\nbefore\n$ echo never", tmp_path, env)
    assert problem is not None and "exit 1 (shown: 0): echo before; false" in problem


def test_a_shown_exit_code_is_expected(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    assert Step("false", ["no", "[exit 1]", ""]).output() == ["no"]
    assert run_transcript("$ sh -c 'echo no; exit 3'\nno\n[exit 3]\n$ echo after\nafter", tmp_path, env) is None
    other = tmp_path / "other"
    other.mkdir()
    problem = run_transcript("$ sh -c 'echo no; exit 3'\nno\n[exit 1]", other, env)
    assert problem is not None and "exit 3 (shown: 1)" in problem
