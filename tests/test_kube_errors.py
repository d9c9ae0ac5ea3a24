"""Error translation at the chokepoint, against a scripted stdlib server on loopback.

Spec: 404 -> NotFound; 403 -> Forbidden naming the RBAC verb and resource from
the Status message; 409 Conflict -> re-read the object, retry once, then
Conflict; 429 / 5xx -> bounded retries with exponential backoff slept on the
Clock (no wall time passes), then Unavailable; a dead port -> Unavailable.
"""

from __future__ import annotations

import socket

import pytest
from kube_harness import StatusServer, fixture

from opsagent.clock import VirtualClock
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.cluster.kube.client import parse_forbidden
from opsagent.cluster.port import Conflict, Forbidden, Invalid, NotFound, Unavailable
from opsagent.model import WorkloadRef

REF = WorkloadRef(namespace="default", name="guestbook-ui")
SCALE_OK = fixture("scale-deployment-guestbook-ui-assembled.json")


def kube(url: str, clock: VirtualClock | None = None) -> KubeCluster:
    return KubeCluster(api_client_for_url(url, timeout=2), clock=clock or VirtualClock())


def test_403_names_verb_and_resource():
    with StatusServer([(403, fixture("status-403-forbidden-assembled.json"))]) as srv:
        with pytest.raises(Forbidden) as err:
            kube(srv.url).scale(ref=REF, replicas=2)
    assert (err.value.verb, err.value.resource) == ("patch", "deployments/scale.apps")
    assert "grant verb 'patch' on 'deployments/scale.apps'" in str(err.value)
    assert len(srv.seen) == 1  # never retried


def test_404_is_not_found():
    with StatusServer([(404, fixture("status-404-notfound.json"))]) as srv:
        with pytest.raises(NotFound):
            kube(srv.url).delete_pod(namespace="default", name="gone")
    assert len(srv.seen) == 1


def test_409_conflict_rereads_and_retries_once_then_succeeds():
    conflict = fixture("status-409-conflict-assembled.json")
    dep = fixture("deployment-progress-deadline-exceeded.yaml")
    with StatusServer([(409, conflict), (200, dep), (200, dep)]) as srv:
        result = kube(srv.url).annotate(ref=REF, annotations={"a": "b"})
    assert result.ok
    assert [(r["method"], r["path"]) for r in srv.seen] == [
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/guestbook-ui"),
        ("GET", "/apis/apps/v1/namespaces/default/deployments/guestbook-ui"),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/guestbook-ui"),
    ]


def test_409_twice_gives_up_with_conflict():
    conflict = fixture("status-409-conflict-assembled.json")
    dep = fixture("deployment-progress-deadline-exceeded.yaml")
    with StatusServer([(409, conflict), (200, dep), (409, conflict)]) as srv:
        with pytest.raises(Conflict, match="still conflicting"):
            kube(srv.url).scale(ref=REF, replicas=3)
    assert len(srv.seen) == 3


def test_already_exists_is_invalid_not_retried():
    with StatusServer([(409, fixture("status-409-alreadyexists-assembled.json"))]) as srv:
        with pytest.raises(Invalid):
            kube(srv.url).restart_rollout(ref=REF)
    assert len(srv.seen) == 1


def test_503_retried_with_backoff_on_the_clock_then_unavailable():
    clock = VirtualClock()
    start = clock.monotonic()
    with StatusServer([(503, {"kind": "Status", "message": "etcdserver: leader changed", "code": 503})]) as srv:
        with pytest.raises(Unavailable, match="gave up after 4 attempts"):
            kube(srv.url, clock).scale(ref=REF, replicas=1)
    assert len(srv.seen) == 4
    assert clock.monotonic() - start == pytest.approx(0.5 + 1.0 + 2.0)  # exponential backoff, slept virtually


def test_429_then_success():
    with StatusServer([(429, {"kind": "Status", "message": "too many requests", "code": 429}), (200, SCALE_OK)]) as srv:
        assert kube(srv.url).scale(ref=REF, replicas=1).ok
    assert len(srv.seen) == 2


def test_unreachable_server_is_unavailable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(Unavailable, match="unreachable"):
        kube(f"http://127.0.0.1:{port}").snapshot()


@pytest.mark.parametrize(("message", "expected"), [
    ('pods "x" is forbidden: User "u" cannot delete resource "pods" in API group "" in the namespace "ml"', ("delete", "pods")),
    ('nodes "n" is forbidden: User "u" cannot patch resource "nodes" in API group "" at the cluster scope', ("patch", "nodes")),
    ("something else", ("", "")),
])
def test_parse_forbidden(message, expected):
    assert parse_forbidden(message) == expected
