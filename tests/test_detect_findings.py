"""The detectors on hand-built snapshots: what each one finds, and what it must leave alone.

A healthy cluster has no findings; every kind appears in the troubled one;
protected intents and open prewarm windows keep workloads awake; ids stay the
same across cycles; details are plain JSON data.
"""

from __future__ import annotations

import json
from datetime import timedelta

from detect_sample import NOW, gpu, healthy, intent, pod, troubled

from opsagent.detect import DETAIL_KEYS, Attempts, detect
from opsagent.detect.common import Seen
from opsagent.model import FINDING_KINDS, Node, RolloutState, Snapshot


def ids(snapshot, intents, now=NOW, history=None):
    return [f.id for f in detect(snapshot, intents=intents, now=now, history=history)]


def by_id(snapshot, intents, now=NOW, history=None):
    return {f.id: f for f in detect(snapshot, intents=intents, now=now, history=history)}


def replace_workload(snap: Snapshot, key: str, **changes) -> Snapshot:
    return snap.model_copy(update={"workloads": tuple(
        w.model_copy(update=changes) if w.key == key else w for w in snap.workloads)})


def test_healthy_cluster_has_no_findings():
    snap, intents = healthy()
    assert ids(snap, intents) == []
    assert ids(snap, intents, now=NOW + timedelta(minutes=10)) == []


def test_every_kind_found_in_order_with_stable_ids_and_json_details():
    snap, intents = troubled()
    # node_awaits_repair needs a memory: a cordoned node the agent saw a hardware XID on, not rebooted since
    snap = snap.model_copy(update={"nodes": (*snap.nodes, Node(name="gpu-e", cordoned=True, boot_id="b1",
                                                               gpus=(gpu("e0", "gpu-e"),)))})
    history = {"node_unhealthy:gpu-e": Attempts(seen=(Seen(at=NOW - timedelta(hours=3), details={
        "xid_errors": [{"xid": 79, "at": (NOW - timedelta(hours=3)).isoformat()}], "boot_id": "b1"}),))}
    first = detect(snap, intents=intents, now=NOW, history=history)
    assert [f.kind for f in first] == list(FINDING_KINDS)
    later = detect(snap.model_copy(update={"time": NOW + timedelta(minutes=5)}), intents=intents,
                   now=NOW + timedelta(minutes=5), history=history)
    assert [f.id for f in later] == [f.id for f in first]
    for finding in first:
        json.dumps(finding.details)  # plain data only
        assert set(finding.details) <= DETAIL_KEYS[finding.kind], finding.kind
        assert finding.seen_at == NOW


def test_idle_gpu_details_and_threshold():
    snap, intents = troubled()
    f = by_id(snap, intents)["idle_gpu:render/ui"]
    assert f.details["gpus_held"] == 1
    assert f.details["gpu_ids"] == ["a0"]
    assert f.details["idle_minutes"] == 120.0
    assert f.details["gpu_hours_wasted_so_far"] == 2.0
    assert f.details["reason"] == "no_requests"
    recent = replace_workload(snap, "render/ui", last_request_at=NOW - timedelta(minutes=29))
    assert "idle_gpu:render/ui" not in ids(recent, intents)


def test_idle_by_zero_rate_counts_from_pod_start():
    snap, intents = healthy()
    quiet = replace_workload(snap, "render/ui", last_request_at=None, request_rate=0.0, gpu_utilization=None)
    f = by_id(quiet, intents)["idle_gpu:render/ui"]
    assert f.details["idle_minutes"] == 300.0  # pod started five hours ago
    unknown = replace_workload(snap, "render/ui", last_request_at=None, request_rate=None, gpu_utilization=None)
    assert ids(unknown, intents) == []  # no metrics: never guess idle


