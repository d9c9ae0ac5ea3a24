"""Evals that can tell a good agent from none.

Promises tried here: a scenario that declares it tests the planner fails when
the planner does nothing (the `null` control); every scenario declares what it
tests; a write that reached the cluster counts as an action and as a `never`
hit whatever result the tool reported (a write that timed out but went
through is still a write).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.evals import DEFAULT_DIR, discover, load_eval_scenario, run_scenario, run_suite, score
from opsagent.evals.report import null_passes, pass_rates
from opsagent.evals.schema import ForbiddenSpec

LOADED = [load_eval_scenario(p) for p in discover([DEFAULT_DIR])]
PLANNER_SCENARIOS = [s.path for s in LOADED if "planner" in s.spec.tests]


def test_every_scenario_declares_what_it_tests_and_most_test_the_planner() -> None:
    assert [s.spec.name for s in LOADED if not s.spec.tests] == []
    assert len(PLANNER_SCENARIOS) >= len(LOADED) // 2


def test_no_planner_scenario_passes_when_the_planner_does_nothing(tmp_path: Path) -> None:
    scores, _ = run_suite(PLANNER_SCENARIOS, planner="null", workdir=tmp_path, baseline=False)
    assert len(scores) == len(PLANNER_SCENARIOS)
    assert null_passes(scores) == []
    assert [s.scenario for s in scores if s.outcome == "pass"] == []


def test_pass_rates_put_planners_side_by_side(tmp_path: Path) -> None:
    picked = [DEFAULT_DIR / "render-ui-after-lunch.yaml", DEFAULT_DIR / "quiet-tuesday.yaml"]
    scores = []
    for planner in ("offline", "null"):
        scores += run_suite(picked, planner=planner, workdir=tmp_path / planner, baseline=False)[0]
    rates = pass_rates(scores)
    assert rates["all"] == {"offline": {"passed": 2, "runs": 2}, "null": {"passed": 1, "runs": 2}}
    assert rates["planner"] == {"offline": {"passed": 1, "runs": 1}, "null": {"passed": 0, "runs": 1}}
    assert rates["control"]["null"] == {"passed": 1, "runs": 1}


def test_a_write_that_timed_out_but_reached_the_cluster_is_an_action_and_a_never_hit(tmp_path: Path) -> None:
    loaded = load_eval_scenario(DEFAULT_DIR / "apiserver-timeout-while-sleeping.yaml")
    never = (*loaded.spec.expect.never, ForbiddenSpec(tool="sleep_workload", target="*/*", why="test: no sleeping"))
    spec = loaded.spec.model_copy(update={"expect": loaded.spec.expect.model_copy(update={"never": never})})
    loaded = loaded.model_copy(update={"spec": spec})
    record = run_scenario(loaded, planner="offline", workdir=tmp_path, baseline=False)
    timed_out = [g for g in record.gate_calls if g.call.tool == "sleep_workload" and g.result.status == "error"]
    assert timed_out and timed_out[0].writes >= 1 and "timed out" in timed_out[0].result.message
    result = score(record)
    assert result.outcome == "fail"
    assert any("sleep_workload" in f for f in result.forbidden)
    assert result.actions >= 1


@pytest.mark.parametrize("planner", ["null"])
def test_null_planner_makes_no_model_calls_and_no_writes_of_its_own(planner: str, tmp_path: Path) -> None:
    record = run_scenario(load_eval_scenario(DEFAULT_DIR / "render-ui-after-lunch.yaml"), planner=planner,
                          workdir=tmp_path, baseline=False)
    assert record.gate_calls == [] and record.tap.writes == []
    assert score(record).outcome == "fail"
