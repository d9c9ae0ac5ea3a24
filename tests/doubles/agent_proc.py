"""A process-level harness for restart tests: `python -m doubles.agent_proc PHASE DIR`.

Each phase builds the same small world on files in DIR (audit log, approvals,
checkpoints, and `writes.jsonl`, the durable witness of every write that
reached the cluster), does one thing, prints one JSON line and exits:

- `start`: run the finding with a scripted model that asks for an architectural
  change (needs approval); print the run and approval ids; then wait to be killed.
- `resume`: find the waiting run with `Agent.waiting()`, resume it as approved.
- `act`: run a finding whose playbook step writes (with OPSAGENT_TEST_CRASH_AFTER_WRITE=1
  the process dies right after the write reaches the cluster, before anything
  is recorded or checkpointed).

For tests only: nothing in the product imports it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from opsagent.evals import scripted
from doubles.agent_world import idle_findings, tiny_world
from opsagent.cluster.port import WRITE_METHODS


class FileWitness:
    """Wraps the cluster: every write is appended to writes.jsonl before it is applied."""

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner, self.path = inner, path

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in WRITE_METHODS:
            return target

        def write(**kwargs: Any) -> Any:
            with self.path.open("a") as fh:
                fh.write(json.dumps({"method": name, "args": {k: str(v) for k, v in kwargs.items()}}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            result = target(**kwargs)
            if os.environ.get("OPSAGENT_TEST_CRASH_AFTER_WRITE") == "1":
                os._exit(17)  # die after the write, before the result is recorded or checkpointed
            return result

        return write


def main(argv: list[str]) -> int:
    phase, directory = argv[0], Path(argv[1])
    world = tiny_world(directory)
    world.gate.cluster = FileWitness(world.cluster, directory / "writes.jsonl")
    [finding] = idle_findings(world.cluster.snapshot())
    if phase in ("start", "resume"):
        world.playbooks = None  # no playbook for the finding: the model is offered every tool, set_resources too
    if phase == "start":
        planner = scripted.scripted_planner(scripted.call("set_resources", namespace="ml", name="llm", gpus_per_replica=2))
        report = world.agent(planner).handle_finding(finding)
        print(json.dumps({"run_id": report.run_id, "status": report.status, "pending": report.pending_approvals}), flush=True)
        time.sleep(120)  # the test kills us here
        return 1
    if phase == "resume":
        agent = world.agent(scripted.scripted_planner(scripted.text("Resources changed after approval.")))
        waiting = agent.waiting()
        [(thread_id, approval_id)] = waiting
        report = agent.resume(thread_id, approval_id=approval_id, decided_state="approved", approver="carol")
        print(json.dumps({"waiting": waiting, **report.model_dump(mode="json")}), flush=True)
        return 0
    if phase == "act":
        report = world.agent("offline").handle_finding(finding)
        print(json.dumps(report.model_dump(mode="json")), flush=True)
        return 0
    raise SystemExit(f"unknown phase {phase!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
