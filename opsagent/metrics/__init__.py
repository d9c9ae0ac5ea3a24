"""Metrics from Prometheus: GPU utilisation per pod and request rate per workload."""

from opsagent.metrics.prometheus import (
    DEFAULT_GPU_UTIL_QUERY,
    INGRESS_NGINX_QUERY,
    KEDA_HTTP_QUERY,
    MetricsError,
    MetricsQueryError,
    MetricsUnavailable,
    REQUEST_RATE_PRESETS,
    PrometheusClient,
    request_rate_query,
)

__all__ = [
    "DEFAULT_GPU_UTIL_QUERY", "INGRESS_NGINX_QUERY", "KEDA_HTTP_QUERY", "MetricsError",
    "MetricsQueryError", "MetricsUnavailable", "PrometheusClient", "REQUEST_RATE_PRESETS", "request_rate_query",
]
