"""Who the kube credentials belong to, and whether they may impersonate someone, as the API server says.

What it is for: `who_am_i` asks the API server with a SelfSubjectReview
(`authentication.k8s.io/v1`, what `kubectl auth whoami` sends) and returns the
user name and groups its authenticators established. `impersonation_refusal`
asks with SelfSubjectAccessReviews (verb `impersonate` on `users`, and on
`groups` for each group asked for) whether these credentials may act as
someone else, as the API server checks before it honours kubectl's `--as`;
`impersonate` then sends `Impersonate-User` / `Impersonate-Group` on every
later request of the connection, exactly as kubectl does, so the API server
enforces RBAC as that person too.

Both reviews are granted to every authenticated user by the built-in
`system:basic-user` ClusterRole, so they need nothing from deploy/'s roles
(the daemon acts as `daemon` and never asks who it is).

What it must not do: decide what the person may do in opsagent (the policy
does), or trust anything but the API server's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from opsagent.cluster.kube.client import Chokepoint
from opsagent.cluster.port import ClusterError

REVIEW_API = "authentication.k8s.io/v1"
IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"


@dataclass(frozen=True)
class ClusterUser:
    """The API server's answer: the user name and groups exactly as authenticated (not yet normalised)."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    impersonated_by: str | None = None


def who_am_i(chokepoint: Chokepoint) -> ClusterUser:
    """POST a SelfSubjectReview; the user the API server authenticated these credentials as."""
    body = {"apiVersion": REVIEW_API, "kind": "SelfSubjectReview"}
    api = k8s.AuthenticationV1Api(chokepoint.api)
    review = chokepoint.read_json("ask the API server who these credentials are (SelfSubjectReview)",
                                  api.create_self_subject_review, body)
    info = ((review or {}).get("status") or {}).get("userInfo") or {}
    username = info.get("username")
    if not isinstance(username, str) or not username:
        raise ClusterError("the API server's SelfSubjectReview names no user (anonymous credentials?); "
                           "use kube credentials that belong to a person")
    groups = info.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ClusterError("the API server's SelfSubjectReview has malformed groups")
    return ClusterUser(username=username, groups=tuple(groups), uid=str(info.get("uid") or ""))


def _review(chokepoint: Chokepoint, *, resource: str, name: str) -> tuple[bool, str]:
    attrs = {"verb": "impersonate", "group": "", "resource": resource, "name": name}
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    api = k8s.AuthorizationV1Api(chokepoint.api)
    review = chokepoint.read_json(f"check access impersonate {resource} {name!r}",
                                  api.create_self_subject_access_review, body)
    status = (review or {}).get("status") or {}
    return status.get("allowed") is True and not status.get("denied"), str(status.get("reason") or "")


def impersonation_refusal(chokepoint: Chokepoint, *, user: str, groups: tuple[str, ...] = ()) -> str | None:
    """None when these credentials may impersonate `user` (and each of `groups`); else why not, in one line."""
    allowed, reason = _review(chokepoint, resource="users", name=user)
    if not allowed:
        return f'may not impersonate users "{user}"' + (f" ({reason})" if reason else "")
    for group in groups:
        allowed, reason = _review(chokepoint, resource="groups", name=group)
        if not allowed:
            return f'may not impersonate groups "{group}"' + (f" ({reason})" if reason else "")
    return None


def impersonate(api: Any, *, user: str, groups: tuple[str, ...] = ()) -> None:
    """Send every later request on `api` (a kubernetes ApiClient) as `user` (and `groups`), as kubectl --as does."""
    if len(groups) > 1:
        raise ValueError("one --as-group at most: the client sends one Impersonate-Group header")
    api.set_default_header(IMPERSONATE_USER, user)
    if groups:
        api.set_default_header(IMPERSONATE_GROUP, groups[0])
