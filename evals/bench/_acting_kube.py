"""The kube side of acting_cycle.py: a loopback API server with the bench's workloads, which lists, watches and scales.

It serves the list calls the kube adapter makes (one GPU Deployment, its
ReplicaSet and its running pod per workload, 8-GPU nodes; no KEDA, no DRA),
holds each watch open and streams every change to it as a real API server
does (chunked JSON lines, resourceVersions counting up), and applies scale
calls as the Deployment controller would: the new replicas at once, then the
pods of a workload scaled to zero deleted, then the Deployment's status. It
also answers Prometheus's instant queries: a request rate per workload (none
for the idle ones, whose pods started two hours ago) and no GPU series.
"""

from __future__ import annotations

import json
import queue
import re
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from opsagent.clock import RealClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.metrics import PrometheusClient

LISTS = {
    "/apis/apps/v1/deployments": "deployments", "/apis/apps/v1/statefulsets": "statefulsets",
    "/apis/apps/v1/replicasets": "replicasets", "/api/v1/pods": "pods", "/api/v1/nodes": "nodes",
    "/api/v1/events": "events", "/apis/autoscaling/v2/horizontalpodautoscalers": "horizontalpodautoscalers",
    "/apis/policy/v1/poddisruptionbudgets": "poddisruptionbudgets",
}
REQUESTS = "bench_requests"   # the request-rate query the bench configures
SCALE = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale$")
GPU = {"nvidia.com/gpu": "1"}


