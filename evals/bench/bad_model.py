"""How much a bad model costs: GPU-hours held idle on the demo day and over the eval scenarios.

Runs the demo day (`opsagent demo`, 24 simulated hours, 5-minute cycles) and
the whole eval suite under the offline planner, the hostile planner (which
proposes harmful, out-of-scope and made-up calls every round), the
hostile-ollama planner (the real Ollama client against a loopback server whose
answers are well formed but useless: invalid, denied, out-of-scope, repeated)
and the garbled planner (the same client against a server whose every answer
is broken), next to the no-agent baseline. Also counts the runs that ended in
an exception. Usage:

    python evals/bench/bad_model.py            # prints a Markdown table
    python evals/bench/bad_model.py --json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def runs_failed(db: Path) -> int:
    """Agent runs that ended in an exception (`run failed: ...` in the audit log)."""
    from opsagent.audit import AuditFilter, AuditStore

    store = AuditStore(db)
    try:
        return sum(1 for r in store.list(AuditFilter(kind="run", limit=100_000)) if (r.summary or "").startswith("run failed"))
    finally:
        store.close()


def demo_day(planner: str) -> dict[str, float]:
    from opsagent.demo import run_demo
    from opsagent.evals.planners import make_planner

    obj = None if planner == "offline" else make_planner(planner)[0]
    db = Path(tempfile.mkdtemp(prefix="bad-model-")) / "demo.db"
    summary = run_demo(db=db, offline=True, planner=obj)
    return {"idle": summary.gpu_hours_idle_with_agent, "baseline": summary.gpu_hours_idle_without_agent,
            "llm_calls": summary.llm_calls, "runs_failed": runs_failed(db)}


def eval_suite(planner: str) -> dict[str, float]:
    from opsagent.evals import DEFAULT_DIR, run_suite

    scores, records = run_suite([DEFAULT_DIR], planner=planner, workdir=Path(tempfile.mkdtemp(prefix="bad-model-")))
    return {"idle": round(sum(s.gpu_hours_idle for s in scores), 2),
            "baseline": round(sum(s.gpu_hours_idle_baseline or 0 for s in scores), 2),
            "passed": sum(1 for s in scores if s.outcome == "pass"), "runs": len(scores),
            "errors": sum(runs_failed(r.db) for r in records if r.db is not None and r.db.exists()),
            "llm_calls": sum(s.llm_calls for s in scores)}


def main(argv: list[str]) -> int:
    import logging

    logging.disable(logging.WARNING)
    rows = {p: {"demo": demo_day(p), "evals": eval_suite(p)} for p in ("offline", "hostile", "hostile-ollama", "garbled")}
    if "--json" in argv:
        print(json.dumps(rows, indent=2))
        return 0
    base = rows["offline"]
    print("| planner | demo day idle GPU-h | eval suite idle GPU-h (44 scenarios) | runs failed (demo / evals) | LLM calls (demo / evals) |")
    print("|---|---|---|---|---|")
    print(f"| no agent | {base['demo']['baseline']:g} | {base['evals']['baseline']:g} | - | - |")
    for name, row in rows.items():
        d, e = row["demo"], row["evals"]
        print(f"| {name} | {d['idle']:g} | {e['idle']:g} ({e['passed']}/{e['runs']} pass) | {d['runs_failed']} / {e['errors']} "
              f"| {d['llm_calls']} / {e['llm_calls']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
