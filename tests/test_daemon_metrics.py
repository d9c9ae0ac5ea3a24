"""The daemon's /metrics text: today's names, a cycle-time histogram, process metrics, any float value."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from opsagent.daemon.metrics import Metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_names_labels_histogram_and_process_series() -> None:
    m = Metrics()
    m.inc("opsagent_actions_total", tool="sleep_workload", outcome="ok")
    m.inc("opsagent_actions_total", 2, tool="sleep_workload", outcome="ok")
    m.inc("opsagent_cycles_total", result="ok")
    m.observe_cycle(0.3)
    m.observe_cycle(42.0)
    got = samples(m.render())
    assert got[("opsagent_actions_total", (("outcome", "ok"), ("tool", "sleep_workload")))] == 3
    assert m.value("opsagent_actions_total", tool="sleep_workload", outcome="ok") == 3
    assert got[("opsagent_cycles_total", (("result", "ok"),))] == 1
    assert got[("opsagent_cycle_duration_seconds", ())] == 42.0            # the last cycle
    assert got[("opsagent_cycle_seconds_count", ())] == 2
    assert got[("opsagent_cycle_seconds_bucket", (("le", "0.5"),))] == 1
    assert got[("opsagent_cycle_seconds_bucket", (("le", "60.0"),))] == 2
    assert not any(name.endswith("_created") for name, _ in got)
    assert any(name.startswith("python_") for name, _ in got)
    assert ("opsagent_llm_calls_total", ()) in got                          # unlabelled series show from the start


def test_replace_drops_series_that_went_away_and_inf_renders() -> None:
    m = Metrics()
    m.replace("opsagent_findings_open", [({"kind": "idle_gpu"}, 2), ({"kind": "pending"}, 1)])
    m.replace("opsagent_findings_open", [({"kind": "pending"}, 1)])
    m.set("opsagent_model_budget_remaining", math.inf, unit="tokens")
    got = samples(m.render())
    assert ("opsagent_findings_open", (("kind", "idle_gpu"),)) not in got
    assert got[("opsagent_findings_open", (("kind", "pending"),))] == 1
    assert got[("opsagent_model_budget_remaining", (("unit", "tokens"),))] == math.inf
    assert m.total("opsagent_findings_open") == 1


def test_two_instances_do_not_share_counts() -> None:
    a, b = Metrics(), Metrics()
    a.inc("opsagent_llm_calls_total", 5)
    assert b.total("opsagent_llm_calls_total") == 0 and a.total("opsagent_llm_calls_total") == 5
