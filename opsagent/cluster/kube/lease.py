"""Leader election through a coordination.k8s.io/v1 Lease, for the reconcile daemon.

`KubeLease.try_acquire()` creates the Lease, renews it while this process
holds it, or takes it over once the holder stopped renewing for longer than
`lease_seconds`. Optimistic concurrency (resourceVersion) makes two daemons
racing for an expired Lease end with one holder: the loser gets False.

False means only "another daemon holds the Lease, or won this round". When
the Lease cannot be used at all, `try_acquire()` raises instead: `Forbidden`
naming the verb, resource and namespace RBAC refused, `NotFound` when the
namespace does not exist, `Unavailable` when the API server does not answer.
`publish(annotations)` sets annotations on the Lease while this process holds
it (the daemon notes the audit chain's head there), with the same get and
update verbs, so RBAC needs nothing more.
It must not do anything else with the cluster. Times come from the given Clock.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any, Callable, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsagent.clock import Clock, RealClock
from opsagent.cluster.kube.client import translate
from opsagent.cluster.port import ClusterError, Forbidden, NotFound

T = TypeVar("T")

GROUP = "coordination.k8s.io"
RESOURCE = "leases"


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
        return cls(cluster.lease_api(), namespace=namespace, name=name, **kw)

    def _spec(self, now: datetime, *, transitions: int) -> Any:
        return k8s.V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=self.lease_seconds,
                               acquire_time=now, renew_time=now, lease_transitions=transitions)

    def _unusable(self, verb: str, exc: Exception) -> ClusterError:
        """The error for a call that no retry next cycle will fix by itself (or a translated transient one)."""
        where = f"Lease {self.namespace}/{self.name}"
        error = translate(exc, what=f"{verb} {where}")
        if isinstance(error, Forbidden) and error.status == 403:
            return Forbidden(
                f"RBAC refuses verb {verb!r} on {RESOURCE!r} in API group {GROUP!r} in namespace {self.namespace!r} "
                f"({where}); grant it to opsagent's ServiceAccount with a Role in that namespace "
                f"(deploy/manifests/rbac.yaml: Role opsagent-leader-election), or point --lease-namespace at "
                f"the namespace where that Role is", verb=verb, resource=f"{RESOURCE}.{GROUP}", status=403)
        if isinstance(error, NotFound):
            return NotFound(
                f"cannot {verb} {where}: namespace {self.namespace!r} does not exist (the API server answered 404); "
                f"set --lease-namespace (or POD_NAMESPACE) to the namespace opsagent runs in", status=404)
        return error

    def _call(self, verb: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one API call; an HTTP error stays an ApiException for the caller to sort, anything else is translated."""
        try:
            return fn(*args)
        except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
            raise self._unusable(verb, exc) from exc

    def try_acquire(self) -> bool:
        """True when this process holds the Lease now; False when another daemon does (or won the race)."""
        now = self.clock.now()
        try:
            lease = self._call("get", self.api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise self._unusable("get", exc) from exc
            body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=self.name, namespace=self.namespace),
                               spec=self._spec(now, transitions=0))
            try:
                self._call("create", self.api.create_namespaced_lease, self.namespace, body)
                return True
            except ApiException as exc2:
                if exc2.status == 409:
                    return False  # someone else created it first
                raise self._unusable("create", exc2) from exc2
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
            self._call("update", self.api.replace_namespaced_lease, self.name, self.namespace, lease)  # carries resourceVersion
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False  # a conflict (another daemon won this round) or deleted since the read
            raise self._unusable("update", exc) from exc

    def publish(self, annotations: dict[str, str]) -> bool:
        """Set `annotations` on the Lease if this process holds it (and renew it); False when it does not.

        A conflict (the Lease changed since the read) is not an error: the next cycle publishes again.
        """
        try:
            lease = self._call("get", self.api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._unusable("get", exc) from exc
        if lease.spec is None or lease.spec.holder_identity != self.identity:
            return False
        lease.metadata.annotations = {**(lease.metadata.annotations or {}), **annotations}
        lease.spec.renew_time = self.clock.now()
        try:
            self._call("update", self.api.replace_namespaced_lease, self.name, self.namespace, lease)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise self._unusable("update", exc) from exc
        return True

    def release(self) -> None:
        """Give the Lease up (holder cleared) so a standby takes over at once. Never raises."""
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except (ApiException, urllib3.exceptions.HTTPError, OSError):
            return  # shutting down anyway: a Lease left behind expires after lease_seconds