def test_idle_by_low_gpu_utilisation_needs_the_whole_window():
    from opsagent.cluster.utilwatch import mark_low_utilisation
    from opsagent.policy.resolve import intent_for

    snap, intents = healthy()

    def threshold(w):
        i = intent_for(intents, w)
        return i.idle.gpu_util_below if i and i.idle else None

    def at(minutes_later, util):
        moment = NOW + timedelta(minutes=minutes_later)
        return replace_workload(snap, "render/ui", gpu_utilization=util).model_copy(update={"time": moment}), moment

    memory = {}
    seen = []
    for minute, util in [(0, 1.0), (10, 0.5), (20, 40.0), (25, 1.0), (50, 1.0), (55, 1.0)]:
        marked, memory = mark_low_utilisation(at(minute, util)[0], threshold, memory)
        found = by_id(marked, intents, now=marked.time)
        seen.append((minute, "idle_gpu:render/ui" in found))
    # one low reading is not idle; a busy one at minute 20 starts the count again from minute 25
    assert seen == [(0, False), (10, False), (20, False), (25, False), (50, False), (55, True)]
    f = by_id(marked, intents, now=marked.time)["idle_gpu:render/ui"]
    assert f.details["reason"] == "low_gpu_utilization"
    assert f.details["idle_since"] == (NOW + timedelta(minutes=25)).isoformat()
    assert by_id(at(0, 1.0)[0], intents) == {}  # nobody watched: a single snapshot never says idle by utilisation


def test_woken_workload_is_not_idle_until_a_full_window_after_the_wake():
    snap, intents = healthy()
    woken = replace_workload(snap, "render/ui", last_request_at=NOW - timedelta(days=1), request_rate=0.0,
                             gpu_utilization=None)
    woken = woken.model_copy(update={"pods": tuple(
        p.model_copy(update={"started_at": NOW - timedelta(minutes=10)}) if p.name == "ui-1" else p
        for p in woken.pods)})
    assert ids(woken, intents) == []
    assert ids(woken, intents, now=NOW + timedelta(minutes=25)) == ["idle_gpu:render/ui"]


def test_protected_intent_is_never_idle():
    snap, intents = troubled()
    protected = [i.model_copy(update={"protected": True}) if i.name == "ui" else i for i in intents]
    assert "idle_gpu:render/ui" not in ids(snap, protected)


def test_open_prewarm_window_keeps_a_workload_awake():
    snap, intents = troubled()
    warm = [i.model_copy(update={"wake": intent("x", "render", wake={"prewarm": [
        {"cron": "0 8 * * 1-5", "duration": "10h"}]}).wake}) if i.name == "ui" else i for i in intents]
    assert "idle_gpu:render/ui" not in ids(snap, warm)  # Monday 14:00: window open
    evening = snap.model_copy(update={"time": NOW + timedelta(hours=5)})
    assert "idle_gpu:render/ui" in ids(evening, warm, now=NOW + timedelta(hours=5))


def test_wake_requested_from_waiting_requests_or_rate_never_from_an_annotation():
    snap, intents = troubled()
    f = by_id(snap, intents)["wake_requested:chat/chat-ui"]
    assert f.details["trigger"] == "requests"
    assert f.details["pending_requests"] == 3
    assert f.details["warm_replicas"] == 1
    by_rate = replace_workload(snap, "chat/chat-ui", pending_requests=0, request_rate=0.5)
    assert by_id(by_rate, intents)["wake_requested:chat/chat-ui"].details["request_rate"] == 0.5
    quiet = replace_workload(snap, "chat/chat-ui", pending_requests=0)
    assert "wake_requested:chat/chat-ui" not in ids(quiet, intents)
    planted = replace_workload(snap, "chat/chat-ui", pending_requests=0, annotations={"opsagent.dev/pending-requests": "500"})
    assert "wake_requested:chat/chat-ui" not in ids(planted, intents)  # anyone who edits the Deployment could write it
    ungoverned = [i for i in intents if i.name != "chat"]
    assert "wake_requested:chat/chat-ui" not in ids(snap, ungoverned)


def test_wake_requested_when_a_prewarm_window_opens():
    snap, _ = healthy()
    intents = [intent("chat", "chat", idle={"after": "20m"},
                      wake={"warm_replicas": 2, "prewarm": [{"cron": "0 8 * * 1-5", "duration": "10h"}]})]
    f = by_id(snap, intents)["wake_requested:chat/chat-ui"]
    assert f.details["trigger"] == "prewarm"
    assert f.details["window_start"] == "2026-01-05T08:00:00+00:00"
    assert f.details["window_end"] == "2026-01-05T18:00:00+00:00"
    assert f.details["warm_replicas"] == 2
    assert ids(snap, intents, now=NOW + timedelta(hours=4)) == []  # 18:00: closed


