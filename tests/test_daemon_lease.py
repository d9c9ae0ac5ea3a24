"""Lease-based leader election.

Spec:
- against an in-memory coordination API with resourceVersion checks: one
  holder, renewal, takeover after expiry, release, and a stale read loses;
- against the kmock emulator, the whole daemon: the Lease lives in
  --lease-namespace / --lease-name (in a pod: POD_NAMESPACE and
  OPSAGENT_LEASE_NAME, as deploy/manifests/deployment.yaml sets them);
- a 403 on the Lease, or a namespace that does not exist, is not "another
  daemon holds the Lease": the daemon does not act, logs an error naming the
  verb, resource and namespace, and /readyz says the same.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Callable

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsagent.clock import VirtualClock
from opsagent.cluster.kube.lease import KubeLease
from opsagent.daemon.leader import LeaseLeader


class FakeCoordination:
    """Create/read/replace of one namespace's Leases, refusing stale resourceVersions like the API server."""

    def __init__(self) -> None:
        self.leases: dict[str, k8s.V1Lease] = {}
        self.version = 0

    def read_namespaced_lease(self, name: str, namespace: str) -> k8s.V1Lease:
        if name not in self.leases:
            raise ApiException(status=404, reason="NotFound")
        return copy.deepcopy(self.leases[name])

    def create_namespaced_lease(self, namespace: str, body: k8s.V1Lease) -> k8s.V1Lease:
        if body.metadata.name in self.leases:
            raise ApiException(status=409, reason="AlreadyExists")
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.leases[body.metadata.name] = copy.deepcopy(body)
        return body

    def replace_namespaced_lease(self, name: str, namespace: str, body: k8s.V1Lease) -> k8s.V1Lease:
        if body.metadata.resource_version != self.leases[name].metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.leases[name] = copy.deepcopy(body)
        return body


def test_one_holder_renewal_takeover_after_expiry_and_release() -> None:
    api, clock = FakeCoordination(), VirtualClock(datetime(2026, 1, 5, tzinfo=timezone.utc))
    a = KubeLease(api, namespace="opsagent", name="opsagent-daemon", identity="a", lease_seconds=30, clock=clock)
    b = KubeLease(api, namespace="opsagent", name="opsagent-daemon", identity="b", lease_seconds=30, clock=clock)
    assert a.try_acquire() and not b.try_acquire()
    clock.advance(20)
    assert a.try_acquire() and not b.try_acquire()          # renewed: still a's
    clock.advance(25)
    assert not b.try_acquire()                               # 25 s since the renewal: not expired yet
    clock.advance(10)
    assert b.try_acquire() and not a.try_acquire()          # a stopped renewing: b takes over
    assert api.leases["opsagent-daemon"].spec.lease_transitions == 1
    b.release()
    assert a.try_acquire()                                   # released: a gets it at once
    assert LeaseLeader(b).where == "Lease opsagent/opsagent-daemon"


def test_a_stale_read_loses_the_race() -> None:
    api, clock = FakeCoordination(), VirtualClock(datetime(2026, 1, 5, tzinfo=timezone.utc))
    first = KubeLease(api, namespace="opsagent", name="l", identity="a", lease_seconds=30, clock=clock)
    assert first.try_acquire()
    clock.advance(60)
    racer = KubeLease(api, namespace="opsagent", name="l", identity="b", lease_seconds=30, clock=clock)
    original = api.read_namespaced_lease
    stale = original("l", "opsagent")

    def read_then_someone_else_writes(name: str, namespace: str) -> k8s.V1Lease:
        api.read_namespaced_lease = original  # type: ignore[method-assign]
        assert first.try_acquire()        # a renews in between b's read and b's write
        return copy.deepcopy(stale)

    api.read_namespaced_lease = read_then_someone_else_writes  # type: ignore[method-assign]
    assert racer.try_acquire() is False
    assert api.leases["l"].spec.holder_identity == "a"


def test_only_the_holder_notes_the_audit_head_on_the_lease() -> None:
    api, clock = FakeCoordination(), VirtualClock(datetime(2026, 1, 5, tzinfo=timezone.utc))
    a = KubeLease(api, namespace="opsagent", name="opsagent-daemon", identity="a", lease_seconds=30, clock=clock)
    b = KubeLease(api, namespace="opsagent", name="opsagent-daemon", identity="b", lease_seconds=30, clock=clock)
    assert b.publish({"opsagent.dev/audit-head": "1:x"}) is False            # no Lease yet
    assert a.try_acquire()
    a.publish({"opsagent.dev/audit-head": "7:" + "c" * 64})
    assert b.publish({"opsagent.dev/audit-head": "1:" + "0" * 64}) is False  # not the holder: nothing changes
    lease = api.leases["opsagent-daemon"]
    assert lease.metadata.annotations == {"opsagent.dev/audit-head": "7:" + "c" * 64}
    assert lease.spec.holder_identity == "a"


