"""The watched cache behind the kube adapter's snapshots, over real HTTP with the official client.

Spec for `KubeCluster.start_watching` and `informer.Informer`:
- after start-up (the first snapshot lists each kind once) a snapshot makes no
  list call: the emulator sees only watches;
- a change made at the server reaches the next snapshot through the watch;
- a bookmark moves the resourceVersion and nothing else; a 410 Gone lists again;
  a connection cut mid-event resumes the watch from the last version seen;
- after any stream of creates, updates and deletes the cache equals a fresh list;
- health: not ok once a watched kind has been silent beyond the bound.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kube_harness import Emulator, StatusServer, fixture
from test_kube_read import seed_cluster

from opsagent.clock import RealClock, VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.informer import Informer, key_of

NOW = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)


def _cluster(url: str) -> KubeCluster:
    cluster = KubeCluster(api_client_for_url(url), clock=VirtualClock(NOW))
    cluster.chokepoint.base_delay = 0.01
    return cluster


def _until(informer: Informer, condition, timeout: float = 20.0) -> bool:
    """Wait on the informer's change events until `condition()` holds (False after `timeout`)."""
    with informer.changed:
        return informer.changed.wait_for(condition, timeout)


def _lists(requests: list[dict]) -> list[dict]:
    return [r for r in requests if r["method"] == "GET" and r["params"].get("watch") != "true"
            and r["path"].startswith(("/api/", "/apis/")) and r["path"].rstrip("/") not in ("/apis", "/api")]


def _deployment(name: str, replicas: int) -> dict:
    obj = copy.deepcopy(fixture("deployment-progress-deadline-exceeded.yaml"))
    obj["metadata"].update(name=name, resourceVersion=None, uid=None)
    obj["spec"]["replicas"] = replicas
    return obj


def test_a_quiet_cycle_after_start_up_makes_no_list_calls():
    with Emulator() as emu:
        seed_cluster(emu)
        cluster = _cluster(emu.url)
        cluster.start_watching()
        try:
            first = cluster.snapshot()
            listed = len(_lists(emu.requests()))
            again = cluster.snapshot()
            after = emu.requests()
        finally:
            cluster.stop_watching()
    plain = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(NOW))
    assert listed > 0
    assert len(_lists(after)) == listed                      # the second snapshot listed nothing
    assert any(r["params"].get("watch") == "true" for r in after)
    assert again.model_dump() == first.model_dump()
    assert plain.cache_health()[0]


def test_a_change_at_the_server_reaches_the_next_snapshot_through_the_watch():
    with Emulator() as emu:
        seed_cluster(emu)
        cluster = _cluster(emu.url)
        cluster.start_watching()
        try:
            before = cluster.snapshot()
            informer = cluster.cache.informers["deployments"]
            version = informer.generation
            cluster.chokepoint.read_json("patch", cluster.apps.patch_namespaced_deployment, "guestbook-ui", "default",
                                         {"spec": {"replicas": 7}}, _content_type="application/merge-patch+json")
            assert _until(informer, lambda: informer.generation > version)
            after = cluster.snapshot()
            listed = len(_lists(emu.requests()))
        finally:
            cluster.stop_watching()
    old = {w.ref.name: w for w in before.workloads}
    new = {w.ref.name: w for w in after.workloads}
    assert old["guestbook-ui"].replicas != 7 and new["guestbook-ui"].replicas == 7
    assert listed == len({k for k in cluster_kinds(emu)})


def cluster_kinds(emu: Emulator) -> set[str]:
    return {r["path"] for r in _lists(emu.requests())}


def _events(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def _list_body(version: str, *items: dict) -> dict:
    return {"kind": "DeploymentList", "metadata": {"resourceVersion": version}, "items": list(items)}


def _obj(name: str, version: str, replicas: int = 1) -> dict:
    return {"metadata": {"namespace": "default", "name": name, "resourceVersion": version}, "spec": {"replicas": replicas}}


def _informer(url: str) -> tuple[Informer, threading.Event, threading.Thread]:
    cluster = KubeCluster(api_client_for_url(url), clock=RealClock())
    cluster.chokepoint.base_delay = 0.01
    informer = Informer(cluster.chokepoint, "deployments", cluster.apps.list_deployment_for_all_namespaces,
                        clock=cluster.clock, max_backoff=0.05)
    informer.relist()
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), daemon=True)
    thread.start()
    return informer, stop, thread


def test_bookmark_moves_the_version_and_410_lists_again():
    script = [
        (200, _list_body("5", _obj("a", "4"))),
        (200, _events({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
                      {"type": "ADDED", "object": _obj("b", "7")},
                      {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}})),
        (200, _list_body("20", _obj("c", "19"))),
        (200, _events({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "21"}}})),
    ]
    with StatusServer(script) as srv:
        informer, stop, thread = _informer(srv.url)
        try:
            assert _until(informer, lambda: informer.version == "21")
        finally:
            stop.set()
        seen = srv.seen[:4]
        keys = {key_of(o) for o in informer.items()}
    assert [r["params"].get("watch") for r in seen] == [None, "true", None, "true"]
    assert [r["params"].get("resourceVersion") for r in seen] == [None, "5", None, "20"]
    assert seen[1]["params"]["allowWatchBookmarks"] == "true"
    assert keys == {"default/c"}   # the relist replaced everything, "b" included
    assert informer.lists == 2


