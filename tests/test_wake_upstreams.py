"""The wake proxy takes a route's upstream from a Service: `upstream: service:NAMESPACE/NAME[:PORT]`.

Spec:
- a routes file may name a Service instead of a URL; a malformed one is refused when the file loads,
  naming the file, the line and the field;
- at start-up each such route resolves to the Service's cluster address and port (`http://IP:PORT`),
  by port number or name, or its only port when none is named; a headless Service resolves to its DNS
  name;
- a Service that does not exist, has no port, has no port of that number or name, or has several
  ports and none named, is one error naming the file line, the route and what is wrong;
- end to end on the simulator: a Service whose address is a loopback server carries the proxied
  request there; `opsagent wake-proxy` with a route to a missing Service stops at once with that line
  and no traceback.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
import yaml
from wakeutil import serve, upstream_app

from opsagent.model import Service, ServicePort, Snapshot
from opsagent.wake import GateWaker, WakeProxy, load_routes
from opsagent.wake.upstreams import UpstreamError, resolve_upstreams
from opsagent.yamlfile import FileError

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
SERVICES = (
    Service(namespace="chat", name="chat-ui", cluster_ip="10.96.14.7", ports=(ServicePort(name="http", port=80),)),
    Service(namespace="chat", name="two", cluster_ip="10.96.14.8",
            ports=(ServicePort(name="http", port=80), ServicePort(name="metrics", port=9090))),
    Service(namespace="chat", name="headless", cluster_ip="None", ports=(ServicePort(port=8080),)),
    Service(namespace="chat", name="portless", cluster_ip="10.96.14.9"),
)


def routes_file(tmp_path: Path, *upstreams: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump({"routes": [{"path_prefix": f"/r{i}", "workload": "chat/chat-ui", "upstream": u}
                                               for i, u in enumerate(upstreams)]}, sort_keys=False))
    return path


@pytest.mark.parametrize(("upstream", "url"), [
    ("service:chat/chat-ui", "http://10.96.14.7:80"),
    ("service:chat/chat-ui:http", "http://10.96.14.7:80"),
    ("service:chat/two:9090", "http://10.96.14.8:9090"),
    ("service:chat/two:metrics", "http://10.96.14.8:9090"),
    ("service:chat/headless", "http://headless.chat.svc:8080"),
    ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
])
def test_service_upstreams_resolve_to_the_cluster_address(tmp_path, upstream, url):
    path = routes_file(tmp_path, upstream)
    table = resolve_upstreams(load_routes(path), Snapshot(time=NOW, services=SERVICES), path=path)
    assert table.routes[0].upstream == url


@pytest.mark.parametrize(("upstream", "says"), [
    ("service:chat/ghost", "Service chat/ghost does not exist"),
    ("service:chat/portless", "Service chat/portless has no port"),
    ("service:chat/chat-ui:grpc", "Service chat/chat-ui has no port 'grpc' (it has http=80)"),
    ("service:chat/two", "has 2 ports (http, metrics); name one"),
])
def test_an_unresolvable_service_names_the_line_and_why(tmp_path, upstream, says):
    path = routes_file(tmp_path, "http://a:1", upstream)
    with pytest.raises(UpstreamError) as err:
        resolve_upstreams(load_routes(path), Snapshot(time=NOW, services=SERVICES), path=path)
    assert str(err.value).startswith(f"{path}:7: routes[1] upstream {upstream}: ") and says in str(err.value)


def test_a_service_that_selects_another_workload_is_named(tmp_path):
    from opsagent.wake.upstreams import other_workloads

    services = (Service(namespace="chat", name="chat-ui", cluster_ip="10.96.14.7", selector={"app": "chat-ui"},
                        ports=(ServicePort(port=80),), workloads=("chat/chat-ui",)),
                Service(namespace="chat", name="admin", cluster_ip="10.96.14.8", selector={"app": "admin"},
                        ports=(ServicePort(port=80),), workloads=("chat/admin-ui",)))
    path = routes_file(tmp_path, "service:chat/chat-ui", "service:chat/admin")
    assert other_workloads(load_routes(path), Snapshot(time=NOW, services=services), path=path) == [
        f"{path}:7: routes[1] wakes chat/chat-ui, but Service chat/admin selects chat/admin-ui"]


def test_a_malformed_service_upstream_is_refused_when_the_file_loads(tmp_path):
    path = routes_file(tmp_path, "service:chat")
    with pytest.raises(FileError) as err:
        load_routes(path)
    assert f"{path}:4:" in str(err.value) and "service:NAMESPACE/NAME" in str(err.value)


def _scenario(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "start": "2026-01-05T09:00:00Z", "nodes": [{"name": "gpu-a", "gpus": [{"count": 1}]}],
        "workloads": [{"namespace": "chat", "name": "chat-ui", "image": "r/chat-ui:1", "gpus": 1, "labels": {"app": "chat-ui"}}],
        "services": [{"namespace": "chat", "name": "chat-ui", "selector": {"app": "chat-ui"}, "cluster_ip": "127.0.0.1",
                      "ports": [{"name": "http", "port": port}]}]}))
    return path


def test_a_request_reaches_the_service_address_on_the_simulator(tmp_path):
    from opsagent.runtime import open_runtime

    async def body():
        async with serve(upstream_app("svc")) as up_url:
            port = int(up_url.rsplit(":", 1)[1])
            rt = open_runtime(cluster=f"sim:{_scenario(tmp_path, port)}", policies=REPO / "policies", db=tmp_path / "o.db")
            path = routes_file(tmp_path, "service:chat/chat-ui:http")
            table = resolve_upstreams(load_routes(path), rt.observe(), path=path)
            waker = GateWaker(gate=rt.gate, observe=rt.observe, clock=rt.clock, on_request=rt.sim.record_request,
                              lock=threading.Lock())
            proxy = WakeProxy(routes=table, waker=waker, default_timeout=30)
            async with serve(proxy.app()) as proxy_url, aiohttp.ClientSession() as client:
                async with client.get(f"{proxy_url}/r0/hello") as resp:
                    return resp.status, await resp.json()

    status, payload = asyncio.run(body())
    assert status == 200 and payload["who"] == "svc" and payload["path"] == "/r0/hello"


def test_the_command_stops_on_a_missing_service_with_the_line(tmp_path):
    path = routes_file(tmp_path, "service:chat/ghost:http")
    run = subprocess.run(
        [sys.executable, "-m", "opsagent", "wake-proxy", "--routes", str(path), "--cluster", f"sim:{_scenario(tmp_path, 80)}",
         "--policies", str(REPO / "policies"), "--db", str(tmp_path / "w.db"), "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}, cwd=tmp_path,
        timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{path}:4: routes[0] upstream service:chat/ghost:http: Service chat/ghost does not exist" in run.stderr
