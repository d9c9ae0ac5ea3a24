"""Benchmark: memory of one kube cycle, per 1,000 workloads, as a curve over cluster size, fitted and extrapolated.

Serves the `real` object shapes of kube_snapshot.py (copies of real
Deployments, ReplicaSets, Pods and GPU nodes from tests/fixtures/kube, two
ReplicaSets and two pods per Deployment, with the autoscalers, budgets,
Services, EndpointSlices, ConfigMaps, Secrets and claims of that bench; uids,
resourceVersions and timestamps made distinct per object, as in a real cluster)
from a loopback server in this process that pages lists (`limit`/`continue`) and
holds watches open without a word, as an idle API server does. Each size is
measured in fresh child processes, so one size's heap does not shape the next.

Three figures per size, from tracemalloc (Python allocations):
- `list`: one `KubeCluster.snapshot()` without the cache (list, decode, build);
- `fill`: the daemon's first cycle: `start_watching()` and its first snapshot,
  which lists every kind into the watched cache;
- `cycle`: the daemon's steady state, the one the memory limit must hold: the
  cache (after every object was replaced by a watch event, so it shares values
  only with recent events, not with what the list call decoded), the previous
  snapshot, and the next one being built.
and, in a child without tracemalloc (which adds its own bookkeeping), the
process's resident high-water mark over that same `cycle` run, above the
resident size of a process that has imported what the daemon imports.

The rule: a straight line fitted (least squares) to `cycle` peak against
workloads, intercept + slope; sizes above the largest measured are extrapolated
from it, and the printout says so. The goal: at most 25.5 MiB per 1,000
workloads for `list` (half the 51 MiB first measured that way). `cycle` is
reported beside it without a goal (about 88 MiB per 1,000 workloads before
objects were cut down to their shapes): it holds two snapshots as well as the
cache. The resident line sets the daemon's memory request and limit in
deploy/manifests/deployment.yaml.

Run: .venv/bin/python evals/bench/kube_memory.py [--sizes 1000,5000,10000,20000] [--up-to 50000]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _result import emit  # noqa: E402

GOAL_MIB_PER_1000 = 25.5
MIB = 2**20


def distinct(routes: dict[str, bytes]) -> dict[str, bytes]:
    """The list bodies with what differs between objects of a real cluster made to differ: uid,
    resourceVersion, creationTimestamp and each condition's transition time (copies would share them)."""
    out = {}
    for path, body in routes.items():
        data = json.loads(body)
        for i, item in enumerate(data.get("items") or [] if isinstance(data, dict) else []):
            meta = item.setdefault("metadata", {})
            meta["uid"] = f"{hash(path) & 0xffffffff:08x}-{i:04x}-4a1b-9c2d-{i * 7919:012x}"
            meta["resourceVersion"] = str(1_000_000 + i)
            stamp = f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"
            meta["creationTimestamp"] = stamp
            for condition in (item.get("status") or {}).get("conditions") or []:
                for key in ("lastTransitionTime", "lastUpdateTime", "lastHeartbeatTime"):
                    if key in condition:
                        condition[key] = stamp
        out[path] = json.dumps(data).encode()
    return out


def _churn(kube: object) -> None:
    """Every cached object replaced by a watch event carrying it (MODIFIED), as the watch receives one: nothing
    is then shared with what the list call decoded, only with recent events."""
    for informer in list(kube.cache.informers.values()):  # type: ignore[attr-defined]
        for obj in informer.items():
            informer.receive(json.dumps({"type": "MODIFIED", "object": obj}).encode())


