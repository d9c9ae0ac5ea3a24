"""The daemon's wiring: wake-proxy activity merged on a non-simulated cluster; LLM calls counted over a loopback Ollama."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from opsagent.daemon import Daemon, DaemonOptions
from opsagent.daemon.wiring import activity_path_for, make_observe, ollama_available
from opsagent.model import WorkloadRef
from opsagent.runtime import open_runtime
from opsagent.evals.fake_ollama import FakeOllama, Reply
from opsagent.wake.activity import ActivityLog
from doubles.cluster import TinyCluster

REPO = Path(__file__).resolve().parents[1]


def test_observe_merges_the_wake_proxy_activity_when_the_cluster_is_not_simulated(tmp_path: Path) -> None:
    tiny = TinyCluster()
    tiny.add_node("gpu-1", gpus=2)
    tiny.add_workload("chat", "chat-ui", replicas=0, gpus=1, request_rate=None)
    db = tmp_path / "ops.db"
    runtime = open_runtime(policies=REPO / "policies", db=db, cluster_obj=tiny, clock=tiny.clock)
    assert runtime.sim is None
    observe = make_observe(runtime, db=db)
    before = observe().workload("chat/chat-ui").last_request_at           # no activity file yet: the cluster's own
    tiny.advance(120)
    assert observe().workload("chat/chat-ui").last_request_at == before
    log = ActivityLog(activity_path_for(db), clock=tiny.clock)
    log.note(WorkloadRef(namespace="chat", name="chat-ui"))
    log.flush()
    seen = observe().workload("chat/chat-ui").last_request_at
    assert seen == tiny.clock.now() and (before is None or seen - before == timedelta(seconds=120))


def test_llm_calls_and_tokens_reach_the_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(body: dict) -> Reply:
        text = str(body.get("messages", ""))
        if "render-ui" in text and "scale render/render-ui to zero" not in text:
            return Reply.call("sleep_workload", namespace="render", name="render-ui")
        return Reply.text("Done.")

    with FakeOllama(responder=answer) as server:
        assert ollama_available(server.url)
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        daemon = Daemon(DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                                      interval=300, cycles=7, sim_speed=0, model="qwen3:8b", listen="127.0.0.1:0"))
        assert daemon.run(install_signals=False) == 0
        calls = len(server.chat_requests)
    assert calls >= 2
    assert daemon.metrics.total("opsagent_llm_calls_total") == calls
    assert daemon.metrics.value("opsagent_llm_tokens_total", kind="prompt") == 120 * calls
    assert daemon.metrics.value("opsagent_actions_total", tool="sleep_workload", outcome="ok") == 1
    # the model answers "Done." to every other finding without acting; where the playbook would change something
    # (topology: a placement request for a person), the run hands over to it, and the metric counts each handover
    handovers = [r for r in daemon.runtime.audit.list() if r.kind == "run" and "falling back" in (r.summary or "")]
    assert [r.run_id for r in handovers] == ["finding:topology_mismatch:inference/llm"]
    assert "stopped with the finding still open" in handovers[0].summary
    assert daemon.metrics.total("opsagent_llm_fallbacks_total") == len(handovers)
    assert re.search(r"^opsagent_llm_calls_total \d+(\.0)?$", daemon.metrics.render(), re.M)


def test_ollama_probe_is_false_for_a_closed_port() -> None:
    assert ollama_available("http://127.0.0.1:9", timeout=0.5) is False
