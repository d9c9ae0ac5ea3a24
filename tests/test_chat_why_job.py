"""`why is NS/NAME pending?` for a GPU job as well as for a workload.

A queued training job is not a workload: chat answers with the job's state,
the GPUs it wants, how long it has waited and what blocks it (free GPUs per
node, and the idle holders the `jobs_waiting` finding names). Tested through
the chat service on a running simulator and through `opsagent ask`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.chat.wiring import build_runtime
from opsagent.cli import app
from opsagent.model import WorkloadRef

POLICIES = Path(__file__).resolve().parent.parent / "policies"
SCENARIO = """\
name: job-behind-idle-render
start: '2026-01-05T09:00:00Z'
nodes:
- name: gpu-a
  gpus: [{count: 2}]
- name: gpu-b
  gpus: [{count: 2}]
workloads:
- {namespace: render, name: render-ui, image: 'registry.internal/render/render-ui:1.4.2', gpus: 1,
   traffic: {points: {'00:00': 0}}}
- {namespace: inference, name: llm, image: 'registry.internal/inference/llm:3.1.0', gpus: 2,
   traffic: {peak_rps: 5, curve: flat}}
jobs:
- {namespace: training, name: job-7, gpus: 2, duration: 4h}
"""


@pytest.fixture()
def scenario(tmp_path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture()
def rt(tmp_path, scenario):
    runtime = build_runtime(cluster=f"sim:{scenario}", policies=POLICIES, db=tmp_path / "audit.db")
    yield runtime
    runtime.close()


def test_why_is_a_queued_job_pending_names_what_blocks_it(rt):
    rt.cluster.advance(45 * 60)  # render-ui has been idle past its 30 min window: a jobs_waiting finding
    reply = rt.service.handle("why is training/job-7 pending?", actor="alice", channel="cli")
    assert reply.failed == [] and reply.refused == [], reply.text
    job = next(r for r in reply.data["results"] if r["tool"] == "get_job")
    assert job["data"]["state"] == "queued" and job["data"]["gpus_wanted"] == 2
    assert job["data"]["waited_seconds"] == pytest.approx(45 * 60, abs=60)
    assert job["data"]["free_gpus_by_node"] == {"gpu-a": 1, "gpu-b": 0}
    assert [f"{h['namespace']}/{h['name']}" for h in job["data"]["idle_holders"]] == ["render/render-ui"]
    assert job["data"]["finding"] == "jobs_waiting:cluster"
    assert "training/job-7: queued, waited 45 min" in reply.text
    assert "at most 1 free on any node" in reply.text
    assert "idle holder `render/render-ui`: 1 GPU(s)" in reply.text
    reads = [(r.tool, r.actor) for r in rt.store.list() if r.kind == "result" and r.run_id == reply.run_id]
    assert ("get_job", "alice") in reads


def test_why_for_a_running_job_and_for_a_workload_still_answers(rt):
    rt.gate.cluster.scale(ref=WorkloadRef.parse("render/render-ui"), replicas=0)  # someone outside opsagent frees the card
    rt.cluster.advance(120)  # and the job starts on gpu-a
    running = rt.service.handle("why is training/job-7 pending?", actor="alice", channel="cli")
    assert running.failed == [] and "training/job-7: running on gpu-a" in running.text
    workload = rt.service.handle("why is inference/llm failing?", actor="alice", channel="cli")
    assert workload.failed == [] and "inference/llm: 1/1 ready" in workload.text
    assert [r["tool"] for r in workload.data["results"]][:3] == ["get_workload", "list_pods", "list_findings"]


def test_why_for_neither_a_workload_nor_a_job_says_so_with_both_hints(rt):
    reply = rt.service.handle("why is training/job-8 pending?", actor="alice", channel="cli")
    assert len(reply.failed) == 1
    message = reply.failed[0].message
    assert message.startswith("no workload or GPU job training/job-8")
    assert "namespace 'training' has no workloads" in message and "jobs in training: job-7" in message


def test_opsagent_ask_why_is_the_job_pending(tmp_path, scenario):
    out = CliRunner().invoke(app, ["ask", "why is training/job-7 pending?", "--as", "alice", "-o", "json",
                                   "--cluster", f"sim:{scenario}", "--policies", str(POLICIES),
                                   "--db", str(tmp_path / "a.db"), "--playbooks", str(tmp_path / "none")])
    assert out.exit_code == 0, out.output
    reply = json.loads(out.stdout)
    assert reply["failed"] == [] and "get_workload" not in reply["text"]
    assert "training/job-7: queued" in reply["text"] and "free GPUs per node: gpu-a 1, gpu-b 0" in reply["text"]
    assert [r["tool"] for r in reply["data"]["results"]] == ["get_job"]
