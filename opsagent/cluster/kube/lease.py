"""Leader election through a coordination.k8s.io/v1 Lease, for the reconcile daemon.

`KubeLease.try_acquire()` creates the Lease, renews it while this process
holds it, or takes it over once the holder stopped renewing for longer than
`lease_seconds`. Optimistic concurrency (resourceVersion) makes two daemons
racing for an expired Lease end with one holder. It must not do anything
else with the cluster. Times come from the given Clock.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsagent.clock import Clock, RealClock


class KubeLease:
    def __init__(self, api: Any, *, namespace: str, name: str, identity: str | None = None,
                 lease_seconds: int = 60, clock: Clock | None = None) -> None:
        self.api = api  # a CoordinationV1Api (or anything with the same three methods)
        self.namespace, self.name = namespace, name
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.clock = clock or RealClock()

    @classmethod
    def for_cluster(cls, cluster: Any, *, namespace: str, name: str, **kw: Any) -> "KubeLease":
        """A Lease on the same API connection as a KubeCluster."""
        return cls(k8s.CoordinationV1Api(cluster.core.api_client), namespace=namespace, name=name, **kw)

    def _spec(self, now: datetime, *, transitions: int) -> Any:
        return k8s.V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=self.lease_seconds,
                               acquire_time=now, renew_time=now, lease_transitions=transitions)

    def try_acquire(self) -> bool:
        now = self.clock.now()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                return False
            body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=self.name, namespace=self.namespace),
                               spec=self._spec(now, transitions=0))
            try:
                self.api.create_namespaced_lease(self.namespace, body)
                return True
            except ApiException:
                return False  # someone else created it first
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        duration = timedelta(seconds=spec.lease_duration_seconds or self.lease_seconds)
        expired = renewed is None or now - renewed > duration
        if holder == self.identity:
            spec.renew_time = now
        elif holder and not expired:
            return False
        else:
            lease.spec = self._spec(now, transitions=(spec.lease_transitions or 0) + 1)
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)  # carries resourceVersion
            return True
        except ApiException:
            return False  # a conflict: another daemon won this round

    def release(self) -> None:
        """Give the Lease up (holder cleared) so a standby takes over at once."""
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException:
            return
