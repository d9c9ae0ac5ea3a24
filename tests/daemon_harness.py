"""A daemon process over a simulated cluster that survives restarts, for the restart tests.

`python tests/daemon_harness.py DIR CYCLES [--kill-after-writes N]`

The simulator lives in memory, so a restarted process would start a fresh
cluster. To stand in for a real cluster that outlives the daemon, every write
that reaches the simulator is appended (with the simulated time) to
DIR/writes.jsonl before it is applied, and the cluster's clock to DIR/clock.
On start the harness replays the journal into a fresh simulator and catches up
to the recorded time, then runs the real `Daemon` for CYCLES cycles of 5
simulated minutes on DIR/ops.db. With --kill-after-writes N the process
SIGKILLs itself right after the N-th write reached the cluster, before the
result is recorded or checkpointed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opsagent.cluster.sim import SimCluster, builtin_scenario  # noqa: E402
from opsagent.daemon import Daemon, DaemonOptions  # noqa: E402
from opsagent.runtime import open_runtime  # noqa: E402
from doubles.cluster import WRITE_METHODS  # noqa: E402


class Journaled:
    def __init__(self, sim: SimCluster, journal: Path, kill_after: int | None) -> None:
        self._sim, self._journal, self._kill_after, self._writes = sim, journal, kill_after, 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._sim, name)
        if name not in WRITE_METHODS:
            return target

        def write(**kwargs: Any) -> Any:
            if not kwargs.get("dry_run"):
                with self._journal.open("a") as fh:
                    fh.write(json.dumps({"at": self._sim.clock.now().isoformat(), "method": name,
                                         "kwargs": {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v
                                                    for k, v in kwargs.items()}}) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            result = target(**kwargs)
            self._writes += 1
            if self._kill_after is not None and self._writes >= self._kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return write


def replay(sim: SimCluster, journal: Path, clock_file: Path) -> None:
    from opsagent.model import GpuRequirement, WorkloadRef

    if journal.exists():
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["at"])
            if at > sim.clock.now():
                sim.advance((at - sim.clock.now()).total_seconds())
            kwargs = dict(entry["kwargs"])
            if isinstance(kwargs.get("ref"), dict):
                kwargs["ref"] = WorkloadRef(**kwargs["ref"])
            if isinstance(kwargs.get("gpu_requirement"), dict):
                kwargs["gpu_requirement"] = GpuRequirement(**kwargs["gpu_requirement"])
            getattr(sim, entry["method"])(**kwargs)
    if clock_file.exists():
        at = datetime.fromisoformat(clock_file.read_text().strip())
        if at > sim.clock.now():
            sim.advance((at - sim.clock.now()).total_seconds())


def main() -> int:
    directory, cycles = Path(sys.argv[1]), int(sys.argv[2])
    kill_after = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--kill-after-writes" else None
    journal, clock_file = directory / "writes.jsonl", directory / "clock"
    sim = SimCluster(builtin_scenario("demo"))
    replay(sim, journal, clock_file)
    cluster = Journaled(sim, journal, kill_after)
    db = directory / "ops.db"
    runtime = open_runtime(policies=REPO / "policies", db=db, cluster_obj=cluster, clock=sim.clock)
    runtime.sim = sim

    def on_cycle(report: Any) -> None:
        clock_file.write_text(sim.clock.now().isoformat())
        for run in report.runs + report.resumed:
            print(json.dumps({"run": run.run_id, "status": run.status,
                              "actions": [[a.tool, a.status] for a in run.actions]}), flush=True)

    options = DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, interval=300,
                            cycles=cycles, sim_speed=0)
    return Daemon(options, runtime=runtime, on_cycle=on_cycle).run()


if __name__ == "__main__":
    sys.exit(main())
