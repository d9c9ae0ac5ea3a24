"""Benchmark: kube adapter snapshot cost against a loopback list server.

Serves pre-rendered list responses (Deployments, their ReplicaSets and pods,
GPU nodes, events) from a stdlib HTTP server on 127.0.0.1. kmock's emulator is
not used here: it slows with every stored object and recorded request, so at
5,000 Deployments it would measure itself, not the adapter.

Two object shapes:
- `real` (the goal applies): every object is a copy of a real one from
  tests/fixtures/kube (a Deployment, a ReplicaSet, a Pod and a GPU node as the
  API server returns them, managedFields left out), renamed per workload.
- `minimal`: only the fields the adapter reads. Decoding is then as cheap as it
  can be, so the ratio is the worst case.

Prints, per shape and size: HTTP requests per snapshot (goal: constant), time
of the raw list calls alone (HTTP + JSON decode, `KubeCluster.read_raw`), full
snapshot time, and their ratio (goal: at most 1.5x for real objects): medians over
paired runs, each timed from a collected heap, with the range of ratios.

Run: .venv/bin/python evals/bench/kube_snapshot.py [--sizes 100,1000,5000] [--shapes real,minimal] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from opsagent.cluster.kube import KubeCluster, api_client_for_url


FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "kube"


def _template(obj: dict, **paths: str) -> str:
    """`obj` as JSON with placeholders (@NAME@ ...) at the given dotted paths."""
    for dotted, marker in paths.items():
        *parents, last = dotted.split(".")
        here = obj
        for key in parents:
            here = here[int(key)] if isinstance(here, list) else here[key]
        here[last] = marker
    return json.dumps(obj, default=str)


def build_real(n: int) -> dict[str, bytes]:
    """List bodies made of copies of real API objects, renamed per workload."""
    deployment = json.loads((FIXTURES / "deployment-new-replicaset-available.json").read_text())
    replicaset = json.loads((FIXTURES / "replicaset-dice-roller-rev2.json").read_text())
    pod = yaml.safe_load((FIXTURES / "pod-crashloopbackoff.yaml").read_text())
    node = json.loads((FIXTURES / "node-gpu-gfd.json").read_text())
    deployment["spec"]["replicas"] = 2
    deployment["status"].update(replicas=2, readyReplicas=2, availableReplicas=2, updatedReplicas=2)
    deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
    status = pod["status"]["containerStatuses"][0]
    status.update(ready=True, restartCount=0, state={"running": {"startedAt": "2026-01-05T00:00:00Z"}})
    pod["status"]["conditions"] = [dict(c, status="True") for c in pod["status"]["conditions"]]
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "u",
                                           "controller": True, "blockOwnerDeletion": True}]
    gpu_limits = {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
    templates = {}
    for gpus in (0, 1):
        d, r, p = (json.loads(json.dumps(o, default=str)) for o in (deployment, replicaset, pod))
        if gpus:
            d["spec"]["template"]["spec"]["containers"][0]["resources"] = gpu_limits
            r["spec"]["template"]["spec"]["containers"][0]["resources"] = gpu_limits
            p["spec"]["containers"][0]["resources"] = gpu_limits
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "@REV@"
        r["metadata"]["ownerReferences"][0]["uid"] = d["metadata"]["uid"]  # the copies share the Deployment's uid
        templates[gpus] = (
            _template(d, **{"metadata.name": "@NAME@", "metadata.namespace": "@NS@"}),
            _template(r, **{"metadata.name": "@RS@", "metadata.namespace": "@NS@", "metadata.ownerReferences.0.name": "@NAME@"}),
            _template(p, **{"metadata.name": "@POD@", "metadata.namespace": "@NS@", "metadata.ownerReferences.0.name": "@RS@",
                            "spec.nodeName": "@NODE@"}),
        )
    nodes = []
    for i in range(max(1, n // 16)):
        copy = json.loads(json.dumps(node))
        copy["metadata"]["name"] = f"gpu-{i}"
        nodes.append(json.dumps(copy))
    deployments, replicasets, pods = [], [], []
    for i in range(n):
        d, r, p = templates[1 if i % 4 == 0 else 0]
        ns, name = f"team-{i % 20}", f"svc-{i}"
        deployments.append(d.replace("@NAME@", name).replace("@NS@", ns))
        for rev in (1, 2):
            replicasets.append(r.replace("@RS@", f"{name}-rs{rev}").replace("@NAME@", name).replace("@NS@", ns)
                               .replace("@REV@", str(rev)))
        for k in range(2):
            pods.append(p.replace("@POD@", f"{name}-rs2-{k}").replace("@RS@", f"{name}-rs2").replace("@NS@", ns)
                        .replace("@NODE@", f"gpu-{(i * 2 + k) % len(nodes)}"))
    events = [json.dumps({"metadata": {"name": f"e{i}", "namespace": "team-0"},
                          "involvedObject": {"kind": "Pod", "name": f"svc-{i}-rs2-0"},
                          "type": "Normal", "reason": "Started", "lastTimestamp": "2026-01-05T00:00:00Z"})
              for i in range(min(n, 500))]

    def lst(items: list[str]) -> bytes:
        return ('{"metadata": {}, "items": [' + ",".join(items) + "]}").encode()

    return {"/apis/apps/v1/deployments": lst(deployments), "/apis/apps/v1/statefulsets": lst([]),
            "/apis/apps/v1/replicasets": lst(replicasets), "/api/v1/pods": lst(pods), "/api/v1/nodes": lst(nodes),
            "/api/v1/events": lst(events), "/apis": json.dumps({"groups": []}).encode(), **owners(n)}


def owners(n: int) -> dict[str, bytes]:
    """Autoscalers and disruption budgets: an HPA on every 10th Deployment, a KEDA ScaledObject on every 20th
    (offset by 5), a PodDisruptionBudget on every 10th; the KEDA HTTP add-on is not installed (404)."""
    hpas, scaled, pdbs = [], [], []
    for i in range(n):
        ns, name = f"team-{i % 20}", f"svc-{i}"
        if i % 10 == 0:
            hpas.append({"metadata": {"name": name, "namespace": ns}, "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 1, "maxReplicas": 4}, "status": {"currentReplicas": 2, "desiredReplicas": 2, "conditions": [
                    {"type": "AbleToScale", "status": "True"}, {"type": "ScalingActive", "status": "True"}]}})
            pdbs.append({"metadata": {"name": name, "namespace": ns}, "spec": {
                "minAvailable": 1, "selector": {"matchLabels": {"app": name}}},
                "status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2}})
        elif i % 20 == 5:
            scaled.append({"metadata": {"name": name, "namespace": ns}, "spec": {
                "scaleTargetRef": {"name": name}, "minReplicaCount": 0, "maxReplicaCount": 4},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}})

    def lst(items: list) -> bytes:
        return json.dumps({"metadata": {}, "items": items}).encode()

    return {"/apis/autoscaling/v2/horizontalpodautoscalers": lst(hpas), "/apis/keda.sh/v1alpha1/scaledobjects": lst(scaled),
            "/apis/policy/v1/poddisruptionbudgets": lst(pdbs), **needs(n)}


def needs(n: int) -> dict[str, bytes]:
    """What pods need: a Service with its EndpointSlice (two ready endpoints) and a ConfigMap per Deployment, a
    Secret per second one, a PersistentVolumeClaim per tenth (as metadata only the server would send the first two)."""
    services, slices, config_maps, secrets, claims = [], [], [], [], []
    for i in range(n):
        ns, name = f"team-{i % 20}", f"svc-{i}"
        meta = {"name": name, "namespace": ns, "resourceVersion": str(i + 1)}
        services.append({"metadata": meta, "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{i // 250}.{i % 250}",
                                                    "selector": {"app": name},
                                                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        slices.append({"metadata": {**meta, "name": f"{name}-x1", "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "endpoints": [
                           {"addresses": [f"10.244.{i // 250}.{k}"], "conditions": {"ready": True}} for k in range(2)],
                       "ports": [{"name": "http", "port": 8080}]})
        config_maps.append({"metadata": meta})
        if i % 2 == 0:
            secrets.append({"metadata": {**meta, "name": f"{name}-token"}})
        if i % 10 == 0:
            claims.append({"metadata": {**meta, "name": f"{name}-cache"}, "spec": {
                "storageClassName": "fast", "resources": {"requests": {"storage": "100Gi"}}}, "status": {"phase": "Bound"}})

    def lst(items: list) -> bytes:
        return json.dumps({"metadata": {}, "items": items}).encode()

    return {"/api/v1/services": lst(services), "/apis/discovery.k8s.io/v1/endpointslices": lst(slices),
            "/api/v1/configmaps": lst(config_maps), "/api/v1/secrets": lst(secrets),
            "/api/v1/persistentvolumeclaims": lst(claims)}


def build_minimal(n: int) -> dict[str, bytes]:
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
                                             "ownerReferences": [{"kind": "Deployment", "name": name,
                                                                  "controller": True}]},
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
            "/api/v1/events": lst(events), "/apis": json.dumps({"groups": []}).encode(), **owners(n)}


def pages(body: bytes, limit: int) -> list[bytes]:
    """A list body cut into pages of `limit` items, each with the continue token of the next (its index), as an
    API server answers `limit` and `continue`."""
    data = json.loads(body)
    items = data.get("items") or []
    chunks = [items[i:i + limit] for i in range(0, len(items), limit)] or [[]]
    out = []
    for i, chunk in enumerate(chunks):
        meta = {"resourceVersion": "1", **({"continue": str(i + 1)} if i + 1 < len(chunks) else {})}
        out.append(json.dumps({"metadata": meta, "items": chunk}).encode())
    return out


def serve(routes: dict[str, bytes], *, paged: bool = False,
          idle_watches: threading.Event | None = None) -> tuple[ThreadingHTTPServer, str, list[int]]:
    """Serve `routes` on 127.0.0.1. With `paged`, list calls with `limit` get pages and continue tokens (cut on the
    first such call, so a warm-up snapshot pays for it); without, the whole list (a server may ignore `limit`).
    With `idle_watches`, a watch is held open and sends nothing (an idle cluster) until that event is set."""
    hits = [0]
    cut: dict[tuple[str, int], list[bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one buffered write with Nagle off: otherwise every keep-alive
        # request stalls ~40 ms on delayed ACKs, which would be timed as "raw list" cost.
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def do_GET(self) -> None:
            hits[0] += 1
            path, _, query = self.path.partition("?")
            path = path.rstrip("/") or "/"
            body = routes.get(path, b'{"kind":"Status","code":404}')
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            if idle_watches is not None and params.get("watch") == "true":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                idle_watches.wait()
                self.close_connection = True
                return
            if paged and path in routes and params.get("limit", "").isdigit() and path != "/apis":
                limit = int(params["limit"])
                if (path, limit) not in cut:
                    cut[path, limit] = pages(body, limit)
                page = params.get("continue", "0")
                body = cut[path, limit][int(page) if page.isdigit() else 0]
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
    return server, f"http://127.0.0.1:{server.server_address[1]}", hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--shapes", default="real,minimal")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    builders = {"real": build_real, "minimal": build_minimal}
    print(f"{'shape':>7} {'deployments':>11} {'pods':>6} {'MiB':>5} {'requests/snapshot':>17} {'raw lists s':>11} "
          f"{'snapshot s':>10} {'ratio':>6}  (range)   medians of {args.repeat} paired runs")
    for shape, n in ((shape, int(s)) for shape in args.shapes.split(",") for s in args.sizes.split(",")):
        routes = builders[shape](n)
        mib = sum(len(body) for body in routes.values()) / 2**20
        server, url, hits = serve(routes)
        kube = KubeCluster(api_client_for_url(url))
        kube.snapshot()  # warm up: connection pool, DRA discovery (once)
        raw_times, snap_times, per_snapshot, pods = [], [], 0, 0
        for _ in range(args.repeat):
            # Same conditions for both timings: a collected heap before each, and the result kept
            # alive until the clock stops (so freeing it is not counted against one side only).
            gc.collect()
            start = time.perf_counter()
            raw = kube.read_raw()
            raw_times.append(time.perf_counter() - start)
            del raw
            gc.collect()
            before = hits[0]
            start = time.perf_counter()
            snap = kube.snapshot()
            snap_times.append(time.perf_counter() - start)
            per_snapshot, pods = hits[0] - before, len(snap.pods)
            del snap
        ratios = sorted(f / r for f, r in zip(snap_times, raw_times))
        raw, full, ratio = statistics.median(raw_times), statistics.median(snap_times), statistics.median(ratios)
        print(f"{shape:>7} {n:>11} {pods:>6} {mib:>5.1f} {per_snapshot:>17} {raw:>11.3f} {full:>10.3f} "
              f"{ratio:>6.2f}  ({ratios[0]:.2f}-{ratios[-1]:.2f})")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