# --- the daemon against the emulator ---------------------------------------------------------------------------------

import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402
from kube_harness import Emulator  # noqa: E402
from test_kube_rbac import serve_lease_replace  # noqa: E402

from opsagent.cluster.kube import KubeCluster, api_client_for_url  # noqa: E402
from opsagent.daemon import Daemon, DaemonOptions  # noqa: E402
from opsagent.runtime import open_runtime  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


def kube_daemon(emu: Emulator, tmp_path: Path, on_cycle=None, **options) -> Daemon:
    kube = KubeCluster(api_client_for_url(emu.url))
    runtime = open_runtime(policies=REPO / "policies", db=tmp_path / "ops.db", cluster_obj=kube)
    opts = dict(cluster="kube", policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                interval=0.05, lease_namespace="ops-team", lease_name="opsagent-leader")
    return Daemon(DaemonOptions(**{**opts, **options}), runtime=runtime, on_cycle=on_cycle)


def readyz_until(daemon: Daemon, thread: threading.Thread, text: str) -> tuple[int, dict]:
    """Poll /readyz of a daemon running on `thread` until its detail mentions `text` (or 20 s pass)."""
    deadline = time.monotonic() + 20
    code, body = 0, {}
    while time.monotonic() < deadline and thread.is_alive():
        if daemon.server is not None:
            try:
                with urllib.request.urlopen(f"http://{daemon.server.address}/readyz", timeout=5) as resp:
                    code, body = resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                code, body = exc.code, json.loads(exc.read())
            if text in body.get("detail", ""):
                break
        time.sleep(0.02)
    return code, body


def forbidden(verb: str, namespace: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": f'leases.coordination.k8s.io "opsagent-leader" is forbidden: User '
                       f'"system:serviceaccount:ops-team:opsagent" cannot {verb} resource "leases" in API group '
                       f'"coordination.k8s.io" in the namespace "{namespace}"'}


def test_the_daemon_takes_the_lease_named_by_its_options(tmp_path):
    with Emulator() as emu:
        serve_lease_replace(emu, "ops-team", "opsagent-leader")
        holders = []
        daemon = kube_daemon(emu, tmp_path, cycles=2, on_cycle=lambda report: holders.append(
            emu.stored("coordination.k8s.io/v1/leases", "ops-team", "opsagent-leader")["spec"]["holderIdentity"]))
        cache = daemon.runtime.cluster._inner.cache     # the adapter under the read-only view
        assert daemon.run(install_signals=False) == 0
        watching = [t.name for t in cache._threads if t.is_alive()]   # the watches end with the run, not minutes later
        lease = emu.stored("coordination.k8s.io/v1/leases", "ops-team", "opsagent-leader")
        paths = [r["path"] for r in emu.requests()]
    assert daemon.status.cycles == 2 and holders == [daemon.leader.identity] * 2
    assert cache._threads and watching == []
    assert lease["spec"].get("holderIdentity") is None      # released on a clean exit
    assert LEASES.format(ns="opsagent") not in " ".join(paths)


def test_the_daemon_notes_the_audit_head_on_its_lease(tmp_path):
    from opsagent.audit import AuditStore
    from opsagent.model import AuditEntry

    with AuditStore(tmp_path / "ops.db") as store:       # an empty cluster gives the daemon nothing to record
        store.record(AuditEntry(time=datetime(2026, 1, 5, tzinfo=timezone.utc), kind="run", actor="alice", summary="x"))
    with Emulator() as emu:
        serve_lease_replace(emu, "ops-team", "opsagent-leader")
        noted = []
        daemon = kube_daemon(emu, tmp_path, cycles=2, on_cycle=lambda report: noted.append(
            (emu.stored("coordination.k8s.io/v1/leases", "ops-team", "opsagent-leader")["metadata"].get("annotations") or {})
            .get("opsagent.dev/audit-head")))
        assert daemon.run(install_signals=False) == 0
        lease = emu.stored("coordination.k8s.io/v1/leases", "ops-team", "opsagent-leader")
    with AuditStore(tmp_path / "ops.db") as store:
        head = store.head()
    assert head.rows == 1
    assert noted == [None, head.anchor]                              # the first cycle's head is published after that cycle
    assert lease["metadata"]["annotations"]["opsagent.dev/audit-head"] == head.anchor
    assert daemon.metrics.value("opsagent_audit_head_rows") == head.rows
    assert daemon.metrics.value("opsagent_audit_head_info", hash=head.hash) == 1


