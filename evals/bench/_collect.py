"""Run every bench script and print one table: goal, figure, ratio, pass/fail.

Each `evals/bench/*.py` not starting with `_` is run alone, as a person would
run it; its full output goes to the log directory, and the lines it emits in
the format of `_result.py` become rows. Exit status is 1 when a script fails
or a goal is missed.

Run: .venv/bin/python evals/bench/_collect.py [--only policy cli_startup] [--log-dir .bench]
     [--markdown]   (print the table as Markdown, as the README's Measured table)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1]))
from _result import parse

from opsagent.cli.output import progress


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))
    if only:
        found = [p for p in found if p.stem in only]
    return found


def run(script: Path, log_dir: Path) -> tuple[list[dict], int, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    (log_dir / f"{script.stem}.log").write_text(proc.stdout + proc.stderr)
    rows = [r for r in map(parse, proc.stdout.splitlines()) if r is not None]
    for r in rows:
        r["script"] = script.stem
    return rows, proc.returncode, elapsed


def verdict(row: dict) -> str:
    return {True: "pass", False: "FAIL", None: "-"}[row.get("pass")]


def ratio(row: dict) -> str:
    r = row.get("ratio")
    return "-" if r is None else f"{r:.2f}"


def table(rows: list[dict], markdown: bool) -> str:
    if markdown:
        lines = ["| goal | figure | ratio to goal | result |", "|---|---|---|---|"]
        lines += [f"| {r['goal']} | {r['figure']} | {ratio(r)} | {verdict(r)} |" for r in rows]
        return "\n".join(lines)
    w = max([len("goal")] + [len(r["goal"]) for r in rows])
    f = max([len("figure")] + [len(str(r["figure"])) for r in rows])
    lines = [f"{'goal':{w}}  {'figure':{f}}  {'ratio':>6}  result", "-" * (w + f + 18)]
    lines += [f"{r['goal']:{w}}  {r['figure']!s:{f}}  {ratio(r):>6}  {verdict(r)}" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="script names without .py")
    parser.add_argument("--log-dir", type=Path, default=Path(".bench"))
    parser.add_argument("--markdown", action="store_true")
    opts = parser.parse_args()
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    failed: list[str] = []
    chosen = scripts(opts.only)
    plain = not sys.stderr.isatty()   # logs and CI: one line per script; a terminal: a progress bar
    with progress("bench") as update:
        for done, script in enumerate(chosen):
            update(done, len(chosen), script.name)
            if plain:
                print(f"running {script.name} ...", file=sys.stderr, flush=True)
            got, code, elapsed = run(script, opts.log_dir)
            if plain:
                print(f"  {len(got)} results, exit {code}, {elapsed:.0f} s", file=sys.stderr, flush=True)
            if code != 0:
                failed.append(f"{script.name} exited {code} (see {opts.log_dir / (script.stem + '.log')})")
            rows += got
        update(len(chosen), len(chosen), "")
    print(table(rows, opts.markdown))
    for line in failed:
        print(line)
    missed = [r for r in rows if r.get("pass") is False]
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
