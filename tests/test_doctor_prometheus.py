"""doctor runs the request-rate query once, so a wrong preset or PromQL shows up before the daemon starts."""

from __future__ import annotations

from test_kube_metrics import RATES, FakePrometheus
from typer.testing import CliRunner

from opsagent.cli import app
from opsagent.cli.doctor import check_prometheus
from opsagent.metrics import INGRESS_NGINX_QUERY

UP = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {"job": "x"}, "value": [1, "1"]}]}}


def test_doctor_runs_the_request_rate_preset_and_counts_workloads():
    rendered = INGRESS_NGINX_QUERY.replace("{window}", "5m")
    with FakePrometheus({"up": (200, UP), rendered: (200, RATES)}) as prom:
        check = check_prometheus(url=prom.url, timeout=2, request_rate_query="ingress-nginx")
        assert prom.queries[-1] == rendered
    assert check.status == "ok" and "returns 2 workload(s)" in check.detail


def test_doctor_says_request_rates_stay_unknown_without_a_query_and_refuses_a_bad_preset():
    with FakePrometheus({"up": (200, UP)}) as prom:
        plain = check_prometheus(url=prom.url, timeout=2)
        bad = check_prometheus(url=prom.url, timeout=2, request_rate_query="nginx-ingress")
    assert plain.status == "ok" and "request rates stay unknown" in plain.detail
    assert bad.status == "failed" and "not a preset" in bad.detail


def test_daemon_accepts_the_request_rate_query_option():
    result = CliRunner().invoke(app, ["daemon", "--help"])
    assert result.exit_code == 0 and "--request-rate-query" in result.output
