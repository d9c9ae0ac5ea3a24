"""A small Prometheus HTTP API client for the two figures opsagent needs.

What it is for: GPU utilisation per pod (DCGM exporter's DCGM_FI_DEV_GPU_UTIL)
and request rate per workload (a PromQL query the operator configures), read
through `/api/v1/query` with httpx. Both label shapes of the DCGM series are
understood: `exported_pod`/`exported_namespace` (the exporter chart's default
ServiceMonitor, honorLabels false) win over `pod`/`namespace` (honorLabels
true, or a scrape config that keeps the exporter's labels).

What it must not do: decide anything about idleness, or leak httpx errors:
every failure becomes a `MetricsError` subclass saying what went wrong.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

DEFAULT_GPU_UTIL_QUERY = "DCGM_FI_DEV_GPU_UTIL"

# The query must return one series per workload with a `workload` label and a
# namespace label (`exported_namespace` is preferred when both exist).
INGRESS_NGINX_QUERY = (
    'sum by (exported_namespace, workload) (label_replace('
    'rate(nginx_ingress_controller_requests[{window}]), "workload", "$1", "exported_service", "(.+)"))'
)
KEDA_HTTP_QUERY = (
    'sum by (namespace, workload) (label_replace('
    'rate(interceptor_request_count_total[{window}]), "workload", "$1", "host", "([^.]+).*"))'
)


# Named request-rate queries, for `--request-rate-query NAME`.
REQUEST_RATE_PRESETS: dict[str, str] = {
    "ingress-nginx": INGRESS_NGINX_QUERY,
    "keda-http": KEDA_HTTP_QUERY,
}
# A bare lower-case word with hyphens: meant as a preset name, never sensible PromQL.
_PRESET_LIKE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)+$")


def request_rate_query(value: str | None) -> str | None:
    """The PromQL for a `--request-rate-query` value: a preset name, or a query used as given.

    None or blank means no query (request_rate stays unknown). Raises
    ValueError for a name that looks like a preset but is not one.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text in REQUEST_RATE_PRESETS:
        return REQUEST_RATE_PRESETS[text]
    if _PRESET_LIKE.match(text):
        raise ValueError(f"request-rate query {text!r} is not a preset (known: {', '.join(REQUEST_RATE_PRESETS)}); "
                         "give one of those or a PromQL query returning one series per workload with a `workload` label")
    return text


class MetricsError(Exception):
    """Base of every Prometheus failure."""


class MetricsUnavailable(MetricsError):
    """Prometheus could not be reached, timed out, or answered 5xx. Try later."""


class MetricsQueryError(MetricsError):
    """Prometheus refused the query (bad PromQL, 4xx, or an error envelope). Fix the query."""


def _labels(metric: dict[str, str], name: str) -> str | None:
    """The workload's `name` label: the exported_ form when the scrape renamed it, else the plain one."""
    return metric.get(f"exported_{name}") or metric.get(name) or None


class PrometheusClient:
    """`PrometheusClient("http://prometheus:9090", timeout=5, request_rate_query=INGRESS_NGINX_QUERY)`."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, request_rate_query: str | None = None,
        window: str = "5m", gpu_util_query: str = DEFAULT_GPU_UTIL_QUERY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.request_rate_query = request_rate_query
        self.window = window
        self.gpu_util_query = gpu_util_query
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; returns the vector's `result` list."""
        self.requests += 1
        try:
            response = self._http.get("/api/v1/query", params={"query": promql})
        except httpx.TimeoutException as exc:
            raise MetricsUnavailable(f"Prometheus at {self.base_url} timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"Prometheus at {self.base_url} is unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 500:
            raise MetricsUnavailable(f"Prometheus at {self.base_url} answered HTTP {response.status_code}")
        if not isinstance(body, dict):
            raise MetricsQueryError(f"Prometheus at {self.base_url} answered HTTP {response.status_code} without a JSON body")
        if body.get("status") != "success" or response.status_code >= 400:
            raise MetricsQueryError(
                f"Prometheus rejected query {promql!r}: {body.get('errorType', 'error')}: {body.get('error', response.status_code)}"
            )
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise MetricsQueryError(f"query {promql!r} returned {data.get('resultType')!r}, expected an instant vector")
        return list(data.get("result") or [])

    def ping(self) -> int:
        """Number of `up` series; raises MetricsError when Prometheus cannot answer."""
        return len(self.query("up"))

    def gpu_utilization_by_pod(self) -> dict[str, float]:
        """{'namespace/pod': mean percent busy over that pod's GPUs}. Idle GPUs (no pod) are left out."""
        sums: dict[str, list[float]] = {}
        result = self.query(self.gpu_util_query)
        # When the scrape renamed the exporter's labels, an unattributed GPU's `pod` names the exporter itself.
        renamed = any("exported_pod" in (s.get("metric") or {}) for s in result)
        for series in result:
            metric = series.get("metric") or {}
            if renamed and "exported_pod" not in metric:
                continue
            pod, namespace = _labels(metric, "pod"), _labels(metric, "namespace")
            if not pod or not namespace:
                continue
            sums.setdefault(f"{namespace}/{pod}", []).append(_value(series))
        return {key: sum(values) / len(values) for key, values in sums.items()}

    def request_rates(self) -> dict[str, float] | None:
        """{'namespace/workload': requests per second}, or None when no query is configured."""
        if not self.request_rate_query:
            return None
        promql = self.request_rate_query.replace("{window}", self.window)
        out: dict[str, float] = {}
        for series in self.query(promql):
            metric = series.get("metric") or {}
            workload, namespace = metric.get("workload"), _labels(metric, "namespace")
            if workload and namespace:
                out[f"{namespace}/{workload}"] = out.get(f"{namespace}/{workload}", 0.0) + max(0.0, _value(series))
        return out


def _value(series: dict[str, Any]) -> float:
    try:
        return float((series.get("value") or [0, "0"])[1])
    except (TypeError, ValueError, IndexError):
        return 0.0
