"""Benchmark: how the simulator's snapshot() and advance() scale with cluster size.

Builds synthetic clusters of 100, 1,000 and 10,000 workloads (one GPU replica
each, 8-GPU nodes with ~10% spare, office-hours traffic on half of them), then
times snapshot() and advancing one simulated minute. Prints the times and the
growth ratio between sizes: (time ratio) / (size ratio); 1.0 means linear.

Run: .venv/bin/python evals/bench/sim_scale.py
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from opsagent.cluster.sim import Scenario, SimCluster
from opsagent.cluster.sim.scenario import GpuGroup, NodeSpec, Traffic, WorkloadDecl

SIZES = (100, 1_000, 10_000)


def build(workloads: int) -> SimCluster:
    nodes = (workloads * 11 // 10) // 8 + 1
    scenario = Scenario(
        name=f"synthetic-{workloads}", seed=1, start=datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc),
        nodes=(NodeSpec(name="gpu", count=nodes, gpus=(GpuGroup(count=4, link=16, switch="0"),
                                                       GpuGroup(count=4, link=4, switch="1"))),),
        workloads=tuple(
            WorkloadDecl(namespace=f"team-{i % 50}", name=f"svc-{i}", image=f"registry.internal/svc:{i % 7}", gpus=1,
                         traffic=Traffic(peak_rps=5.0) if i % 2 else None)
            for i in range(workloads)
        ),
    )
    return SimCluster(scenario)


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rows = []
    for size in SIZES:
        start = time.perf_counter()
        sim = build(size)
        build_s = time.perf_counter() - start
        sim.advance(60)  # one warm-up minute; the day starts at 09:00, so traffic is flowing
        snap_s = timed(sim.snapshot, 3)
        adv_s = timed(lambda: sim.advance(60), 3)  # noqa: B023 -- timed() calls it before the loop moves on
        rows.append((size, build_s, snap_s, adv_s))
        print(f"{size:>6} workloads ({len(sim.pods):>6} pods, {len(sim.nodes):>5} nodes): "
              f"build {build_s * 1000:8.1f} ms  snapshot {snap_s * 1000:8.1f} ms  advance 1 min {adv_s * 1000:8.1f} ms")
    print()
    for (s0, _, snap0, adv0), (s1, _, snap1, adv1) in zip(rows, rows[1:]):
        factor = s1 / s0
        print(f"{s0:>6} -> {s1:<6} growth ratio (time ratio / size ratio): "
              f"snapshot {snap1 / snap0 / factor:.2f}  advance {adv1 / adv0 / factor:.2f}")


if __name__ == "__main__":
    main()
