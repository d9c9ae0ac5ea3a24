"""`set_resources`: what a person approves is what runs, and what runs is checked like with like.

Spec:
- the tool writes the main (first) container's limit and request; its before/after name that container's
  values, and its effect check compares that container, never the workload's sums (a sidecar adds to those),
  so a change that worked on a workload with a sidecar is `in_effect`;
- the approval text says what is written: the limit and the request, of the main container;
- a memory raise carries the limit it was proposed from (`seen_memory_mib`): approved after the limit
  was raised by hand to the approved size or beyond (or removed), it refuses and says why instead of
  lowering it; the approval stays bound to the exact arguments, `seen_memory_mib` among them;
- the out-of-memory playbook proposes its raise with the limit it saw.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from doubles.cluster import TinyCluster
from kube_harness import Emulator, fixture
from test_tools_behaviour import approved, call, make_gate

from opsagent.chat.render import approval_line, call_summary
from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.gate.recovery import before_of, observed_effect
from opsagent.model import Container, WorkloadRef
from tools import REGISTRY, ToolContext
from tools.architectural import SetResourcesIn

KUBE_NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
CODER = WorkloadRef(namespace="inference", name="coder")
RAISE = {"namespace": "inference", "name": "coder", "memory_mib": 24576, "seen_memory_mib": 16384}

SCENARIO = """
name: set-resources
start: 2026-01-05T09:00:00Z
nodes:
  - name: gpu-node
    gpus: [{count: 2, link: 16, switch: "0"}]
workloads:
  - {namespace: inference, name: coder, image: 'vllm/vllm-openai:v0.8.2', gpus: 1, memory_mib: 16384,
     traffic: {peak_rps: 0, curve: none}}
