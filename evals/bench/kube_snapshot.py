"""Benchmark: kube adapter snapshot cost against a loopback list server.

Serves pre-rendered list responses (Deployments, their ReplicaSets and pods,
GPU nodes, events) from a stdlib HTTP server on 127.0.0.1. kmock's emulator is
not used here: it slows with every stored object and recorded request, so at
5,000 Deployments it would measure itself, not the adapter.

Prints, per size: HTTP requests per snapshot (goal: constant), time of the raw
list calls alone (HTTP + JSON decode, `KubeCluster.read_raw`), full snapshot
time, and their ratio (goal: at most 1.5x).

Run: .venv/bin/python evals/bench/kube_snapshot.py [--sizes 100,1000,5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opsagent.cluster.kube import KubeCluster, api_client_for_url


def build(n: int) -> dict[str, bytes]:
    deployments, replicasets, pods = [], [], []
    nodes = [{"metadata": {"name": f"gpu-{i}", "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                                                          "nvidia.com/gpu.memory": "81559"}},
              "status": {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]}}
             for i in range(max(1, n // 16))]
    for i in range(n):
        ns, name = f"team-{i % 20}", f"svc-{i}"
        gpus = 1 if i % 4 == 0 else 0
        template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
            "name": "main", "image": f"registry/{name}:1",
            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}}]}}
        deployments.append({"metadata": {"name": name, "namespace": ns, "generation": 2,
                                         "annotations": {"deployment.kubernetes.io/revision": "2"}},
                            "spec": {"replicas": 2, "template": template},
                            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                                       "readyReplicas": 2, "conditions": [{"type": "Progressing", "status": "True",
                                                                           "reason": "NewReplicaSetAvailable"}]}})
        for rev in (1, 2):
            replicasets.append({"metadata": {"name": f"{name}-rs{rev}", "namespace": ns,
                                             "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                                             "ownerReferences": [{"kind": "Deployment", "name": name}]},
                                "spec": {"template": template}})
        for p in range(2):
            pods.append({"metadata": {"name": f"{name}-rs2-{p}", "namespace": ns,
                                      "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-rs2"}]},
                         "spec": {"nodeName": nodes[(i * 2 + p) % len(nodes)]["metadata"]["name"], **template["spec"]},
                         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                                    "containerStatuses": [{"name": "main", "restartCount": 0, "state": {"running": {}}}]}})
    events = [{"metadata": {"name": f"e{i}", "namespace": "team-0"}, "involvedObject": {"kind": "Pod", "name": f"svc-{i}-rs2-0"},
               "type": "Normal", "reason": "Started", "lastTimestamp": "2026-01-05T00:00:00Z"} for i in range(min(n, 500))]

    def lst(items: list) -> bytes:
        return json.dumps({"metadata": {}, "items": items}).encode()

    return {"/apis/apps/v1/deployments": lst(deployments), "/apis/apps/v1/statefulsets": lst([]),
            "/apis/apps/v1/replicasets": lst(replicasets), "/api/v1/pods": lst(pods), "/api/v1/nodes": lst(nodes),
            "/api/v1/events": lst(events), "/apis": json.dumps({"groups": []}).encode()}


def serve(routes: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str, list[int]]:
    hits = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            hits[0] += 1
            body = routes.get(self.path.split("?")[0].rstrip("/") or "/", b'{"kind":"Status","code":404}')
            self.send_response(200 if self.path.split("?")[0].rstrip("/") in routes else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'deployments':>11} {'pods':>6} {'requests/snapshot':>17} {'raw lists s':>11} {'snapshot s':>10} {'ratio':>6}")
    for n in (int(s) for s in args.sizes.split(",")):
        server, url, hits = serve(build(n))
        kube = KubeCluster(api_client_for_url(url))
        kube.snapshot()  # warm up: connection pool, DRA discovery (once)
        raw_times, snap_times, per_snapshot = [], [], 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            kube.read_raw()
            raw_times.append(time.perf_counter() - start)
            before = hits[0]
            start = time.perf_counter()
            snap = kube.snapshot()
            snap_times.append(time.perf_counter() - start)
            per_snapshot = hits[0] - before
        raw, full = min(raw_times), min(snap_times)
        print(f"{n:>11} {len(snap.pods):>6} {per_snapshot:>17} {raw:>11.3f} {full:>10.3f} {full / raw:>6.2f}")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