def test_a_connection_cut_mid_event_resumes_from_the_last_version_seen():
    cut = _events({"type": "MODIFIED", "object": _obj("a", "6", replicas=3)}) + b'{"type": "MODIFIED", "obj'
    script = [
        (200, _list_body("5", _obj("a", "4"))),
        (200, cut),
        (200, _events({"type": "DELETED", "object": _obj("a", "8")}, {"type": "ADDED", "object": _obj("z", "9")})),
        (200, _events()),
    ]
    with StatusServer(script) as srv:
        informer, stop, thread = _informer(srv.url)
        try:
            assert _until(informer, lambda: informer.version == "9")
        finally:
            stop.set()
        seen = srv.seen[:3]
        keys = {key_of(o) for o in informer.items()}
    assert [r["params"].get("resourceVersion") for r in seen] == [None, "5", "6"]   # resumed, not relisted
    assert keys == {"default/z"} and informer.lists == 1


def test_health_is_not_ok_once_a_watched_kind_is_silent_too_long():
    with Emulator() as emu:
        emu.seed(_deployment("quiet", 1))
        cluster = _cluster(emu.url)
        clock = cluster.clock
        cluster.start_watching(stale_after=60)
        try:
            cluster.snapshot()
            ok, detail = cluster.cache_health()
            assert ok, detail
            clock.advance(600)
            ok, detail = cluster.cache_health()
        finally:
            cluster.stop_watching()
    assert not ok and "deployments" in detail and "stale" in detail


names = st.sampled_from(["a", "b", "c", "d"])
changes = st.lists(st.tuples(st.sampled_from(["put", "delete"]), names, st.integers(0, 5)), max_size=12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes)
def test_the_cache_equals_a_fresh_list_after_any_stream_of_changes(stream):
    with Emulator() as emu:
        cluster = _cluster(emu.url)
        cluster.start_watching()
        try:
            cluster.snapshot()
            informer = cluster.cache.informers["deployments"]
            for op, name, replicas in stream:
                exists = any(key_of(o) == f"default/{name}" for o in
                             cluster.chokepoint.read_json("list", cluster.apps.list_namespaced_deployment, "default")["items"])
                if op == "delete" and exists:
                    cluster.chokepoint.read_json("delete", cluster.apps.delete_namespaced_deployment, name, "default")
                elif op == "put" and exists:
                    cluster.chokepoint.read_json("patch", cluster.apps.patch_namespaced_deployment, name, "default",
                                                 {"spec": {"replicas": replicas}},
                                                 _content_type="application/merge-patch+json")
                elif op == "put":
                    cluster.chokepoint.read_json("create", cluster.apps.create_namespaced_deployment, "default",
                                                 _deployment(name, replicas))
            fresh = cluster.chokepoint.read_json("list", cluster.apps.list_deployment_for_all_namespaces)
            want = {key_of(o): o["spec"]["replicas"] for o in fresh["items"]}

            def caught_up() -> bool:
                return {key_of(o): o["spec"]["replicas"] for o in informer.items()} == want

            assert _until(informer, caught_up), (stream, want)
        finally:
            cluster.stop_watching()


def test_readyz_is_not_ready_while_a_watch_is_stale():
    from test_daemon_http import get

    from opsagent.daemon.http import HealthServer, Status
    from opsagent.daemon.metrics import Metrics

    with Emulator() as emu:
        emu.seed(_deployment("quiet", 1))
        cluster = _cluster(emu.url)
        cluster.start_watching(stale_after=60)
        status = Status(leader=True, last_ok=True, cycles=1, cache_health=cluster.cache_health)
        server = HealthServer("127.0.0.1:0", status=status, metrics=Metrics()).start()
        try:
            cluster.snapshot()
            base = f"http://{server.address}"
            fresh = get(base + "/readyz")
            cluster.clock.advance(600)
            stale = get(base + "/readyz")
        finally:
            server.stop()
            cluster.stop_watching()
    assert fresh[0] == 200
    assert stale[0] == 503 and "stale" in stale[1] and "deployments" in stale[1]


class _OpenedWatch:
    """A watch response whose stream would run until the server ends it; it records how it was let go."""

    def __init__(self) -> None:
        self.let_go: list[str] = []

    def stream(self, amt=None, decode_content=False):
        raise AssertionError("a watch opened after stop() is not read")

    def shutdown(self) -> None:
        self.let_go.append("shutdown")

    def close(self) -> None:
        self.let_go.append("close")

    def release_conn(self) -> None:
        self.let_go.append("release")


def test_a_watch_opened_while_the_cache_stops_is_closed_not_pooled():
    """stop() can come while a watch request is on its way: interrupt() then finds nothing to cut, so the
    informer must close that watch itself, or the server keeps streaming into a pooled, half-read connection."""
    stop, response = threading.Event(), _OpenedWatch()

    class StoppedWhileOpening:
        def call(self, what, fn, *args, **kwargs):
            stop.set()            # Cache.stop() runs here, between the request and its answer
            return response

    informer = Informer(StoppedWhileOpening(), "deployments", lambda **kw: None, clock=VirtualClock(NOW))
    informer.watch_once(stop)
    assert response.let_go == ["close", "release"]
