"""`why is NS/NAME not ready?` answers from the diagnosis of memory and probes, read-only.

Promises tried here: chat understands the question and its close variants; the
answer says which reading holds (a model still loading within the time its
probes allow, a probe that cannot pass, a container out of memory) with the
numbers; asking never writes, and a reading that names a change still only
describes it (the daemon's playbook proposes it to a person). Run through the
chat service on a running simulator, as `opsagent ask` runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.chat.grammar import parse
from opsagent.chat.wiring import build_runtime

POLICIES = Path(__file__).resolve().parent.parent / "policies"
HEAD = """\
start: '2026-01-05T09:00:00Z'
start_warm: false
nodes:
- name: gpu-a
  gpus: [{model: NVIDIA-L40S, memory_mib: 46068, count: 2}]
workloads:
"""
LOADING = HEAD + """\
- {namespace: inference, name: llm, image: 'vllm/vllm-openai:v0.8.2', gpus: 1,
   cold_start: {model_load: 25m},
   probes: {startup: {path: /health, period: 30s, failure_threshold: 80}, readiness: {path: /health}}}
"""
WRONG_PATH = HEAD + """\
- {namespace: inference, name: embedder, image: 'registry.internal/inference/embedder:2.3.0', gpus: 1,
   probes: {readiness: {path: /ready}, liveness: {path: /health, initial_delay: 120s}}}
"""
OOM = HEAD + """\
- {namespace: inference, name: coder, image: 'vllm/vllm-openai:v0.8.2', gpus: 1, memory_mib: 16384, memory_use_mib: 22528}
"""


def _runtime(tmp_path: Path, text: str):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return build_runtime(cluster=f"sim:{path}", policies=POLICIES, db=tmp_path / "audit.db")


@pytest.mark.parametrize("line", [
    "why is inference/llm not ready?", "why isn't inference/llm ready yet?", "why is llm not ready in inference",
    "Why is inference/llm still not ready?", "why is inference/llm unready", "why does inference/llm keep restarting?",
])
def test_the_question_and_its_close_variants_parse_to_the_read_only_why(line):
    command = parse(line)
    assert command.action == "why" and command.workload == "inference/llm", command
    assert [s.tool for s in command.steps] == ["get_workload", "list_pods", "list_findings"]


def _ask(tmp_path: Path, text: str, minutes: int, question: str):
    rt = _runtime(tmp_path, text)
    try:
        rt.cluster.advance(minutes * 60)
        reply = rt.service.handle(question, actor="carol", channel="slack")
        workload = next(r for r in reply.data["results"] if r["tool"] == "get_workload")
        return reply, workload["data"].get("not_ready"), rt.cluster.snapshot()
    finally:
        rt.close()


def test_a_model_still_loading_is_said_to_be_loading_and_nothing_is_written(tmp_path):
    reply, why, snap = _ask(tmp_path, LOADING, 10, "why is inference/llm not ready?")
    assert reply.failed == [] and reply.refused == [] and reply.proposed == [], reply.text
    assert why["reading"] == "loading" and "still loading" in why["says"]
    assert "not ready (loading)" in reply.text and "40 min" in reply.text  # the startup probe allows 30 s x 80
    assert all(d.tool in ("get_workload", "list_pods", "list_findings", "describe_pod") for d in reply.done)
    assert snap.workload("inference/llm").revision == 1 and snap.pods[0].restarts == 0


def test_a_probe_on_the_wrong_path_is_named_with_the_path_that_works(tmp_path):
    reply, why, _ = _ask(tmp_path, WRONG_PATH, 20, "why isn't inference/embedder ready?")
    assert why["reading"] == "probe_broken" and "404" in why["says"]
    assert why["proposal"]["probe"] == "readiness" and why["proposal"]["path"] == "/health"
    assert "not ready (probe broken)" in reply.text and reply.proposed == []


def test_a_container_out_of_memory_is_named_as_such(tmp_path):
    reply, why, _ = _ask(tmp_path, OOM, 20, "why is inference/coder not ready")
    assert why["reading"] == "out_of_memory" and "OOMKilled" in why["says"]
    findings = next(r for r in reply.data["results"] if r["tool"] == "list_findings")
    assert [f["kind"] for f in findings["data"]["findings"]] == ["out_of_memory"]
    assert "24576" in reply.text  # the finding's proposal, shown, not made
