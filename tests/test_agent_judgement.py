"""Judgement across runs, on the simulator through the daemon's own parts.

Spec:
- one incident, one budget: a failed release that was retried and rolled back
  does not use up the budget of a later, unrelated release of the same
  workload; that one is restarted again;
- a temporary no is not a final no: a sleep refused by a rate limit is held
  until the limit frees up (the time the deny names) and then made; it is not
  counted as a failed attempt and never ends in "not trying again";
  a wait longer than the agent's limit is escalated once in the audit log;
- a person's no is remembered: a restart an approver rejected is never asked
  for again; the rollout moves to its next stage, the rollback;
- one owner per decision: a person's scale outside the intent's bounds is
  refused naming the intent, and nothing is written;
- temporary cluster errors are a "not yet": retried past the playbook's
  budget, with one hand-off to a person;
- a trickle of requests just slower than the idle window: slept once, woken,
  then kept up (the stretched window), not slept and woken all day;
- nobody answering is not a no: an approval request that expires unanswered
  is asked again while the finding stays open, never dropped with "not
  trying again", and the fresh request can still be approved.
"""

from __future__ import annotations

from datetime import timedelta

from judgement_harness import Daemonish, gpu_node, image

from opsagent.agent import AgentConfig

EMB = "inference/embedder"
LLM = "inference/llm"


def _embedder(**rest):
    return {"namespace": "inference", "name": "embedder", "image": image(EMB, "2.3.0"), "gpus": 1,
            "traffic": {"peak_rps": 20, "curve": "flat"}, **rest}


def test_a_new_release_after_a_rollback_gets_a_fresh_retry_budget(tmp_path):
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node(count=4)],
        "workloads": [_embedder(failures=[{"image": image(EMB, "2.4.0"), "mode": "crash"},
                                          {"image": image(EMB, "2.4.1"), "mode": "transient"}])],
        "timeline": [{"at": "+5m", "rollout": {"workload": EMB, "image": image(EMB, "2.4.0")}},
                     {"at": "+3h", "rollout": {"workload": EMB, "image": image(EMB, "2.4.1")}}],
    })
    try:
        d.cycles(150)
        morning = [r.tool for r in d.results() if r.outcome == "ok" and r.risk != "read"]
        assert morning == ["restart_rollout"] * 3 + ["undo_rollout"]
        assert d.sim.snapshot().workload(EMB).image.endswith(":2.3.0")
        d.cycles(90)
        after = [r.tool for r in d.results() if r.outcome == "ok" and r.risk != "read"][len(morning):]
        assert after == ["restart_rollout"], after  # one restart fixes the afternoon's release
        embedder = d.sim.snapshot().workload(EMB)
        assert embedder.image.endswith(":2.4.1") and embedder.rollout.status == "complete"
    finally:
        d.close()


def test_a_rate_limited_sleep_waits_for_the_limit_and_then_happens(tmp_path):
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node(count=2)],
        "workloads": [{"namespace": "render", "name": "render-ui", "image": image("render/render-ui", "1.4"),
                       "gpus": 1, "traffic": {"curve": "none"}},
                      {"namespace": "render", "name": "render-batch", "image": image("render/render-batch", "0.9"),
                       "replicas": 1, "traffic": {"curve": "none"}}],
    })
    try:
        d.sim.advance(60)
        for n in range(10):  # on-call uses up the hour's scale-down-rate in the render namespace
            assert d.person("scale_workload", {"namespace": "render", "name": "render-batch", "replicas": 2 + n % 2},
                            actor="carol").status == "ok"
            d.sim.advance(60)
        first_call = d.results("scale_workload")[0].time
        d.cycles(40)  # render-ui goes idle at 30 minutes; its sleep is refused
        refused = [r for r in d.results("sleep_workload") if r.outcome == "denied"]
        assert refused and "allowed again at" in (refused[0].summary or "")
        assert d.sim.snapshot().workload("render/render-ui").replicas == 1
        d.cycles(40)  # the limit frees up an hour after carol's first call
        slept = [r for r in d.results("sleep_workload") if r.outcome == "ok"]
        assert len(slept) == 1 and slept[0].time >= first_call + timedelta(hours=1)
        assert d.sim.snapshot().workload("render/render-ui").replicas == 0
        assert d.runs("not trying again") == []
        assert len([r for r in d.results("sleep_workload") if r.outcome == "denied"]) == 1  # no retry storm
    finally:
        d.close()


