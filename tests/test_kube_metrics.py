"""The Prometheus client against a real HTTP server on 127.0.0.1 serving the fixture JSON.

Spec: GPU utilisation per pod from DCGM_FI_DEV_GPU_UTIL in both label shapes
(exported_pod when the scrape renamed labels, pod with honorLabels); request
rate per workload from the configured query; errors are typed; a snapshot
with Prometheus carries the figures, without it says they are unknown.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from kube_harness import FIXTURES, Emulator
from test_kube_read import NOW, seed_cluster

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.metrics import (
    INGRESS_NGINX_QUERY, KEDA_HTTP_QUERY, MetricsQueryError, MetricsUnavailable, PrometheusClient, request_rate_query,
)

RATES = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"exported_namespace": "llm", "namespace": "ingress-nginx", "workload": "vllm-llama"}, "value": [1, "2.5"]},
    {"metric": {"namespace": "default", "workload": "dice-roller"}, "value": [1, "0"]},
]}}


class FakePrometheus:
    def __init__(self, routes: dict[str, tuple[int, object]]) -> None:
        self.queries: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query).get("query", [""])[0]
                outer.queries.append(query)
                status, body = routes.get(query, routes.get("*", (200, {"status": "success", "data": {"resultType": "vector", "result": []}})))
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True, kwargs={"poll_interval": 0.02}).start()

    def __enter__(self) -> "FakePrometheus":
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("shape", ["honorlabels", "exported-labels"])
def test_gpu_utilization_both_label_shapes(shape):
    body = load(f"query-vector-dcgm-gpu-util-{shape}-assembled.json")
    with FakePrometheus({"DCGM_FI_DEV_GPU_UTIL": (200, body)}) as prom:
        util = PrometheusClient(prom.url, timeout=2).gpu_utilization_by_pod()
    assert util == {"llm/vllm-llama-5c7f9d8b6d-q8w2n": 87.0}  # the idle GPU / exporter pod is left out


def test_request_rates_from_template():
    rendered = INGRESS_NGINX_QUERY.replace("{window}", "2m")
    with FakePrometheus({rendered: (200, RATES)}) as prom:
        client = PrometheusClient(prom.url, timeout=2, request_rate_query=INGRESS_NGINX_QUERY, window="2m")
        assert client.request_rates() == {"llm/vllm-llama": 2.5, "default/dice-roller": 0.0}
        assert prom.queries == [rendered]
    assert PrometheusClient("http://127.0.0.1:9", timeout=1).request_rates() is None  # no query, no request


def test_bad_query_and_outages_are_typed():
    with FakePrometheus({"*": (400, load("query-error-bad-data-assembled.json"))}) as prom:
        with pytest.raises(MetricsQueryError, match="bad_data"):
            PrometheusClient(prom.url, timeout=2).query("sum(")
    with FakePrometheus({"*": (503, b"upstream down")}) as prom:
        with pytest.raises(MetricsUnavailable, match="503"):
            PrometheusClient(prom.url, timeout=2).ping()
    with pytest.raises(MetricsUnavailable, match="unreachable"):
        PrometheusClient("http://127.0.0.1:9", timeout=1).ping()


def test_snapshot_carries_metrics_and_notes():
    util = load("query-vector-dcgm-gpu-util-honorlabels-assembled.json")
    # attribute the measured GPU to the running vllm pod that holds nori/gpu-0
    util["data"]["result"][0]["metric"]["pod"] = "vllm-llama-5c7f9d8b6d-r7k4m"
    rendered = INGRESS_NGINX_QUERY.replace("{window}", "5m")
    with Emulator() as emu, FakePrometheus({"DCGM_FI_DEV_GPU_UTIL": (200, util), rendered: (200, RATES)}) as prom:
        seed_cluster(emu)
        client = PrometheusClient(prom.url, timeout=2, request_rate_query=INGRESS_NGINX_QUERY)
        snap = KubeCluster(api_client_for_url(emu.url), prometheus=client, clock=VirtualClock(NOW)).snapshot()
    vllm = snap.workload("llm/vllm-llama")
    assert vllm.gpu_utilization == 87.0 and vllm.request_rate == 2.5
    assert snap.gpu("nori/gpu-0").utilization == 87.0
    assert snap.workload("default/dice-roller").request_rate == 0.0
    assert snap.workload("default/guestbook-ui").request_rate is None  # no series: unknown, not zero
    assert not any("no Prometheus" in n for n in snap.notes)


def test_snapshot_survives_prometheus_outage_with_a_note():
    with Emulator() as emu:
        seed_cluster(emu)
        client = PrometheusClient("http://127.0.0.1:9", timeout=1)
        snap = KubeCluster(api_client_for_url(emu.url), prometheus=client, clock=VirtualClock(NOW)).snapshot()
    assert snap.workload("llm/vllm-llama").gpu_utilization is None
    assert any("GPU utilisation unknown" in n for n in snap.notes)


KEDA_RATES = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"namespace": "chat", "workload": "chat-ui"}, "value": [1, "0.25"]},
]}}


@pytest.mark.parametrize(("value", "query"), [
    ("ingress-nginx", INGRESS_NGINX_QUERY),
    ("keda-http", KEDA_HTTP_QUERY),
    (" keda-http ", KEDA_HTTP_QUERY),
    ('sum by (namespace, workload) (rate(my_requests_total[{window}]))', 'sum by (namespace, workload) (rate(my_requests_total[{window}]))'),
    ("my_recorded_rate", "my_recorded_rate"),
    (None, None),
    ("", None),
])
def test_request_rate_query_presets_and_raw_promql(value, query):
    assert request_rate_query(value) == query


@pytest.mark.parametrize("value", ["ingress-ngnix", "keda-http-v2", "nginx-ingress"])
def test_a_name_that_is_not_a_preset_is_refused_with_the_known_ones(value):
    with pytest.raises(ValueError, match=f"{value!r} is not a preset .*ingress-nginx, keda-http"):
        request_rate_query(value)


@pytest.mark.parametrize("preset", ["keda-http", "raw"])
def test_a_configured_query_reaches_prometheus_and_fills_request_rate(preset):
    raw = 'sum by (namespace, workload) (rate(my_requests_total[{window}]))'
    chosen = request_rate_query(raw if preset == "raw" else preset)
    rendered = chosen.replace("{window}", "5m")
    with FakePrometheus({rendered: (200, KEDA_RATES)}) as prom:
        client = PrometheusClient(prom.url, timeout=2, request_rate_query=chosen)
        assert client.request_rates() == {"chat/chat-ui": 0.25}
        assert prom.queries == [rendered]


def test_a_narrowed_view_reuses_the_last_reading_and_a_snapshot_always_asks_again():
    """Prometheus answers for the whole cluster: a narrowed view (`snapshot_of`, once watching) reuses the reading of
    the last few seconds, with the same figures; a full snapshot queries again every time."""
    rendered = INGRESS_NGINX_QUERY.replace("{window}", "5m")
    with Emulator() as emu, FakePrometheus({rendered: (200, RATES)}) as prom:
        seed_cluster(emu)
        client = PrometheusClient(prom.url, timeout=2, request_rate_query=INGRESS_NGINX_QUERY)
        kube = KubeCluster(api_client_for_url(emu.url), prometheus=client, clock=VirtualClock(NOW))
        kube.start_watching()
        try:
            full = kube.snapshot()
            asked = len(prom.queries)
            narrow = kube.snapshot_of([full.workload("llm/vllm-llama").ref])
            assert len(prom.queries) == asked
            assert narrow.workload("llm/vllm-llama").request_rate == full.workload("llm/vllm-llama").request_rate == 2.5
            kube.snapshot()
            assert len(prom.queries) == asked * 2
        finally:
            kube.stop_watching()
