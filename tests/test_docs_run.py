"""The shell blocks in README.md and docs/*.md are run, so what they show stays true.

Every fenced block whose info string is sh, bash, shell or console runs with
bash in its own temporary directory (parallel-safe), with `opsagent` on PATH, no
kubeconfig and the repository's policies/ and playbooks/ linked in. A block
that needs what a test cannot have (a real cluster, Slack, model servers) is
marked on the line before it with `<!-- doc-test: skip REASON -->` and skipped
with that reason. A command followed by `# → TEXT` must print TEXT.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(sh|bash|shell|console)\s*$")
SKIP = re.compile(r"^<!--\s*doc-test:\s*skip\s+(.+?)\s*-->\s*$")
EXPECT = re.compile(r"\s#\s*→\s*(.+?)\s*$")


def blocks() -> list[tuple[str, str | None, str]]:
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if FENCE.match(lines[i]):
                start, body = i + 1, []
                i += 1
                while i < len(lines) and not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                skip = SKIP.match(lines[start - 2]) if start >= 2 else None
                found.append((f"{path.relative_to(REPO)}:{start}", skip.group(1) if skip else None, "\n".join(body)))
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


@pytest.mark.parametrize("where,skip,body", blocks(), ids=[b[0] for b in blocks()])
def test_shell_block_runs(where: str, skip: str | None, body: str, tmp_path: Path) -> None:
    if skip:
        pytest.skip(skip)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "opsagent"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m opsagent \"$@\"\n")
    shim.chmod(0o755)
    for name in ("policies", "playbooks"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSAGENT_", "XDG_")) and k != "KUBECONFIG"}
    env.update({"HOME": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"})
    done = subprocess.run(["bash", "-c", script(body)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{where}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_every_skip_says_why() -> None:
    assert all(skip is None or len(skip.split()) >= 2 for _, skip, _ in blocks())
