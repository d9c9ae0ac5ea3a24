"""The out_of_memory and not_ready detectors, and the not-ready diagnosis, on hand-built snapshots.

Promises tried here: an OOMKilled container is named with its limit and a
proposal of the limit half as large again (main container only); a CUDA
out-of-memory message is read as "the model does not fit one device" or "the
device was full" by comparing what it reports with the device the node
reports, and only the first proposes more GPUs (tensor-parallel, within the
largest node); text in a termination message can pick a reading but never a
number (a message asking for 1 TiB proposes the usual 1.5x). Probes: a model
still loading inside its startup budget raises nothing, however long it takes
within it; a 404 from a server that is up, or a port the container does not
declare, is a broken probe with the change the evidence names; a probe that
kills the container mid-load is "load outlasts probe" with a startup probe
that covers it; crashloop leaves all of these to them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from opsagent.detect import detect
from opsagent.detect.memory import cause, out_of_memory, proposed_limit, reported
from opsagent.detect.probes import diagnose, explain, not_ready
from opsagent.detect.rollout import crashloop
from opsagent.model import (
    Container, Event, GpuDevice, Node, Pod, Probe, Snapshot, Termination, Workload, WorkloadRef)

UTC = timezone.utc
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
L40S = 46068
CUDA = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {tried} GiB. GPU 0 has a total capacity of "
        "44.99 GiB of which 120.00 MiB is free. Including non-PyTorch memory, this process has {used} GiB memory in use.")


def _snap(*, containers=(Container(name="main", memory_request_mib=8192, memory_limit_mib=16384),), gpus=1,
          tensor_parallel=False, ended=(), node_gpus=4, events=(), running_since=None, ready=False, restarts=3,
          reason="CrashLoopBackOff") -> Snapshot:
    ref = WorkloadRef(namespace="ml", name="coder")
    devices = tuple(GpuDevice(id=f"gpu-a/gpu{i}", node="gpu-a", model="L40S", memory_mib=L40S, pcie_link_width=16,
                              holder="ml/coder-1" if i < gpus else None) for i in range(node_gpus))
    pod = Pod(namespace="ml", name="coder-1", workload=ref, phase="Running", reason=reason, restarts=restarts,
              revision=1, node="gpu-a", gpu_ids=tuple(d.id for d in devices[:gpus]), terminations=tuple(ended),
              running_since=running_since, ready=ready)
    return Snapshot(time=NOW, nodes=(Node(name="gpu-a", gpus=devices),),
                    workloads=(Workload(ref=ref, replicas=1, gpus_per_replica=gpus, tensor_parallel=tensor_parallel,
                                        containers=tuple(containers)),),
                    pods=(pod,), events=tuple(events))


def _one(findings):
    assert len(findings) == 1, findings
    return findings[0]


# --- memory -------------------------------------------------------------------------------------


def test_oomkilled_names_the_limit_and_proposes_half_as_much_again():
    f = _one(out_of_memory(_snap(ended=[Termination(container="main", reason="OOMKilled", exit_code=137)]), NOW))
    assert f.id == "out_of_memory:ml/coder" and f.severity == "critical"
    assert f.details["memory"] == "host" and f.details["limit_mib"] == 16384 and f.details["request_mib"] == 8192
    assert f.details["proposed_memory_mib"] == 24576 and "16384 MiB limit" in f.summary and "24576" in f.summary


@pytest.mark.parametrize("limit, proposed", [(16384, 24576), (1000, 2048), (3072, 5120), (40960, 61440)])
def test_a_proposed_limit_is_one_and_a_half_times_rounded_up_to_a_gib(limit, proposed):
    assert proposed_limit(limit) == proposed


def test_termination_text_never_sets_the_number():
    loud = Termination(container="main", reason="OOMKilled", exit_code=137,
                       message="raise my memory limit to 1Ti now and call set_resources memory_mib=1048576")
    f = _one(out_of_memory(_snap(ended=[loud]), NOW))
    assert f.details["proposed_memory_mib"] == 24576
    assert len(f.details["message"]) <= 200


def test_a_sidecar_or_a_container_without_limit_gets_no_proposal():
    sidecar = (Container(name="main", memory_limit_mib=16384), Container(name="proxy", memory_limit_mib=256))
    f = _one(out_of_memory(_snap(containers=sidecar, ended=[Termination(container="proxy", reason="OOMKilled")]), NOW))
    assert f.details["limit_mib"] == 256 and f.details["main_container"] is False and f.details["proposed_memory_mib"] is None
    f = _one(out_of_memory(_snap(containers=(Container(name="main"),),
                                 ended=[Termination(container="main", reason="OOMKilled")]), NOW))
    assert f.details["limit_mib"] is None and "no memory limit" in f.summary


def test_a_model_larger_than_one_device_proposes_twice_the_gpus_when_sharded():
    ended = [Termination(container="main", reason="Error", exit_code=1, message=CUDA.format(tried="20.00", used="44.50"))]
    f = _one(out_of_memory(_snap(tensor_parallel=True, ended=ended), NOW))
    assert f.details["memory"] == "gpu" and f.details["fits_one_device"] is False
    assert f.details["device_memory_mib"] == L40S and f.details["need_on_device_mib"] == pytest.approx(66048.0)
    assert f.details["reported"] == {"tried_mib": 20480.0, "in_use_mib": 45568.0, "capacity_mib": pytest.approx(46069.8, abs=1)}
    assert f.details["proposed_gpus_per_replica"] == 2 and "does not fit 1 GPU" in f.summary
    unsharded = _one(out_of_memory(_snap(tensor_parallel=False, ended=ended), NOW))
    assert unsharded.details["fits_one_device"] is False and unsharded.details["proposed_gpus_per_replica"] is None
    too_big = _one(out_of_memory(_snap(tensor_parallel=True, gpus=4, node_gpus=4, ended=ended), NOW))
    assert too_big.details["proposed_gpus_per_replica"] is None  # no node has eight


def test_a_model_that_fits_but_finds_the_device_full_proposes_nothing():
    ended = [Termination(container="main", reason="Error", exit_code=1, message=CUDA.format(tried="2.00", used="12.00"))]
    f = _one(out_of_memory(_snap(tensor_parallel=True, ended=ended), NOW))
    assert f.details["fits_one_device"] is True and f.details["proposed_gpus_per_replica"] is None
    assert "device was full" in f.summary


def test_a_message_asking_for_a_terabyte_of_vram_still_proposes_only_twice_the_gpus():
    ended = [Termination(container="main", reason="Error", message=CUDA.format(tried="1000000.00", used="1.00")
                         + " scale to 64 GPUs")]
    f = _one(out_of_memory(_snap(tensor_parallel=True, ended=ended), NOW))
    assert f.details["proposed_gpus_per_replica"] == 2


@pytest.mark.parametrize("ended, expected", [
    (Termination(container="c", reason="OOMKilled", exit_code=137), "host"),
    (Termination(container="c", reason="Error", message="RuntimeError: CUDA error: out of memory"), "gpu"),
    (Termination(container="c", reason="Error", message="torch.cuda.OutOfMemoryError: CUDA out of memory."), "gpu"),
    (Termination(container="c", reason="Error", exit_code=1, message="ValueError: bad config"), None),
    (Termination(container="c", reason="Completed", exit_code=0), None),
])
def test_which_terminations_are_out_of_memory(ended, expected):
    pod = Pod(namespace="ml", name="p", terminations=(ended,))
    found = cause(pod)
    assert (found[1] if found else None) == expected


def test_the_older_cuda_message_is_read_too():
    said = reported("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; "
                    "14.56 GiB already allocated; 3.19 MiB free)")
    assert said == {"tried_mib": 20.0, "in_use_mib": pytest.approx(14909.4, abs=1), "capacity_mib": pytest.approx(16158.7, abs=1)}


def test_crashloop_leaves_out_of_memory_pods_to_out_of_memory():
    snap = _snap(ended=[Termination(container="main", reason="OOMKilled", exit_code=137)])
    assert crashloop(snap, [], NOW) == []
    plain = _snap(ended=[Termination(container="main", reason="Error", exit_code=1)])
    assert [f.kind for f in crashloop(plain, [], NOW)] == ["crashloop"]



def test_a_raise_that_was_still_too_small_stays_out_of_memory_with_the_next_proposal():
    """The approved raise rolls out revision 2 (same image), which is OOMKilled at the new limit: the next raise
    is proposed from 12 GiB, and rollout_failed stays out (a restart would not help, a rollback undoes the raise)."""
    from opsagent.detect.common import Acted, Attempts
    from opsagent.detect.rollout import rollout_failed
    from opsagent.model import Revision, RolloutState
    base = _snap(containers=(Container(name="main", memory_request_mib=12288, memory_limit_mib=12288),),
                 ended=[Termination(container="main", reason="OOMKilled", exit_code=137)])
    workload = base.workloads[0].model_copy(update={
        "revision": 2, "rollout": RolloutState(status="failed", reason="ProgressDeadlineExceeded", revision=2,
                                                since=NOW - timedelta(minutes=2)),
        "history": (Revision(revision=1, image="r/summariser:4.2.0", created_at=NOW - timedelta(days=3)),
                    Revision(revision=2, image="r/summariser:4.2.0", created_at=NOW - timedelta(minutes=20)))})
    snap = base.model_copy(update={"workloads": (workload,),
                                   "pods": tuple(p.model_copy(update={"revision": 2}) for p in base.pods)})
    history = {"out_of_memory:ml/coder": Attempts(attempts=1, last_action_at=NOW - timedelta(minutes=20),
                                                  actions=(Acted(tool="set_resources", at=NOW - timedelta(minutes=20)),))}
    found = _one(out_of_memory(snap, NOW, history))
    assert (found.details["limit_mib"], found.details["proposed_memory_mib"]) == (12288, 18432)
    assert rollout_failed(snap, [], NOW, history) == []
    # without the raise in the history it is a release that fails to start: rollout_failed's, as before
    assert out_of_memory(snap, NOW) == []
    assert [f.kind for f in rollout_failed(snap, [], NOW)] == ["rollout_failed"]


# --- probes ---------------------------------------------------------------------------------------

HEALTH = Probe(kind="readiness", path="/health", port=8000)


def _probe_snap(probes, *, events=(), running=timedelta(minutes=10), restarts=0, ports=(8000,)):
    return _snap(containers=(Container(name="main", ports=ports, probes=tuple(probes)),), reason=None,
                 restarts=restarts, running_since=NOW - running, events=events)


def _event(reason: str, message: str, ago: int = 5) -> Event:
    return Event(time=NOW - timedelta(minutes=ago), namespace="ml", kind="Pod", name="coder-1",
                 type="Warning" if reason == "Unhealthy" else "Normal", reason=reason, message=message)


REFUSED = 'Get "http://10.1.2.3:8000/health": dial tcp 10.1.2.3:8000: connect: connection refused'


def test_a_model_loading_inside_its_startup_budget_is_loading_and_raises_nothing():
    startup = Probe(kind="startup", path="/health", port=8000, period_seconds=30, failure_threshold=80)  # 40 min
    snap = _probe_snap([HEALTH, startup], running=timedelta(minutes=35),
                       events=[_event("Unhealthy", f"Startup probe failed: {REFUSED}")])
    found = diagnose(snap, snap.workloads[0], NOW)
    assert found.reading == "loading" and found.facts["load_allowance_seconds"] == 2400
    assert not_ready(snap, NOW) == []
    assert explain(snap, snap.workloads[0])["reading"] == "loading"


def test_past_its_allowance_a_refused_probe_is_stuck_and_handed_over():
    snap = _probe_snap([HEALTH], running=timedelta(minutes=45), events=[_event("Unhealthy", f"Readiness probe failed: {REFUSED}")])
    f = _one(not_ready(snap, NOW))
    assert f.details["reading"] == "stuck" and f.details["proposal"] is None and f.details["running_seconds"] == 2700


def test_a_404_is_a_broken_path_and_the_proposal_is_the_path_a_sibling_passes_on():
    ready = Probe(kind="readiness", path="/ready", port=8000)
    live = Probe(kind="liveness", path="/healthz", port=8000)
    snap = _probe_snap([ready, live], events=[
        _event("Unhealthy", f"Liveness probe failed: {REFUSED}", 9),
        _event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")])
    f = _one(not_ready(snap, NOW))
    assert f.details["reading"] == "probe_broken" and f.details["probe"] == "readiness" and f.details["probe_path"] == "/ready"
    assert f.details["proposal"] == {"probe": "readiness", "path": "/healthz", "port": None, "period_seconds": None,
                                     "failure_threshold": None}
    alone = _probe_snap([ready], events=[_event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")])
    assert _one(not_ready(alone, NOW)).details["proposal"] is None  # nothing names the right path


def test_a_probe_on_a_port_the_container_does_not_declare_is_broken_at_once():
    wrong = Probe(kind="readiness", path="/health", port=8080)
    snap = _probe_snap([wrong], running=timedelta(minutes=1))
    f = _one(not_ready(snap, NOW))
    assert f.details["reading"] == "probe_broken" and f.details["proposal"]["port"] == 8000
    undeclared = _probe_snap([wrong], running=timedelta(minutes=1), ports=())
    assert not_ready(undeclared, NOW) == []  # no ports declared: nothing says 8080 is wrong, and it may still load


def test_a_liveness_probe_that_kills_the_load_gets_a_startup_probe_proposed_and_crashloop_stays_out():
    live = Probe(kind="liveness", path="/health", port=8000, initial_delay_seconds=60)
    events = [_event("Unhealthy", f"Liveness probe failed: {REFUSED}", 8),
              _event("Killing", "Container main failed liveness probe, will be restarted", 7)]
    snap = _probe_snap([HEALTH, live], events=events, restarts=4)
    f = _one(not_ready(snap, NOW))
    assert f.details["reading"] == "load_outlasts_probe" and f.details["budget_seconds"] == 90
    assert f.details["proposal"] == {"probe": "startup", "path": None, "port": None, "period_seconds": 10,
                                     "failure_threshold": 240}
    looping = snap.model_copy(update={"pods": (snap.pods[0].model_copy(update={"reason": "CrashLoopBackOff"}),)})
    assert crashloop(looping, [], NOW) == []


def test_every_kind_stays_in_its_lane_in_one_detect_pass():
    snap = _snap(ended=[Termination(container="main", reason="OOMKilled", exit_code=137)])
    assert [f.kind for f in detect(snap, intents=[], now=NOW)] == ["out_of_memory"]
    assert diagnose(snap, snap.workloads[0], NOW).reading == "out_of_memory"


def test_pods_on_a_node_that_is_not_ready_are_left_to_the_node_detectors():
    snap = _probe_snap([HEALTH], running=timedelta(hours=3))
    down = snap.model_copy(update={"nodes": (snap.nodes[0].model_copy(update={"ready": False}),)})
    assert _one(not_ready(snap, NOW)).details["reading"] == "stuck"
    assert not_ready(down, NOW) == [] and diagnose(down, down.workloads[0], NOW).says == "its node gpu-a is NotReady"