class ApiServer:
    """Objects by kind and 'namespace/name', one resourceVersion counter, and the open watches of each kind."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in LISTS.values()}
        self.version = 0
        self.watches: dict[str, list[queue.Queue]] = {kind: [] for kind in LISTS.values()}
        self.lock = threading.Lock()
        self.lists = 0
        self.rates: list[dict[str, Any]] = []   # the request-rate query's answer, one series per workload

    def put(self, kind: str, obj: dict[str, Any], event: str | None = "MODIFIED") -> str:
        with self.lock:
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            meta = obj["metadata"]
            self.objects[kind][f"{meta.get('namespace', '')}/{meta['name']}"] = obj
            self._send(kind, event, obj)
            return str(self.version)

    def delete(self, kind: str, key: str) -> None:
        with self.lock:
            obj = self.objects[kind].pop(key, None)
            if obj is not None:
                self.version += 1
                obj["metadata"]["resourceVersion"] = str(self.version)
                self._send(kind, "DELETED", obj)

    def _send(self, kind: str, event: str | None, obj: dict[str, Any]) -> None:
        if event is not None:
            line = json.dumps({"type": event, "object": obj}).encode() + b"\n"
            for watcher in self.watches[kind]:
                watcher.put(line)

    def scale(self, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        key = f"{namespace}/{name}"
        deployment = json.loads(json.dumps(self.objects["deployments"][key]))
        deployment["spec"]["replicas"] = replicas
        deployment["metadata"]["generation"] += 1
        version = self.put("deployments", deployment)
        if replicas == 0:
            for pod_key in [k for k, pod in self.objects["pods"].items()
                            if k.startswith(f"{namespace}/") and pod["metadata"]["ownerReferences"][0]["name"] == f"{name}-rs"]:
                self.delete("pods", pod_key)
        settled = json.loads(json.dumps(deployment))
        settled["status"].update(replicas=replicas, readyReplicas=replicas, availableReplicas=replicas,
                                 updatedReplicas=replicas, observedGeneration=settled["metadata"]["generation"])
        self.put("deployments", settled)
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
                "spec": {"replicas": replicas}, "status": {"replicas": replicas}}


def seed(server: ApiServer, scenario: Any, *, started: datetime) -> None:
    """The scenario's nodes and workloads as Kubernetes objects (one running GPU pod each), without watch events."""
    stamp = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = scenario.nodes[0]
    for i in range(spec.count):
        server.put("nodes", {"metadata": {"name": f"gpu-{i}", "labels": {"nvidia.com/gpu.product": "NVIDIA-L40S"}},
                             "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": "8"}, "capacity": {"nvidia.com/gpu": "8"},
                                                    "conditions": [{"type": "Ready", "status": "True"}]}}, event=None)
    template = {"metadata": {"labels": {}}, "spec": {"containers": [{"name": "main", "image": "",
                                                                      "resources": {"limits": GPU, "requests": GPU}}]}}
    for i, w in enumerate(scenario.workloads):
        ns, name = w.namespace, w.name
        tpl = json.loads(json.dumps(template))
        tpl["spec"]["containers"][0]["image"] = w.image
        server.put("deployments", {
            "metadata": {"name": name, "namespace": ns, "generation": 1, "labels": {"app": name},
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 1, "template": tpl},
            "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1,
                       "observedGeneration": 1,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}},
            event=None)
        server.put("replicasets", {
            "metadata": {"name": f"{name}-rs", "namespace": ns, "annotations": {"deployment.kubernetes.io/revision": "1"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                             "controller": True}],
                         "creationTimestamp": stamp},
            "spec": {"replicas": 1, "template": tpl}, "status": {"replicas": 1}}, event=None)
        server.rates.append({"metric": {"namespace": ns, "workload": name},
                             "value": [0, "0" if w.traffic is None else "5"]})
        server.put("pods", {
            "metadata": {"name": f"{name}-rs-0", "namespace": ns, "labels": {"app": name},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-rs"}]},
            "spec": {"nodeName": f"gpu-{i // 8}", "containers": tpl["spec"]["containers"]},
            "status": {"phase": "Running", "startTime": stamp, "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0}]}}, event=None)


def serve(server: ApiServer) -> tuple[ThreadingHTTPServer, str, threading.Event]:
    closing = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/api/v1/query":
                return self._json(200, {"status": "success", "data": {"resultType": "vector", "result": (
                    server.rates if REQUESTS in query else [])}})
            kind = LISTS.get(path.rstrip("/"))
            if path.rstrip("/") == "/apis":
                return self._json(200, {"kind": "APIGroupList", "groups": []})
            if kind is None:
                return self._json(404, {"kind": "Status", "code": 404, "message": f"{path} not found"})
            if "watch=true" in query:
                return self._watch(kind)
            with server.lock:
                server.lists += 1
                body = {"kind": "List", "metadata": {"resourceVersion": str(server.version)},
                        "items": list(server.objects[kind].values())}
                data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self, kind: str) -> None:
            events: queue.Queue = queue.Queue()
            with server.lock:
                server.watches[kind].append(events)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while not closing.is_set():
                    try:
                        line = events.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
            except OSError:
                pass
            finally:
                with server.lock:
                    server.watches[kind].remove(events)
                self.close_connection = True

        def do_PATCH(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            match = SCALE.match(self.path.partition("?")[0])
            if match is None:
                return self._json(404, {"kind": "Status", "code": 404, "message": f"{self.path} not served here"})
            self._json(200, server.scale(match.group(1), match.group(2), int(body["spec"]["replicas"])))

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return http, f"http://127.0.0.1:{http.server_address[1]}", closing


def kube_run(workloads: int, scenario: Any, cycles: Callable[..., dict[str, float]]) -> dict[str, float]:
    """The acting and quiet cycles on the kube adapter, watching, against the loopback server."""
    now = datetime.now(timezone.utc)
    server = ApiServer()
    seed(server, scenario, started=now - timedelta(hours=2))
    http, url, closing = serve(server)
    where = Path(tempfile.mkdtemp())
    cluster = KubeCluster(api_client_for_url(url), clock=RealClock(),
                          prometheus=PrometheusClient(url, request_rate_query=f"sum by (namespace, workload) ({REQUESTS})"))
    try:
        return cycles(cluster, cluster.clock, where)
    finally:
        closing.set()
        cluster.stop_watching()
        http.shutdown()
        http.server_close()
