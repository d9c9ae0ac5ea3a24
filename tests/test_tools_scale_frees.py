"""Scaling down reports the GPUs it gives back, so the audit log can count GPU-hours freed."""

from __future__ import annotations

from test_tools_behaviour import call, cluster, make_gate  # noqa: F401  (cluster is a fixture)


def test_scale_down_reports_gpus_freed_and_scale_up_frees_none(cluster):  # noqa: F811
    gate, _ = make_gate(cluster)
    gate.submit(call("scale_workload", namespace="inference", name="llm", replicas=2))
    cluster.advance(600)
    down = gate.submit(call("scale_workload", namespace="inference", name="llm", replicas=0))
    assert down.ok and down.data["gpus_freed"] == 4  # 2 GPUs per replica, 2 replicas removed
    up = gate.submit(call("scale_workload", namespace="inference", name="llm", replicas=1))
    assert up.ok and up.data["gpus_freed"] == 0
