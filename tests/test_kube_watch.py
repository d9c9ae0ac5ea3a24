"""Waiting on a workload by watching it, over real HTTP with the official client.

Spec for `KubeCluster.wait_ready`:
- it reads the workload once, then watches it from that resourceVersion with
  bookmarks; a change that makes enough replicas ready ends the wait, and no
  list of the cluster is ever made (kmock serves the watch);
- a bookmark moves nothing; a 410 Gone re-reads the object and watches again
  from the fresh resourceVersion;
- a watch cut off mid-event is read again and watched again;
- past the timeout it returns the ready count it saw last; deletion is NotFound.
"""

from __future__ import annotations

import copy
import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kube_harness import Emulator, StatusServer, fixture

from opsagent.clock import RealClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.port import NotFound
from opsagent.model import WorkloadRef

GUESTBOOK = WorkloadRef(namespace="default", name="guestbook-ui")


def _deployment(ready: int, version: str) -> dict:
    obj = copy.deepcopy(fixture("deployment-progress-deadline-exceeded.yaml"))
    obj["status"]["readyReplicas"] = ready
    obj["metadata"]["resourceVersion"] = version
    return obj


def _events(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def _cluster(url: str) -> KubeCluster:
    cluster = KubeCluster(api_client_for_url(url), clock=RealClock())
    cluster.chokepoint.base_delay = 0.01
    return cluster


def test_a_watched_change_ends_the_wait_without_listing_the_cluster():
    with Emulator() as emu:
        emu.seed(_deployment(0, "1"))
        cluster = _cluster(emu.url)

        def make_ready():
            time.sleep(0.3)
            cluster.chokepoint.call("patch", cluster.apps.patch_namespaced_deployment, GUESTBOOK.name, GUESTBOOK.namespace,
                                    {"status": {"readyReplicas": 2}}, _content_type="application/merge-patch+json",
                                    _preload_content=False)

        writer = threading.Thread(target=make_ready)
        writer.start()
        ready = cluster.wait_ready(ref=GUESTBOOK, replicas=2, timeout=30)
        writer.join()
        reads = [r for r in emu.requests() if r["method"] == "GET"]
    assert ready == 2
    assert reads[0]["path"].endswith("/deployments/guestbook-ui") and reads[0]["params"] == {}
    watches = reads[1:]
    assert watches and all(r["params"].get("watch") == "true" for r in watches)   # no plain list, ever
    assert watches[0]["params"]["resourceVersion"] == "1"
    assert watches[0]["params"]["allowWatchBookmarks"] == "true"
    assert watches[0]["params"]["fieldSelector"] == "metadata.name=guestbook-ui"


def test_bookmark_then_410_gone_reads_again_and_watches_from_the_new_version():
    other = _deployment(3, "7")
    other["metadata"]["name"] = "someone-else"
    script = [
        (200, _deployment(0, "5")),
        (200, _events({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
                      {"type": "MODIFIED", "object": other},
                      {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                   "message": "too old resource version: 5 (9)"}})),
        (200, _deployment(0, "9")),
        (200, _events({"type": "MODIFIED", "object": _deployment(1, "10")})),
    ]
    with StatusServer(script) as srv:
        ready = _cluster(srv.url).wait_ready(ref=GUESTBOOK, replicas=1, timeout=30)
        seen = srv.seen
    assert ready == 1
    assert [r["params"].get("resourceVersion") for r in seen] == [None, "5", None, "9"]
    assert [r["params"].get("watch") for r in seen] == [None, "true", None, "true"]


def test_a_watch_cut_off_mid_event_is_read_and_watched_again():
    cut = _events({"type": "MODIFIED", "object": _deployment(0, "6")}) + b'{"type": "MODIFIED", "obj'
    script = [
        (200, _deployment(0, "5")),
        (200, cut),
        (200, _deployment(0, "8")),
        (200, _events({"type": "MODIFIED", "object": _deployment(2, "9")})),
    ]
    with StatusServer(script) as srv:
        ready = _cluster(srv.url).wait_ready(ref=GUESTBOOK, replicas=2, timeout=30)
        seen = srv.seen
    assert ready == 2
    assert [r["params"].get("resourceVersion") for r in seen] == [None, "5", None, "8"]


def test_a_server_that_ends_every_watch_at_once_is_not_hammered():
    """A proxy that closes each watch as soon as it opens: the wait backs off as after an error, rather than
    reading and watching again without a pause (hundreds of requests a second)."""
    with StatusServer([(200, _deployment(0, "5"))]) as srv:
        ready = _cluster(srv.url).wait_ready(ref=GUESTBOOK, replicas=2, timeout=1.5)
        seen = list(srv.seen)
    assert ready == 0
    watches = [r for r in seen if r["params"].get("watch") in ("true", "True", "1")]
    assert 2 <= len(watches) <= 12, len(watches)      # 0.05 s doubling to 2 s over 1.5 s: a handful, not hundreds


def test_timeout_returns_the_ready_count_seen_last():
    with Emulator() as emu:
        emu.seed(_deployment(1, "1"))
        assert _cluster(emu.url).wait_ready(ref=GUESTBOOK, replicas=3, timeout=0.5) == 1


def test_deletion_while_waiting_is_not_found():
    script = [(200, _deployment(0, "5")), (200, _events({"type": "DELETED", "object": _deployment(0, "6")}))]
    with StatusServer(script) as srv, pytest.raises(NotFound, match="deleted while waiting"):
        _cluster(srv.url).wait_ready(ref=GUESTBOOK, replicas=1, timeout=30)


def test_wake_workload_on_kube_waits_on_the_watch_and_reads_only_that_workload():
    from tools import REGISTRY, ToolContext

    with Emulator() as emu:
        asleep = _deployment(0, "1")
        asleep["spec"]["replicas"] = 0
        emu.seed(asleep)
        cluster = _cluster(emu.url)
        ctx = ToolContext(cluster=cluster, clock=cluster.clock, observe=cluster.snapshot, wake_timeout_seconds=30)
        tool = REGISTRY["wake_workload"]

        def become_ready():
            while not any(r["path"].endswith("/scale") for r in emu.requests()):
                time.sleep(0.02)
            time.sleep(0.2)
            cluster.chokepoint.call("patch", cluster.apps.patch_namespaced_deployment, GUESTBOOK.name, GUESTBOOK.namespace,
                                    {"status": {"readyReplicas": 1}}, _content_type="application/merge-patch+json",
                                    _preload_content=False)

        writer = threading.Thread(target=become_ready)
        writer.start()
        outcome = tool.run(ctx, tool.input_model(namespace="default", name="guestbook-ui"))
        writer.join()
        requests = emu.requests()
    assert outcome.status == "ok" and outcome.data["state"] == "ready" and outcome.data["ready_replicas"] == 1
    after_scale = requests[next(i for i, r in enumerate(requests) if r["path"].endswith("/scale")) + 1:]
    reads = [r for r in after_scale if r["method"] == "GET"]
    assert reads and all(r["path"].endswith("/deployments/guestbook-ui")
                         or (r["path"].endswith("/deployments") and r["params"].get("watch") == "true") for r in reads)


def test_wait_changed_ends_on_the_next_change_of_the_workload():
    script = [(200, _deployment(1, "5")),
              (200, _events({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
                            {"type": "MODIFIED", "object": _deployment(1, "7")}))]
    with StatusServer(script) as srv:
        assert _cluster(srv.url).wait_changed(ref=GUESTBOOK, timeout=30) is True
    with Emulator() as emu:
        emu.seed(_deployment(1, "1"))
        assert _cluster(emu.url).wait_changed(ref=GUESTBOOK, timeout=0.5) is False


def test_a_run_waits_on_the_workloads_its_calls_changed():
    from opsagent.agent.graph import changed_workloads

    rows = [{"status": "ok", "args": {"namespace": "a", "name": "x"}},
            {"status": "denied", "args": {"namespace": "b", "name": "y"}},
            {"status": "ok", "args": {"node": "gpu-1"}},
            {"status": "ok", "args": {"namespace": "a", "name": "x", "replicas": 0}},
            {"status": "ok", "args": {"namespace": "c", "name": "z"}}]
    assert changed_workloads(rows) == [WorkloadRef(namespace="a", name="x"), WorkloadRef(namespace="c", name="z")]


def _script_for(changes: list[tuple[str, int]]) -> tuple[list, int]:
    """A server's answers for a random stream of changes to guestbook-ui, and the ready count it ends at.

    Each change is ("ready", n): the workload now has n ready; ("other", n): another deployment
    changed; ("bookmark", 0); ("gone", 0): the watch expires with 410, so the client reads again."""
    version, ready = 1, 0
    script: list = [(200, _deployment(ready, str(version)))]
    events: list[dict] = []
    for kind, n in changes:
        version += 1
        if kind == "ready":
            ready = n
            events.append({"type": "MODIFIED", "object": _deployment(ready, str(version))})
        elif kind == "other":
            other = _deployment(n, str(version))
            other["metadata"]["name"] = "other"
            events.append({"type": "MODIFIED", "object": other})
        elif kind == "bookmark":
            events.append({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": str(version)}}})
        else:
            events.append({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}})
            script += [(200, _events(*events)), (200, _deployment(ready, str(version)))]
            events = []
    script += [(200, _events(*events)), (200, _deployment(ready, str(version + 1)))]
    return script, ready


changes = st.lists(st.tuples(st.sampled_from(["ready", "other", "bookmark", "gone"]), st.integers(0, 3)), max_size=8)


@settings(max_examples=25, deadline=None)
@given(changes=changes, want=st.integers(1, 3))
def test_wait_ready_sees_what_a_fresh_read_would_after_any_stream_of_changes(changes, want):
    script, final = _script_for(changes)
    seen = [n for kind, n in changes if kind == "ready"]
    expected = next((n for n in seen if n >= want), final)
    with StatusServer(script) as srv:
        assert _cluster(srv.url).wait_ready(ref=GUESTBOOK, replicas=want, timeout=0.3) == expected


def test_once_watching_waits_and_verification_read_the_cache_and_send_nothing():
    """With the watched cache, wait_ready and wait_changed wait on its events (no GET, no watch of their own)."""
    with Emulator() as emu:
        emu.seed(_deployment(0, "1"))
        cluster = _cluster(emu.url)
        cluster.start_watching()
        try:
            cluster.snapshot()
            informer = cluster._informer_of(GUESTBOOK)
            assert informer is not None
            seen = len(emu.requests())

            def make_ready():
                time.sleep(0.3)
                cluster.chokepoint.call("patch", cluster.apps.patch_namespaced_deployment, GUESTBOOK.name,
                                        GUESTBOOK.namespace, {"status": {"readyReplicas": 2}},
                                        _content_type="application/merge-patch+json", _preload_content=False)

            writer = threading.Thread(target=make_ready)
            writer.start()
            assert cluster.wait_ready(ref=GUESTBOOK, replicas=2, timeout=30) == 2
            writer.join()
            waited = [r for r in emu.requests()[seen:] if r["method"] == "GET" and r["params"].get("watch") != "true"]
            assert waited == []   # the patch above is the only request; the wait read nothing
            assert cluster.wait_changed(ref=GUESTBOOK, timeout=0.3) is False

            with pytest.raises(NotFound):
                cluster.wait_ready(ref=WorkloadRef(namespace="default", name="nothing"), replicas=1, timeout=1)
        finally:
            cluster.stop_watching()


def test_a_write_waits_until_the_cache_shows_its_resource_version():
    """Read your writes: `at_least(version)` holds once the informer applied the event carrying the write's
    resourceVersion (or a later one); before that the wait blocks, and it gives up after its timeout."""
    from opsagent.cluster.kube.informer import Informer
    from opsagent.cluster.kube.waiting import at_least, wait_cached

    informer = Informer(None, "deployments", lambda **kw: None, clock=RealClock())  # fed by hand, as a watch feeds it
    informer.apply({"type": "ADDED", "object": _deployment(1, "7")})
    key = str(GUESTBOOK)
    assert wait_cached(informer, key, at_least("9"), 0.2) is None
    later = threading.Timer(0.2, informer.apply, args=({"type": "MODIFIED", "object": _deployment(2, "10")},))
    later.start()
    seen = wait_cached(informer, key, at_least("9"), 30)
    later.join()
    assert seen is not None and seen["metadata"]["resourceVersion"] == "10" and seen["status"]["readyReplicas"] == 2
    with pytest.raises(NotFound):
        wait_cached(informer, "default/nothing", at_least("1"), 0.1)
