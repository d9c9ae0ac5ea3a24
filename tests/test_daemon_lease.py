"""Lease-based leader election against an in-memory coordination API with resourceVersion checks."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

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
    a = LeaseLeader(KubeLease(api, namespace="opsagent", name="opsagent-daemon", identity="a", lease_seconds=30, clock=clock))
    b = LeaseLeader(KubeLease(api, namespace="opsagent", name="opsagent-daemon", identity="b", lease_seconds=30, clock=clock))
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
    assert b.where == "Lease opsagent/opsagent-daemon"


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