def test_a_prewarm_window_opens_at_local_time_in_its_time_zone():
    snap, _ = healthy()
    # 08:00 in Los Angeles is 16:00 UTC in January: closed at NOW (14:00 UTC), open two hours later.
    window = {"cron": "0 8 * * mon-fri", "duration": "10h", "time_zone": "America/Los_Angeles"}
    intents = [intent("chat", "chat", idle={"after": "20m"}, wake={"warm_replicas": 1, "prewarm": [window]})]
    assert "wake_requested:chat/chat-ui" not in ids(snap, intents)
    f = by_id(snap, intents, now=NOW + timedelta(hours=2))["wake_requested:chat/chat-ui"]
    assert f.details["trigger"] == "prewarm" and f.details["window_start"] == "2026-01-05T16:00:00+00:00"


def test_rollout_failed_plan_follows_history():
    snap, intents = troubled()
    first = by_id(snap, intents)["rollout_failed:inference/embedder"]
    d = first.details
    assert (d["revision"], d["reason"], d["attempts"], d["max_attempts"]) == (3, "ProgressDeadlineExceeded", 0, 3)
    assert d["next_action"] == "restart_rollout" and d["retry_due"] is True  # failed 20 min ago, backoff 2m
    assert d["last_good_revision"] == 2 and d["then"] == "rollback"
    fid = first.id
    soon = {fid: Attempts(attempts=1, last_action_at=NOW - timedelta(minutes=1))}
    d = by_id(snap, intents, history=soon)[fid].details
    assert d["backoff_seconds"] == 240 and d["retry_due"] is False
    assert d["retry_at"] == (NOW + timedelta(minutes=3)).isoformat()
    done = {fid: {"attempts": 3, "last_action_at": NOW - timedelta(hours=1)}}
    assert by_id(snap, intents, history=done)[fid].details["next_action"] == "undo_rollout"
    escalate = [i.model_copy(update={"rollout": i.rollout.model_copy(update={"then": "escalate"})})
                if i.name == "embedder" else i for i in intents]
    assert by_id(snap, escalate, history=done)[fid].details["next_action"] == "escalate"


def test_rollout_failed_never_rolls_back_twice():
    snap, intents = troubled()
    fid = "rollout_failed:inference/embedder"
    rolled_back = {fid: Attempts(attempts=4, last_action_at=NOW - timedelta(hours=1))}  # 3 restarts + the undo
    assert by_id(snap, intents, history=rolled_back)[fid].details["next_action"] == "escalate"


def test_last_good_revision_skips_restarts_of_the_broken_release():
    from opsagent.model import Revision

    snap, intents = troubled()
    history = (Revision(revision=1, image="emb:2.2"), Revision(revision=2, image="emb:2.3"),
               Revision(revision=3, image="emb:2.4.0"), Revision(revision=4, image="emb:2.4.0"),
               Revision(revision=5, image="emb:2.4.0"))
    restarted = replace_workload(snap, "inference/embedder", revision=5, history=history,
                                 rollout=RolloutState(status="failed", reason="ProgressDeadlineExceeded", revision=5))
    assert by_id(restarted, intents)["rollout_failed:inference/embedder"].details["last_good_revision"] == 2
    same_image = tuple(r.model_copy(update={"image": "emb:2.4.0"}) for r in history)
    only_template = replace_workload(restarted, "inference/embedder", history=same_image)
    assert by_id(only_template, intents)["rollout_failed:inference/embedder"].details["last_good_revision"] == 4


def test_rollout_failed_from_bad_pods_while_progressing():
    snap, intents = troubled()
    progressing = replace_workload(snap, "inference/embedder", rollout=RolloutState(status="progressing", revision=3))
    f = by_id(progressing, intents)["rollout_failed:inference/embedder"]
    assert f.details["reason"] == "ImagePullBackOff" and f.details["bad_pods"] == ["embedder-2"]
    fine = replace_workload(snap, "inference/embedder", rollout=RolloutState(status="complete", revision=3))
    assert "rollout_failed:inference/embedder" not in ids(fine, intents)


def test_crashloop_only_outside_a_rollout():
    snap, intents = troubled()
    f = by_id(snap, intents)["crashloop:batch/worker"]
    assert f.details["worst_pod"] == "worker-1" and f.details["restarts"] == 7
    mid_rollout = replace_workload(snap, "batch/worker", rollout=RolloutState(status="progressing", revision=5))
    assert "crashloop:batch/worker" not in ids(mid_rollout, intents)
    assert "rollout_failed:batch/worker" in ids(mid_rollout, intents)


