"""Benchmark: the kube adapter's quiet cycle from its watched cache against a raw list read.

The same loopback list server as kube_snapshot.py (real object shapes), which
also answers watches: it holds each one open and sends nothing, as an idle
cluster does. One adapter lists every kind per snapshot (`read_raw`, the raw
list read); another has called `start_watching()`, so after its first snapshot
each snapshot is built from the cache. Prints, per size: list requests the
server saw during the cached snapshots (goal: 0), the raw list read, the cached
snapshot, and their ratio (goal: at most 1.5x): medians over repeats with the range.

Run: .venv/bin/python evals/bench/kube_cache.py [--sizes 1000,10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _result import emit, median_range  # noqa: E402
from kube_snapshot import build_real  # noqa: E402

from opsagent.cluster.kube import KubeCluster, api_client_for_url  # noqa: E402


def serve(routes: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str, dict[str, int], threading.Event]:
    counts = {"list": 0, "watch": 0}
    closing = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            path = path.rstrip("/") or "/"
            if "watch=true" in query:
                counts["watch"] += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                closing.wait()          # an idle cluster: the watch stays open and says nothing
                self.close_connection = True
                return
            counts["list"] += 1
            body = routes.get(path, b'{"kind":"Status","code":404}')
            self.send_response(200 if path in routes else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", counts, closing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'deployments':>11} {'lists in quiet cycles':>21} {'raw lists s':>11} {'cached snapshot s':>17} {'ratio':>6}")
    for n in (int(s) for s in args.sizes.split(",")):
        server, url, counts, closing = serve(build_real(n))
        raw_kube = KubeCluster(api_client_for_url(url))
        cached = KubeCluster(api_client_for_url(url))
        cached.start_watching()
        cached.snapshot()              # start-up: one list per kind, then the watches open
        raw_kube.read_raw()            # warm the connection pool
        raw_times, snap_times = [], []
        lists_before = counts["list"]
        lists_in_cycles = 0
        for _ in range(args.repeat):
            gc.collect()
            start = time.perf_counter()
            raw = raw_kube.read_raw()
            raw_times.append(time.perf_counter() - start)
            del raw
            gc.collect()
            before = counts["list"]
            start = time.perf_counter()
            snap = cached.snapshot()
            snap_times.append(time.perf_counter() - start)
            lists_in_cycles += counts["list"] - before
            del snap
        del lists_before
        ratios = sorted(s / r for s, r in zip(snap_times, raw_times))
        ratio = statistics.median(ratios)
        print(f"{n:>11} {lists_in_cycles:>21} {statistics.median(raw_times):>11.3f} {statistics.median(snap_times):>17.3f} "
              f"{ratio:>6.2f}  ({ratios[0]:.2f}-{ratios[-1]:.2f})")
        cached_figure = median_range(snap_times, fmt="{:.3f}", unit=" s")
        emit(f"kube quiet cycle from the watched cache / raw list read, {n:,} workloads",
             f"{ratio:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}); cached {cached_figure}",
             value=ratio, target=1.5)
        emit(f"kube list calls in {args.repeat} quiet cycles after start-up, {n:,} workloads", str(lists_in_cycles),
             value=float(lists_in_cycles), passed=lists_in_cycles == 0)
        closing.set()
        cached.stop_watching()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
