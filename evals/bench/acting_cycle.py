"""Benchmark: one daemon cycle that acts on 20 findings against a quiet cycle, at 10,000 workloads.

The cluster: WORKLOADS workloads with steady traffic, except IDLE of them in a
namespace whose intent lets the daemon sleep them after 30 idle minutes and
that have had no request for an hour. The daemon (offline planner, shipped
policies and playbooks, real gate and audit log) runs one cycle, which finds
the IDLE idle workloads and puts each to sleep through the gate (the acting
cycle), then a second cycle with nothing left to do (the quiet cycle). Both
are timed on the wall clock, and the full snapshots and narrowed views each
takes are counted.

On the simulator (the time it spends moving its own clock while a run waits
for a change to show is the simulated cluster's work: it is reported and left
out of the ratio); and on the kube adapter, watching, over a loopback API
server that serves the same objects, streams every change to its watches and
applies scale calls (_acting_kube.py). Goal: acting cycle <= 3x the quiet cycle.

Run: .venv/bin/python evals/bench/acting_cycle.py [--workloads 10000] [--repeats 3] [--no-kube]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "evals" / "bench"))

from _result import emit, median_range  # noqa: E402

from opsagent.cluster.sim import Scenario, SimCluster  # noqa: E402
from opsagent.cluster.sim.scenario import GpuGroup, NodeSpec, Traffic, WorkloadDecl  # noqa: E402
from opsagent.daemon import Daemon, DaemonOptions  # noqa: E402
from opsagent.runtime import open_runtime  # noqa: E402

IDLE = 20
# the shipped scale-down rate limit allows 10 sleeps an hour per namespace: the idle ones are spread over two
IDLE_NAMESPACES = ("idle-bench-a", "idle-bench-b")


def scenario(workloads: int) -> Scenario:
    nodes = (workloads * 11 // 10) // 8 + 1
    return Scenario(
        name=f"acting-{workloads}", seed=1, start=datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc),
        nodes=(NodeSpec(name="gpu", count=nodes, gpus=(GpuGroup(count=8, link=16, switch="0"),)),),
        workloads=tuple(
            WorkloadDecl(namespace=IDLE_NAMESPACES[i % 2] if i < IDLE else f"team-{i % 50}", name=f"svc-{i}",
                         image=f"registry.internal/svc:{i % 7}", gpus=1,
                         traffic=None if i < IDLE else Traffic(points={"00:00": 5.0}))
            for i in range(workloads)
        ),
    )


def policies() -> Path:
    """The shipped policies plus intents that let the daemon sleep the idle namespaces."""
    where = Path(tempfile.mkdtemp())
    shutil.copytree(REPO / "policies", where, dirs_exist_ok=True)
    intents = "".join(f"  - name: bench-sleeps-when-idle-{ns}\n    selector: {{namespace: {ns}}}\n"
                      f"    replicas: {{min: 0, max: 1}}\n    idle: {{after: 30m}}\n" for ns in IDLE_NAMESPACES)
    (where / "bench-idle.yaml").write_text(f"scope:\n  namespaces: [{', '.join(IDLE_NAMESPACES)}]\nintents:\n{intents}")
    return where


class Counting:
    """A cluster, counting full snapshots and narrowed views."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.full = 0
        self.narrow = 0
        self.advanced = 0.0   # wall seconds the simulator spent moving its own clock (the cluster's work, not ours)

    def snapshot(self):
        self.full += 1
        return self._inner.snapshot()

    def snapshot_of(self, refs):
        self.narrow += 1
        return self._inner.snapshot_of(refs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class SimCounting(Counting):
    """The simulator, counting as `Counting` does and timing how long it spends moving its own clock."""

    def advance(self, seconds):
        start = time.perf_counter()
        try:
            return self._inner.advance(seconds)
        finally:
            self.advanced += time.perf_counter() - start


def cycles(cluster, clock, where: Path) -> dict[str, float]:
    """Time the acting cycle and the quiet one after it on `cluster`."""
    counting = SimCounting(cluster) if hasattr(cluster, "advance") else Counting(cluster)
    db = where / "ops.db"
    rt = open_runtime(cluster_obj=counting, clock=clock, policies=policies(), db=db)
    daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=db, sim_speed=0),
                    runtime=rt)
    out: dict[str, float] = {}
    daemon.observe()   # start-up: on kube the first snapshot lists each kind once, then the watches follow
    for name in ("acting", "quiet"):
        full, narrow, advanced = counting.full, counting.narrow, counting.advanced
        start = time.perf_counter()
        report = daemon.reconciler.cycle()
        out[f"{name}_sim_s"] = counting.advanced - advanced
        out[f"{name}_s"] = time.perf_counter() - start - out[f"{name}_sim_s"]
        out[f"{name}_full"] = counting.full - full
        out[f"{name}_narrow"] = counting.narrow - narrow
        out[f"{name}_acted"] = sum(1 for a in report.actions if a.tool == "sleep_workload" and a.status == "ok")
    rt.audit.close()
    return out


def sim_run(workloads: int) -> dict[str, float]:
    sim = SimCluster(scenario(workloads))
    sim.advance(3600)
    return cycles(sim, sim.clock, Path(tempfile.mkdtemp()))


def report(label: str, runs: list[dict[str, float]]) -> None:
    acting = [r["acting_s"] * 1000 for r in runs]
    quiet = [r["quiet_s"] * 1000 for r in runs]
    ratios = [r["acting_s"] / r["quiet_s"] for r in runs]
    last = runs[-1]
    moving = [r["acting_sim_s"] * 1000 for r in runs]
    if any(moving):
        print(f"{label}: the simulator moving its clock while runs wait for changes to show (left out below): "
              f"{median_range(moving, unit=' ms')}")
    print(f"{label}: acting cycle {median_range(acting, unit=' ms')}, {last['acting_acted']:.0f} slept, "
          f"{last['acting_full']:.0f} full snapshots, {last['acting_narrow']:.0f} narrowed views")
    print(f"{label}: quiet cycle  {median_range(quiet, unit=' ms')}, "
          f"{last['quiet_full']:.0f} full snapshots, {last['quiet_narrow']:.0f} narrowed views")
    print(f"{label}: ratio {median_range(ratios, fmt='{:.2f}', unit='x')}  (goal <= 3x)")
    emit(f"acting cycle (20 findings) vs quiet cycle, {label}", median_range(ratios, fmt="{:.2f}", unit="x"),
         value=statistics.median(ratios), target=3.0, passed=statistics.median(ratios) <= 3.0)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("opsagent").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-kube", action="store_true", help="only the simulator")
    args = parser.parse_args()
    runs = [sim_run(args.workloads) for _ in range(args.repeats)]
    if any(r["acting_acted"] < IDLE for r in runs):
        print(f"warning: an acting cycle slept fewer than {IDLE} workloads: {[r['acting_acted'] for r in runs]}")
    report(f"simulator, {args.workloads:,} workloads", runs)
    if not args.no_kube:
        from _acting_kube import kube_run

        runs = [kube_run(args.workloads, scenario(args.workloads), cycles) for _ in range(args.repeats)]
        report(f"kube adapter, {args.workloads:,} workloads", runs)


if __name__ == "__main__":
    main()