def test_drift_replicas_and_slept_workloads():
    snap, intents = troubled()
    f = by_id(snap, intents)["drift:web/api"]
    assert f.details["aspects"] == ["replicas"] and f.details["desired_replicas"] == 4
    low = replace_workload(snap, "web/api", replicas=0)
    assert by_id(low, intents)["drift:web/api"].details["desired_replicas"] == 1
    sleeper = [i.model_copy(update={"idle": intent("x", "web", idle={"after": "5m"}).idle}) if i.name == "api" else i
               for i in intents]
    assert "drift:web/api" not in ids(low, sleeper)  # zero is the idle rule's doing


def test_drift_placement_for_non_tensor_parallel_workloads():
    snap, intents = healthy()
    intents = [i.model_copy(update={"placement": intent("x", "render", placement={
        "min_link_width": 16}).placement}) if i.name == "ui" else i for i in intents]
    assert ids(snap, intents) == []
    narrow = snap.model_copy(update={"nodes": (Node(name="gpu-a", gpus=(
        gpu("a0", link=8, holder="render/ui-1"), gpu("a1"), gpu("a2"), gpu("a3"))),)})
    f = by_id(narrow, intents)["drift:render/ui"]
    assert f.details["aspects"] == ["placement"]
    assert "x8 below x16" in f.details["placement_violations"][0]["problems"][0]


def test_topology_mismatch_and_free_coherent_set():
    snap, intents = troubled()
    f = by_id(snap, intents)["topology_mismatch:inference/llm"]
    assert f.details["throughput_factor"] == 0.25 and f.details["required_link_width"] == 16
    problems = f.details["replicas"][0]["problems"]
    assert any("switch groups" in p for p in problems) and any("mixed" in p for p in problems)
    assert f.details["coherent_set_free"] is False  # a3 is free but x4
    assert "drift:inference/llm" not in ids(snap, intents)  # one problem, one finding
    snap_h, intents_h = healthy()
    assert ids(snap_h, intents_h) == []  # llm on a1+a2, both x16 on switch 0
    spare = snap.model_copy(update={"nodes": snap.nodes + (Node(name="gpu-c", gpus=(
        gpu("c0", "gpu-c"), gpu("c1", "gpu-c"))),)})
    f = by_id(spare, intents)["topology_mismatch:inference/llm"]
    assert f.details["coherent_set_free"] is True and f.details["free_coherent_set"] == ["c0", "c1"]


def test_unschedulable_gpu_names_idle_holders():
    snap, intents = troubled()
    f = by_id(snap, intents)["unschedulable_gpu:batch/worker"]
    assert f.details["pods"] == ["worker-2"] and f.details["idle_holder_ids"] == ["idle_gpu:render/ui"]
    cpu_only = snap.model_copy(update={"pods": snap.pods + (pod("web", "api-9", "api", phase="Pending",
                                                                 reason="Unschedulable"),)})
    assert "unschedulable_gpu:web/api" not in ids(cpu_only, intents)


def test_jobs_waiting_needs_idle_holders_and_a_blocked_job():
    snap, intents = troubled()
    f = by_id(snap, intents)["jobs_waiting:cluster"]
    assert f.details["jobs"] == ["training/finetune-7"]
    assert f.details["idle_holders"] == [{"namespace": "render", "name": "ui", "gpus_held": 1, "idle_minutes": 120.0}]
    busy = replace_workload(snap, "render/ui", last_request_at=NOW, request_rate=2.0)
    assert "jobs_waiting:cluster" not in ids(busy, intents)
    small = snap.model_copy(update={"jobs": (snap.jobs[0].model_copy(update={"gpus": 1}),)})
    assert "jobs_waiting:cluster" not in ids(small, intents)  # a3 is free: it can start


def test_detect_is_deterministic_and_does_not_depend_on_input_order():
    snap, intents = troubled()
    shuffled = snap.model_copy(update={"workloads": tuple(reversed(snap.workloads)),
                                       "pods": tuple(reversed(snap.pods))})
    assert detect(shuffled, intents=intents, now=NOW) == detect(snap, intents=intents, now=NOW)