def test_forbidden_lease_is_an_rbac_error_not_standby(tmp_path, caplog):
    with Emulator() as emu:
        emu.handler[f"get {LEASES.format(ns='ops-team')}/opsagent-leader"] << 403 << forbidden("get", "ops-team")
        daemon = kube_daemon(emu, tmp_path, listen="127.0.0.1:0")
        thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
        with caplog.at_level(logging.INFO, logger="opsagent.daemon"):
            thread.start()
            try:
                code, body = readyz_until(daemon, thread, "RBAC")
            finally:
                daemon.stop.set()
                thread.join(timeout=30)
        acted = [r for r in emu.requests() if not r["path"].startswith("/apis/coordination.k8s.io")]
    expected = "RBAC refuses verb 'get' on 'leases' in API group 'coordination.k8s.io' in namespace 'ops-team'"
    assert code == 503 and expected in body["detail"] and "another daemon" not in body["detail"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and expected in errors[0]          # said once, however many times it is retried
    assert acted == [] and daemon.status.cycles == 0           # no snapshot, no run: nothing done


@pytest.mark.parametrize("verb", ["create", "update"])
def test_forbidden_create_or_update_names_that_verb(tmp_path, verb):
    with Emulator() as emu:
        if verb == "create":
            emu.handler[f"post {LEASES.format(ns='ops-team')}"] << 403 << forbidden("create", "ops-team")
        else:
            emu.handler.objects["coordination.k8s.io/v1/leases", "ops-team", "opsagent-leader"] = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "opsagent-leader", "namespace": "ops-team", "resourceVersion": "1"},
                "spec": {"holderIdentity": "gone", "leaseDurationSeconds": 15, "renewTime": "2020-01-01T00:00:00.000000Z"}}
            emu.handler[f"put {LEASES.format(ns='ops-team')}/opsagent-leader"] << 403 << forbidden("update", "ops-team")
        daemon = kube_daemon(emu, tmp_path, once=True)
        assert daemon.run(install_signals=False) == 3
    ready, detail = daemon.status.ready()
    assert not ready and f"RBAC refuses verb {verb!r} on 'leases'" in detail and "namespace 'ops-team'" in detail


