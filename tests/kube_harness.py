"""Loopback servers for the kube adapter's contract tests.

- `Emulator`: kmock's Kubernetes emulator on its own thread's event loop (the
  sync client would block it otherwise), one fresh per test, resources declared
  from kmock's bundled list, objects seeded from /work/shared/fixtures shapes.
- `StatusServer`: a stdlib http.server that answers a scripted sequence of
  (status, JSON body) and records each request, for error paths the emulator
  cannot produce (403 with an RBAC message, 409 Conflict, 503).
- `fixture(name)`: a fixture file as JSON-ready dicts (YAML timestamps turned
  back into strings).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "kube"  # copies of the shared fixture shapes


def _strings(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if "+00:00" in text else (text + "Z" if isinstance(value, dt.datetime) and value.tzinfo is None else text)
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    return value


def fixture(name: str, *, index: int = 0) -> dict[str, Any]:
    path = FIXTURES / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return _strings(docs[index])


PLURALS = {
    ("apps", "Deployment"): "apps/v1/deployments",
    ("apps", "ReplicaSet"): "apps/v1/replicasets",
    ("apps", "StatefulSet"): "apps/v1/statefulsets",
    ("", "Pod"): "v1/pods",
    ("", "Node"): "v1/nodes",
    ("", "Event"): "v1/events",
    ("resource.k8s.io", "ResourceSlice"): "resource.k8s.io/v1/resourceslices",
    ("resource.k8s.io", "ResourceClaim"): "resource.k8s.io/v1/resourceclaims",
    ("autoscaling", "HorizontalPodAutoscaler"): "autoscaling/v2/horizontalpodautoscalers",
    ("keda.sh", "ScaledObject"): "keda.sh/v1alpha1/scaledobjects",
    ("http.keda.sh", "HTTPScaledObject"): "http.keda.sh/v1alpha1/httpscaledobjects",
    ("", "ConfigMap"): "v1/configmaps",
    ("", "Secret"): "v1/secrets",
    ("", "PersistentVolumeClaim"): "v1/persistentvolumeclaims",
    ("", "Service"): "v1/services",
    ("discovery.k8s.io", "EndpointSlice"): "discovery.k8s.io/v1/endpointslices",
}


class Emulator:
    def __init__(self) -> None:
        import warnings

        import kmock  # imported here so test modules that do not need it stay fast

        warnings.filterwarnings("ignore", category=DeprecationWarning, module="kmock.*")

        self._kmock = kmock
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("kmock emulator did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self._kmock.KubernetesEmulator() as handler, self._kmock.Server(handler) as server:
            handler.resources.load_bundled()
            self.handler = handler
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        resource = PLURALS[(group, obj["kind"])]
        meta = obj["metadata"]
        self.handler.objects[resource, meta.get("namespace"), meta["name"]] = copy.deepcopy(obj)
        return obj

    def stored(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return json.loads(json.dumps(dict(self.handler.objects[resource, namespace, name]), default=dict))

    def requests(self, *, accept: bool = False) -> list[dict[str, Any]]:
        """Each request the emulator saw; with `accept`, its Accept header too."""
        out = []
        for req in list(self.handler):
            out.append({
                "method": str(req.method.value if hasattr(req.method, "value") else req.method).upper(),
                "path": req.url.path,
                "params": dict(req.params),
                "content_type": req.headers.get("Content-Type"),
                "body": req.data,
                **({"accept": req.headers.get("Accept")} if accept else {}),
            })
        return out


class StatusServer:
    """Answers each request with the next scripted (status, body); the last one repeats."""

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        self.script = list(script)
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                outer.seen.append({"method": self.command, "path": parts.path,
                                   "params": {k: v[0] for k, v in parse_qs(parts.query).items()},
                                   "content_type": self.headers.get("Content-Type"),
                                   "body": json.loads(raw) if raw else None})
                status, body = outer.script[0] if len(outer.script) == 1 else outer.script.pop(0)
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, kwargs={"poll_interval": 0.02})
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "StatusServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