"""


# --- like with like: the container it changed -----------------------------------------------------


def _guestbook_with_sidecar(main_memory: str = "16Gi", main_request: str = "8Gi") -> dict:
    from test_kube_health import _deployment

    dep = _deployment()
    main = dep["spec"]["template"]["spec"]["containers"][0]
    main["resources"] = {"requests": {"memory": main_request}, "limits": {"memory": main_memory}}
    dep["spec"]["template"]["spec"]["containers"].append(
        {"name": "proxy", "image": "envoyproxy/envoy:v1.31.0",
         "resources": {"requests": {"memory": "512Mi"}, "limits": {"memory": "512Mi", "nvidia.com/gpu": "1"}}})
    return dep


def test_with_a_sidecar_the_raise_that_worked_is_in_effect_and_before_after_are_the_main_containers():
    with Emulator() as emu:
        emu.seed(_guestbook_with_sidecar())
        emu.seed(fixture("node-gpu-gfd.json"))
        kube = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(KUBE_NOW))
        first = kube.snapshot()
        args = {"namespace": "default", "name": "guestbook-ui", "memory_mib": 24576}
        tool = REGISTRY["set_resources"]
        outcome = tool.run(ToolContext(cluster=kube, clock=kube.clock, observe=kube.snapshot),
                           tool.input_model(**args))
        assert outcome.status == "ok", outcome.message
        [patch] = [r for r in emu.requests() if r["method"] == "PATCH"]
        assert patch["body"]["spec"]["template"]["spec"]["containers"] == [
            {"name": "guestbook-ui", "resources": {"limits": {"memory": "24576Mi"}, "requests": {"memory": "24576Mi"}}}]
        assert outcome.data["before"] == {"container": "guestbook-ui", "gpus": 0, "memory_limit_mib": 16384,
                                          "memory_request_mib": 8192}
        assert outcome.data["after"] == {"container": "guestbook-ui", "gpus": 0, "memory_limit_mib": 24576,
                                         "memory_request_mib": 24576}
        # kmock merges a patch as JSON (lists replaced): store the object as an API server's strategic merge leaves it
        emu.seed(_guestbook_with_sidecar("24576Mi", "24576Mi"))
        now = kube.snapshot()
    assert now.workload("default/guestbook-ui").memory_mib == 24576 + 512  # the sums count the sidecar too
    seen = observed_effect("set_resources", args, before_of(args, first), now)
    assert seen.verdict == "in_effect", seen.detail
    assert observed_effect("set_resources", args, before_of(args, first), first).verdict == "not_in_effect"


@pytest.mark.parametrize(("change", "verdict"), [
    ({"gpus_per_replica": 2}, "in_effect"), ({}, "not_in_effect"), ({"gpus_per_replica": 3}, "unknown")])
def test_the_gpu_check_compares_the_main_container_not_the_sum_with_a_gpu_sidecar(change, verdict):
    tiny = TinyCluster()
    tiny.add_node("gpu-node", gpus=4)
    tiny.add_workload("inference", "coder", gpus=1, sidecars=(Container(name="exporter", gpus=1),))
    args = {"namespace": "inference", "name": "coder", "gpus_per_replica": 2}
    before = tiny.snapshot()
    if change:
        tiny.set_template(ref=CODER, **change)
    now = tiny.snapshot()
    seen = observed_effect("set_resources", args, before_of(args, before), now)
    assert seen.verdict == verdict, seen.detail
    assert now.workload("inference/coder").gpus_per_replica == 1 + change.get("gpus_per_replica", 1)


def test_a_no_op_call_on_a_workload_with_a_sidecar_is_in_effect():
    tiny = TinyCluster()
    tiny.add_workload("inference", "coder", gpus=1, memory_mib=16384,
                      sidecars=(Container(name="proxy", memory_request_mib=512, memory_limit_mib=512),))
    args = {"namespace": "inference", "name": "coder", "memory_mib": 16384}
    snap = tiny.snapshot()
    assert observed_effect("set_resources", args, before_of(args, snap), snap).verdict == "in_effect"


# --- what is approved is what runs ------------------------------------------------------------------


def test_the_approval_text_says_the_limit_and_the_request_of_the_main_container():
    said = call_summary("set_resources", RAISE)
    assert "main container's memory limit and request to 24576 MiB" in said
    assert "raise from the 16384 MiB limit" in said and "not run if the limit is already 24576 MiB or more" in said
    gpus = call_summary("set_resources", {"namespace": "ml", "name": "llm", "gpus_per_replica": 2})
    assert "nvidia.com/gpu limit and request to 2" in gpus


def test_the_approval_line_a_person_reads_carries_the_same_words(tmp_path):
    sim = _sim()
    gate, _ = make_gate(sim, tmp_path)
    approval = approved(gate, call("set_resources", **RAISE))
    assert "memory limit and request to 24576 MiB (a raise from the 16384 MiB limit" in approval_line(approval)


# --- a stale approval cannot lower memory -------------------------------------------------------------


def _sim():
    sim_mod = pytest.importorskip("opsagent.cluster.sim")
    return sim_mod.SimCluster(sim_mod.parse_scenario(SCENARIO))


def _tiny():
    tiny = TinyCluster()
    tiny.add_node("gpu-node", gpus=2)
    tiny.add_workload("inference", "coder", gpus=1, memory_mib=16384)
    return tiny


@pytest.fixture(params=["sim", "tiny"])
def cluster(request):
    return _sim() if request.param == "sim" else _tiny()


def _limit(cluster) -> int | None:
    main = cluster.snapshot().workload(CODER).main_container
    return main.memory_limit_mib if main else None


@pytest.mark.parametrize(("by_hand", "said"), [(32768, "would lower the limit"), (24576, "nothing to do")])
def test_an_approved_raise_that_would_no_longer_raise_refuses_and_says_why(cluster, tmp_path, by_hand, said):
    gate, recording = make_gate(cluster, tmp_path)
    pending = call("set_resources", **RAISE)
    cluster.set_template(ref=CODER, memory_mib=by_hand)  # someone raised it by hand while the approval waited
    cluster.advance(60)
    result = gate.run_approved(approved(gate, pending), approver="alice")
    assert result.status == "error" and said in result.message, result.message
    assert f"already {by_hand} MiB" in result.message
    assert not [w for w in recording.writes if w[0] == "set_template"]
    assert _limit(cluster) == by_hand


def test_an_approved_raise_still_below_runs(cluster, tmp_path):
    gate, _ = make_gate(cluster, tmp_path)
    cluster.set_template(ref=CODER, memory_mib=20480)  # raised by hand, but less than approved: still a raise
    result = gate.run_approved(approved(gate, call("set_resources", **RAISE)), approver="alice")
    assert result.ok, result.message
    cluster.advance(300)
    assert _limit(cluster) == 24576


def test_an_approved_raise_refuses_when_the_limit_was_removed(tmp_path):
    tiny = TinyCluster()
    tiny.add_workload("inference", "coder", gpus=1)  # no memory limit on the main container
    gate, _ = make_gate(tiny, tmp_path)
    result = gate.run_approved(approved(gate, call("set_resources", **RAISE)), approver="alice")
    assert result.status == "error" and "no memory limit now" in result.message


def test_the_approval_is_bound_to_the_limit_it_was_proposed_from():
    with_seen = call("set_resources", **RAISE)
    without = call("set_resources", **{k: v for k, v in RAISE.items() if k != "seen_memory_mib"})
    assert with_seen.args_hash() != without.args_hash()


@pytest.mark.parametrize("seen", [24576, 32768])
def test_a_raise_must_be_above_the_limit_it_saw(seen):
    with pytest.raises(ValueError, match="seen_memory_mib"):
        SetResourcesIn(namespace="inference", name="coder", memory_mib=24576, seen_memory_mib=seen)
    with pytest.raises(ValueError, match="seen_memory_mib"):
        SetResourcesIn(namespace="inference", name="coder", gpus_per_replica=2, seen_memory_mib=seen)


def test_the_memory_playbook_proposes_its_raise_with_the_limit_it_saw():
    from opsagent.detect.memory import out_of_memory
    from opsagent.model import Termination
    from opsagent.playbooks.loader import load_playbooks
    from opsagent.playbooks.render import render_steps
    from test_detect_memory_probes import NOW, _snap

    ended = [Termination(container="main", reason="OOMKilled", exit_code=137)]
    snap = _snap(containers=(Container(name="main", memory_limit_mib=16384),), ended=ended)
    finding = out_of_memory(snap, NOW)[0]
    [playbook] = [p for p in load_playbooks(Path(__file__).resolve().parent.parent / "playbooks")
                  if p.name == "oom-propose-memory-limit"]
    [step] = [c for c in render_steps(playbook, finding, snap) if c["tool"] == "set_resources"]
    parsed = SetResourcesIn.model_validate(step["args"])
    assert (parsed.memory_mib, parsed.seen_memory_mib) == (24576, 16384)
    assert "24576 MiB as its limit and request" in finding.summary


def test_the_sim_refusal_leaves_no_new_revision(tmp_path):
    sim = _sim()
    gate, _ = make_gate(sim, tmp_path)
    sim.set_template(ref=CODER, memory_mib=32768)
    sim.advance(60)
    revision = sim.snapshot().workload(CODER).revision
    gate.run_approved(approved(gate, call("set_resources", **RAISE)), approver="alice")
    sim.advance(60)
    assert sim.snapshot().workload(CODER).revision == revision