def test_a_long_rate_limit_wait_is_escalated_once(tmp_path):
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node(count=2)],
        "workloads": [{"namespace": "render", "name": "render-ui", "image": image("render/render-ui", "1.4"),
                       "gpus": 1, "traffic": {"curve": "none"}},
                      {"namespace": "render", "name": "render-batch", "image": image("render/render-batch", "0.9"),
                       "replicas": 1, "traffic": {"curve": "none"}}],
    }, config=AgentConfig(max_limit_wait_seconds=600))
    try:
        d.sim.advance(60)
        for n in range(10):
            d.person("scale_workload", {"namespace": "render", "name": "render-batch", "replicas": 2 + n % 2},
                     actor="carol")
        reports = d.cycles(60)
        assert sum(r.escalated for r in reports) == 1  # reported as new once, for the daemon's counter and log
        escalated = d.runs("escalated")
        assert len(escalated) == 1 and escalated[0].outcome == "error"
        assert "sleep_workload" in escalated[0].summary and "scale-down-rate" in escalated[0].summary
    finally:
        d.close()


def test_a_rejected_restart_is_not_asked_again_and_the_rollback_is_proposed(tmp_path):
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node(count=4)],  # room for the new revision's pod, so it crashes rather than waits
        "workloads": [{"namespace": "inference", "name": "llm", "image": image(LLM, "5.0.2"), "gpus": 2,
                       "tensor_parallel": True, "traffic": {"peak_rps": 5, "curve": "flat"},
                       "failures": [{"image": image(LLM, "5.1.0"), "mode": "crash"}]}],
        "timeline": [{"at": "+5m", "rollout": {"workload": LLM, "image": image(LLM, "5.1.0")}}],
    })
    try:
        d.cycles(20)
        [restart] = d.runtime.approvals.list("pending")
        assert restart.call.tool == "restart_rollout"  # no rollout rule for the LLM: on-call decides
        d.runtime.approvals.reject(restart.id, by="dave", reason="exec format error, a restart won't help; roll it back")
        d.cycles(60)
        asked = [a.call.tool for a in d.runtime.approvals.list()]
        assert asked.count("restart_rollout") == 1, asked
        assert asked.count("undo_rollout") == 1, asked
        [undo] = d.runtime.approvals.list("pending")
        d.runtime.approvals.approve(undo.id, by="carol")
        [(thread, _)] = [w for w in d.agent.waiting() if w[1] == undo.id]
        d.agent.resume(thread, approval_id=undo.id, decided_state="approved", approver="carol")
        d.cycles(20)
        llm = d.sim.snapshot().workload(LLM)
        assert llm.image.endswith(":5.0.2")
        assert [r.tool for r in d.results() if r.outcome == "ok" and r.risk != "read"] == ["undo_rollout"]
    finally:
        d.close()


def test_a_person_scaling_past_the_intent_is_refused_naming_it(tmp_path):
    d = Daemonish(tmp_path, {"nodes": [gpu_node(count=4)], "workloads": [_embedder(replicas=2)]})
    try:
        result = d.person("scale_workload", {"namespace": "inference", "name": "embedder", "replicas": 10},
                          actor="carol")
        assert result.status == "denied"
        assert "embedder-rollouts" in result.message and "1..4" in result.message
        assert "set_replica_bounds" in result.message
        for sneaky in ("10", 10.0, " 9 "):  # the tool would coerce these to a count: so does the bound
            assert d.person("scale_workload", {"namespace": "inference", "name": "embedder", "replicas": sneaky},
                            actor="carol").status in ("denied", "invalid"), sneaky
        d.cycles(15)
        assert d.sim.snapshot().workload(EMB).replicas == 2
        assert [r for r in d.results() if r.outcome == "ok" and r.risk != "read"] == []  # no write, so nothing to reverse
        inside = d.person("scale_workload", {"namespace": "inference", "name": "embedder", "replicas": 4}, actor="carol")
        assert inside.status == "ok"
        d.cycles(15)
        assert d.sim.snapshot().workload(EMB).replicas == 4  # the daemon leaves a person's in-bounds write alone
    finally:
        d.close()


