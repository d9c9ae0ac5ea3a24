"""The Prometheus options, declared once for every command that reads metrics from a real cluster.

`--prometheus URL` (OPSAGENT_PROMETHEUS) says where Prometheus answers;
`--request-rate-query` (OPSAGENT_REQUEST_RATE_QUERY) says how to count each
workload's requests: a preset name (`ingress-nginx`, `keda-http`) or raw PromQL.
Commands pass both to `opsagent.runtime.open_runtime`, which resolves the
preset and reports a bad value. Declarations only: nothing here runs a query.
"""

from __future__ import annotations

import typer

from opsagent.metrics import REQUEST_RATE_PRESETS

PrometheusOpt = typer.Option(
    None, "--prometheus", envvar="OPSAGENT_PROMETHEUS",
    help="Prometheus URL for the kube adapter (GPU utilisation from DCGM, request rates).")
RequestRateQueryOpt = typer.Option(
    None, "--request-rate-query", envvar="OPSAGENT_REQUEST_RATE_QUERY",
    help=(f"How to count requests per workload: a preset ({', '.join(REQUEST_RATE_PRESETS)}) or a PromQL query "
          "returning one series per workload with `workload` and namespace labels ({window} = the rate window). "
          "Needs --prometheus; without it request_rate stays unknown."))
