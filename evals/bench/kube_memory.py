"""Benchmark: peak memory of one kube snapshot, per 1,000 workloads, as a curve over cluster size.

Serves the `real` object shapes of kube_snapshot.py (copies of real
Deployments, ReplicaSets, Pods and GPU nodes from tests/fixtures/kube, two
ReplicaSets and two pods per Deployment; uids, resourceVersions and timestamps
made distinct per object, as in a real cluster) from a loopback server, then measures
one `KubeCluster.snapshot()` with tracemalloc: the peak of Python allocations
while the lists are read, decoded and turned into the Snapshot, and what the
Snapshot itself keeps. Each size runs in a fresh process, so one size's heap
does not shape the next one's.

The goal: at most 25.5 MiB per 1,000 workloads at 10,000 (half of the
51 MiB measured before the decoders dropped what the view does not read).
The figures set the daemon's memory request and limit in
deploy/manifests/deployment.yaml.

Run: .venv/bin/python evals/bench/kube_memory.py [--sizes 1000,5000,10000,50000]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _result import emit  # noqa: E402

GOAL_MIB_PER_1000 = 25.5


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


def measure(n: int) -> dict:
    """Peak and retained MiB of one snapshot of `n` workloads (run in a child process)."""
    from kube_snapshot import build_real, serve

    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    routes = distinct(build_real(n))
    server, url, _ = serve(routes, paged=True)
    kube = KubeCluster(api_client_for_url(url))
    kube.snapshot()  # warm up: connection pool, discovery
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    snap = kube.snapshot()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    server.shutdown()
    return {"n": n, "workloads": len(snap.workloads), "pods": len(snap.pods),
            "peak_mib": (peak - base) / 2**20, "kept_mib": (current - base) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    print(f"{'workloads':>9} {'pods':>7} {'peak MiB':>9} {'kept MiB':>9} {'peak MiB per 1,000':>19}")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{n:>9} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['workloads']:>9} {row['pods']:>7} {row['peak_mib']:>9.1f} {row['kept_mib']:>9.1f} "
              f"{row['peak_mib'] * 1000 / n:>19.1f}")
    for row in rows:
        per = row["peak_mib"] * 1000 / row["n"]
        emit(f"kube snapshot peak memory per 1,000 workloads, at {row['n']:,}",
             f"{per:.1f} MiB (peak {row['peak_mib']:.0f} MiB, snapshot keeps {row['kept_mib']:.0f} MiB)",
             value=round(per, 1), target=GOAL_MIB_PER_1000)
    if not rows:
        sys.exit(1)


if __name__ == "__main__":
    main()