def _rss() -> tuple[float, float]:
    """(resident now, resident high-water) of this process, MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(url: str, n: int) -> dict:
    """tracemalloc peaks (MiB) of the list snapshot, the first watched cycle and a steady-state watched cycle."""
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    lister = KubeCluster(api_client_for_url(url))
    lister.snapshot()  # warm up: connection pool, discovery
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    snap = lister.snapshot()
    current, peak = tracemalloc.get_traced_memory()
    out = {"n": n, "workloads": len(snap.workloads), "pods": len(snap.pods),
           "list_mib": (peak - base) / MIB, "snapshot_mib": (current - base) / MIB}
    del snap
    tracemalloc.stop()

    watcher = KubeCluster(api_client_for_url(url))
    watcher.dra_version()   # discovery, as the list warm-up did
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    watcher.start_watching()
    first = watcher.snapshot()
    out["fill_mib"] = (tracemalloc.get_traced_memory()[1] - base) / MIB
    _churn(watcher)
    gc.collect()
    out["cache_mib"] = (tracemalloc.get_traced_memory()[0] - base) / MIB - out["snapshot_mib"]
    tracemalloc.reset_peak()
    second = watcher.snapshot()
    out["cycle_mib"] = (tracemalloc.get_traced_memory()[1] - base) / MIB
    tracemalloc.stop()
    del first, second
    watcher.stop_watching()
    return out


def measure_rss(url: str) -> dict:
    """Resident MiB: after the daemon's imports, and the high-water over a first and a steady-state watched cycle."""
    import opsagent.cli  # noqa: F401 - what the daemon process imports before it reads the cluster
    import opsagent.daemon  # noqa: F401
    import opsagent.runtime  # noqa: F401
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    gc.collect()
    base, _ = _rss()
    watcher = KubeCluster(api_client_for_url(url))
    watcher.start_watching()
    first = watcher.snapshot()
    _churn(watcher)
    second = watcher.snapshot()
    _, high = _rss()
    del first, second
    watcher.stop_watching()
    return {"rss_base_mib": base, "rss_high_mib": high}


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through (x, y) points."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0
    return mean_y - slope * mean_x, slope


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else str(out.returncode))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000,20000")
    parser.add_argument("--up-to", type=int, default=50_000, help="extrapolate the fitted rule to this many workloads")
    parser.add_argument("--child", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--rss", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    if args.rss:
        print(json.dumps(measure_rss(args.rss)))
        return

    from kube_snapshot import build_real, serve

    print(f"{'workloads':>9} {'pods':>7} {'list':>7} {'fill':>7} {'cycle':>7} {'cache':>7} {'snapshot':>8} "
          f"{'RSS base':>8} {'RSS high':>8}   (MiB; per 1,000 workloads: list, cycle, RSS above base)")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        closing = threading.Event()
        server, url, _ = serve(distinct(build_real(n)), paged=True, idle_watches=closing)
        try:
            row = {**_child(["--child", url, str(n)]), **_child(["--rss", url])}
        except RuntimeError as exc:
            print(f"{n:>9} failed: {exc}")
            continue
        finally:
            closing.set()
            server.shutdown()
            server.server_close()
        rows.append(row)
        per = 1000 / n
        print(f"{row['workloads']:>9} {row['pods']:>7} {row['list_mib']:>7.1f} {row['fill_mib']:>7.1f} "
              f"{row['cycle_mib']:>7.1f} {row['cache_mib']:>7.1f} {row['snapshot_mib']:>8.1f} "
              f"{row['rss_base_mib']:>8.0f} {row['rss_high_mib']:>8.0f}   "
              f"{row['list_mib'] * per:.1f}, {row['cycle_mib'] * per:.1f}, "
              f"{(row['rss_high_mib'] - row['rss_base_mib']) * per:.1f}")
    if not rows:
        sys.exit(1)

    largest = max(row["n"] for row in rows)
    heap = fit([(row["n"], row["cycle_mib"]) for row in rows])
    rss = fit([(row["n"], row["rss_high_mib"]) for row in rows])
    print(f"\nsteady-state cycle, Python heap: {heap[0]:.1f} MiB + {heap[1] * 1000:.1f} MiB per 1,000 workloads")
    print(f"steady-state cycle, resident:    {rss[0]:.0f} MiB + {rss[1] * 1000:.1f} MiB per 1,000 workloads "
          f"(daemon imports alone: {rows[-1]['rss_base_mib']:.0f} MiB)")
    print(f"measured up to {largest:,} workloads; larger sizes below are extrapolated from the resident line:")
    for n in sorted({10_000, 20_000, 30_000, args.up_to} | {row["n"] for row in rows}):
        kind = "measured" if n in {row["n"] for row in rows} else "extrapolated"
        print(f"  {n:>7,} workloads: {rss[0] + rss[1] * n:>6.0f} MiB resident ({kind})")

    for row in rows:
        per = 1000 / row["n"]
        emit(f"kube snapshot (listing) peak memory per 1,000 workloads, at {row['n']:,}",
             f"{row['list_mib'] * per:.1f} MiB (peak {row['list_mib']:.0f} MiB, snapshot keeps {row['snapshot_mib']:.0f} MiB)",
             value=round(row["list_mib"] * per, 1), target=GOAL_MIB_PER_1000)
        emit(f"kube watched cycle (steady state) peak memory per 1,000 workloads, at {row['n']:,}",
             f"{row['cycle_mib'] * per:.1f} MiB (peak {row['cycle_mib']:.0f} MiB: cache {row['cache_mib']:.0f} MiB "
             f"and two snapshots)", value=round(row["cycle_mib"] * per, 1))
    emit(f"kube daemon resident memory at {args.up_to:,} workloads (extrapolated from {largest:,})",
         f"{rss[0] + rss[1] * args.up_to:.0f} MiB ({rss[0]:.0f} MiB + {rss[1] * 1000:.1f} MiB per 1,000 workloads)",
         value=round(rss[0] + rss[1] * args.up_to))


if __name__ == "__main__":
    main()