def test_temporary_api_errors_are_retried_past_the_playbook_budget_and_a_person_is_told_once(tmp_path):
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node(count=2)],
        # a release that crashes on start (a missing tag is image_pull_failed's, with no restarts to retry)
        "workloads": [_embedder(failures=[{"image": image(EMB, "2.6.0"), "mode": "crash"}])],
        "timeline": [{"at": "+5m", "rollout": {"workload": EMB, "image": image(EMB, "2.6.0")}},
                     {"at": "+6m", "api_fault": {"kind": "unavailable", "count": 6}}],
    })
    try:
        reports = d.cycles(240)
        tools = [(r.tool, r.outcome) for r in d.results() if r.risk != "read"]
        assert tools.count(("restart_rollout", "error")) >= 3  # the playbook's own budget, spent on 503s
        assert ("undo_rollout", "ok") in tools                 # and still the work got done
        assert d.sim.snapshot().workload(EMB).image.endswith(":2.3.0")
        assert len(d.runs("temporary cluster errors")) == 1 and sum(r.escalated for r in reports) == 1
        assert d.runs("not trying again") == []
    finally:
        d.close()


def test_a_trickle_of_requests_does_not_make_the_daemon_flap(tmp_path):
    ui = "render/render-ui"
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node(count=2)],
        "workloads": [{"namespace": "render", "name": "render-ui", "image": image(ui, "1.4"), "gpus": 1,
                       "traffic": {"curve": "none"}}],
        "timeline": [{"at": f"+{m}m", "requests": {"workload": ui, "count": 1}} for m in range(50, 300, 35)],
    })
    try:
        d.cycles(300)
        writes = [r.tool for r in d.results() if r.outcome == "ok" and r.risk != "read"]
        assert writes == ["sleep_workload", "wake_workload"], writes  # slept once, woken, then kept up
        assert d.runs("run started for idle_gpu:render/render-ui")[0].summary.endswith("after 30 min")
        assert d.sim.snapshot().workload(ui).replicas == 1
    finally:
        d.close()


def test_an_approval_request_nobody_answered_is_asked_again_not_dropped(tmp_path):
    d = Daemonish(tmp_path, {
        "nodes": [gpu_node("gpu-a", count=1), gpu_node("gpu-b", count=2, cordoned=True)],
        "workloads": [{"namespace": "render", "name": "render-ui", "image": image("render/render-ui", "1.4"),
                       "gpus": 1, "replicas": 2, "traffic": {"peak_rps": 5, "curve": "flat"}}],
    })
    try:
        for _ in range(30):  # the approval TTL is an hour: requests expire unanswered, as the daemon's loop does it
            d.runtime.approvals.expire_due()
            d.cycles(5)
        asked = d.runtime.approvals.list()
        assert [a.call.tool for a in asked] == ["uncordon_node"] * len(asked) and len(asked) >= 2
        assert [a.state for a in asked][:-1] == ["expired"] * (len(asked) - 1)
        assert asked[-1].state == "pending"
        assert [r for r in d.runs("not trying again") if "node_left_cordoned" in (r.summary or "")] == []
        d.runtime.approvals.approve(asked[-1].id, by="carol")
        [(thread, _)] = [w for w in d.agent.waiting() if w[1] == asked[-1].id]
        d.agent.resume(thread, approval_id=asked[-1].id, decided_state="approved", approver="carol")
        assert not d.sim.snapshot().node("gpu-b").cordoned
    finally:
        d.close()