def test_missing_namespace_says_so(tmp_path):
    with Emulator() as emu:
        emu.handler[f"post {LEASES.format(ns='ops-team')}"] << 404 << {
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": 'namespaces "ops-team" not found', "details": {"name": "ops-team", "kind": "namespaces"}}
        daemon = kube_daemon(emu, tmp_path, once=True)
        assert daemon.run(install_signals=False) == 3
    ready, detail = daemon.status.ready()
    assert not ready and "namespace 'ops-team' does not exist" in detail and "--lease-namespace" in detail


def test_the_cli_reads_the_lease_from_the_manifest_environment(tmp_path):
    """`opsagent daemon` with the env the Deployment sets (POD_NAMESPACE from the pod, OPSAGENT_LEASE_NAME)."""
    from typer.testing import CliRunner

    from opsagent.cli import app

    [container] = yaml.safe_load((REPO / "deploy" / "manifests" / "deployment.yaml").read_text())[
        "spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["POD_NAMESPACE"] = "ops-team"                        # what the fieldRef gives in namespace ops-team
    assert "POD_NAMESPACE" in {e["name"] for e in container["env"]}
    with Emulator() as emu:
        serve_lease_replace(emu, "ops-team", env["OPSAGENT_LEASE_NAME"])
        config = tmp_path / ".kube" / "config"         # the default kubeconfig of HOME=tmp_path
        config.parent.mkdir()
        config.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "emu",
            "clusters": [{"name": "emu", "cluster": {"server": emu.url}}],
            "users": [{"name": "emu", "user": {"token": "t"}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu"}}]}))
        result = CliRunner().invoke(app, ["daemon", "--cluster", "kube", "--once", "--db", str(tmp_path / "ops.db"),
                                          "--policies", str(REPO / "policies"), "--playbooks", str(REPO / "playbooks")],
                                    env={**env, "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "",
                                         "OPSAGENT_LEASE_NAMESPACE": "", "OPSAGENT_LISTEN": ""})
        assert result.exit_code == 0, result.output
        lease = emu.stored("coordination.k8s.io/v1/leases", "ops-team", env["OPSAGENT_LEASE_NAME"])
    assert lease["metadata"]["name"] == "opsagent-leader"


# --- renewal on its own thread -------------------------------------------------------------------------------------

import kmock  # noqa: E402

from opsagent.daemon.leader import LeaseLeader as _LeaseLeader  # noqa: E402


def lease_store(emu: Emulator, namespace: str, name: str) -> list[bool]:
    """Like serve_lease_replace, with a switch: once the returned list is non-empty, every PUT answers 500."""
    failing: list[bool] = []

    def replace(request):
        if failing:
            return kmock.Response(status=500, payload={"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                       "code": 500, "message": "etcdserver: request timed out"})
        body = json.loads(request.data if isinstance(request.data, (bytes, str)) else json.dumps(request.data))
        emu.handler.objects["coordination.k8s.io/v1/leases", namespace, name] = body
        return body

    emu.handler[f"put {LEASES.format(ns=namespace)}/{name}"] << replace
    return failing


def renewing_daemon(emu: Emulator, tmp_path: Path, lease_seconds: int, renew_every: float | None = None) -> Daemon:
    kube = KubeCluster(api_client_for_url(emu.url))
    runtime = open_runtime(policies=REPO / "policies", db=tmp_path / "ops.db", cluster_obj=kube)
    leader = _LeaseLeader(KubeLease.for_cluster(kube, namespace="ops-team", name="opsagent-leader",
                                                identity="leader", lease_seconds=lease_seconds), renew_every=renew_every)
    options = DaemonOptions(cluster="kube", policies=REPO / "policies", playbooks=REPO / "playbooks",
                            db=tmp_path / "ops.db", interval=0.05, cycles=1)
    return Daemon(options, runtime=runtime, leader=leader)


def slow_observe(daemon: Daemon, seconds: float, each: Callable[[], None],
                 done: Callable[[], bool] = lambda: False) -> None:
    """Make the cycle's first read take `seconds` (or until `done()`), calling `each` about ten times a second meanwhile."""
    original = daemon.reconciler.observe

    def observe():
        until = time.monotonic() + seconds
        while time.monotonic() < until and not done():
            each()
            time.sleep(0.1)
        return original()

    daemon.reconciler.observe = observe


def test_a_cycle_three_times_the_lease_keeps_it_and_a_standby_never_takes_it(tmp_path):
    with Emulator() as emu:
        lease_store(emu, "ops-team", "opsagent-leader")
        daemon = renewing_daemon(emu, tmp_path, lease_seconds=1)
        standby = KubeLease.for_cluster(KubeCluster(api_client_for_url(emu.url)), namespace="ops-team",
                                        name="opsagent-leader", identity="standby", lease_seconds=1)
        renewals: set[str] = set()
        standby_won: list[bool] = []
        leading: list[bool] = []

        def meanwhile() -> None:
            spec = emu.stored("coordination.k8s.io/v1/leases", "ops-team", "opsagent-leader")["spec"]
            renewals.add(spec["renewTime"])
            standby_won.append(standby.try_acquire())
            leading.append(daemon.still_leading())

        slow_observe(daemon, 3 * 1 + 0.5, meanwhile)
        assert daemon.run(install_signals=False) == 0
    assert daemon.status.cycles == 1 and not daemon.status.last_error
    assert len(standby_won) > 20 and not any(standby_won)        # asked all along, never got it
    assert all(leading)
    assert len(renewals) >= 4                                     # renewTime moved on during the one cycle


def test_a_failed_renewal_stops_writes_and_readyz_says_so(tmp_path):
    with Emulator() as emu:
        failing = lease_store(emu, "ops-team", "opsagent-leader")
        daemon = renewing_daemon(emu, tmp_path, lease_seconds=3, renew_every=0.3)
        seen: dict[str, object] = {}

        def meanwhile() -> None:
            failing.append(True)                                   # the API server starts answering 500
            if "lost" not in seen and not daemon.still_leading():
                seen["lost"] = True
                seen["ready"] = daemon.status.ready()
                seen["gate"] = daemon.runtime.gate.leading()
                seen["stop"] = daemon.reconciler.should_stop()

        slow_observe(daemon, 3.0, meanwhile, done=lambda: "lost" in seen)   # ten renewal periods at most
        daemon.run(install_signals=False)
    assert seen.get("lost") is True
    ready, detail = seen["ready"]
    assert not ready and "lost the Lease ops-team/opsagent-leader" in detail and "etcdserver" in detail
    assert seen["gate"] is False and seen["stop"] is True
    assert daemon.metrics.value("opsagent_leader") == 0
