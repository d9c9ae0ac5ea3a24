"""Who a command-line request runs as, established by something other than the person's own say-so.

- On a real cluster (`--cluster kube`, `kube:CONTEXT`) the actor is the user
  the kube credentials belong to, as the API server answers a SelfSubjectReview
  (what `kubectl auth whoami` shows), with the groups it reports
  (`cluster-group:NAME` in policy rules). `--as NAME` works only where the
  cluster lets those credentials impersonate NAME (a SelfSubjectAccessReview
  for verb `impersonate` on `users`, and on `groups` for `--as-group`), and
  from then on every request to the API server is made as NAME, exactly as
  with kubectl's `--as`.
- On the simulator (`sim:...`) `--as` (or `OPSAGENT_ACTOR`, or the OS user)
  is taken as given: it exists for demos and tests, and nothing real is at stake.

Every name passes `normalize_actor`, so a machine actor's look-alike never
comes through. Errors are `IdentityError`: one line and a hint, no traceback.
This module asks the cluster; it never decides what the actor may do (the
policy does).
"""

from __future__ import annotations

import getpass
from typing import Any

from opsagent.cluster.port import ClusterError
from opsagent.model.actor import Actor, ActorNameError, normalize_actor, normalize_name

KUBE = "kube"


class IdentityError(Exception):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def is_kube(cluster_spec: str | None) -> bool:
    return bool(cluster_spec) and str(cluster_spec).partition(":")[0] == KUBE


def demo_actor(as_user: str | None, *, as_groups: tuple[str, ...] = ()) -> Actor:
    """The simulator's actor: `--as` / OPSAGENT_ACTOR, else the OS user, normalised. For demos and tests."""
    if as_groups:
        raise IdentityError("--as-group needs a real cluster (--cluster kube): on the simulator groups come from "
                            "the policy's groups", hint="drop --as-group")
    raw = as_user if as_user else getpass.getuser()
    try:
        name = normalize_actor(raw)
    except ActorNameError as exc:
        raise IdentityError(f"--as (or OPSAGENT_ACTOR): {exc}",
                            hint="act as yourself with a plain name, e.g. --as alice; the policy decides what you may do") from None
    return Actor(name=name, source="simulator: --as, for demos" if as_user else "simulator: OS user, for demos")


def actor_from(username: str, groups: tuple[str, ...], *, source: str) -> Actor:
    """The actor for a user name and groups the cluster reported, normalised (`IdentityError` if impossible)."""
    try:
        name = normalize_actor(username)
        folded = tuple(dict.fromkeys(normalize_name(g, what="cluster group") for g in groups))
    except ActorNameError as exc:
        raise IdentityError(f"the cluster authenticates you as {username!r}, which cannot be an opsagent actor: {exc}",
                            hint="use kube credentials that belong to a person") from None
    return Actor(name=name, groups=folded, source=source)


def _check_impersonated(as_user: str, as_groups: tuple[str, ...]) -> None:
    """Refuse, before asking the cluster anything, a name that could never be a person's or be sent as a header."""
    try:
        normalize_actor(as_user)
        for group in as_groups:
            normalize_name(group, what="--as-group")
    except ActorNameError as exc:
        raise IdentityError(f"--as: {exc}", hint="act as yourself, or --as a person's cluster user name") from None
    for value in (as_user, *as_groups):
        if not value.isascii():
            raise IdentityError(f"--as {value!r}: on a real cluster the name is sent in an Impersonate-User/-Group "
                                "header, which takes ASCII only", hint="use the cluster's own (ASCII) user name")


def cluster_actor(cluster: Any, *, as_user: str | None = None, as_groups: tuple[str, ...] = ()) -> Actor:
    """The actor of a kube connection (SelfSubjectReview); with `as_user`, impersonation the cluster allows."""
    try:
        me = cluster.whoami()
    except ClusterError as exc:
        raise IdentityError(f"cannot ask the cluster who you are: {exc.message}",
                            hint="check `kubectl auth whoami` works with the same kubeconfig and context") from None
    if as_groups and not as_user:
        raise IdentityError("--as-group needs --as (as with kubectl)", hint="add --as NAME")
    if as_user:
        _check_impersonated(as_user, as_groups)
    if not as_user or (as_user == me.username and not as_groups):
        return actor_from(me.username, me.groups, source="kube credentials (SelfSubjectReview)")
    try:
        why_not = cluster.impersonation_refusal(user=as_user, groups=as_groups)
    except ClusterError as exc:
        raise IdentityError(f"--as {as_user}: cannot ask the cluster whether {me.username} may impersonate: "
                            f"{exc.message}") from None
    if why_not is not None:
        raise IdentityError(f"--as {as_user}: the cluster says {me.username} {why_not}",
                            hint="drop --as to act as yourself, or ask a cluster admin for the impersonate verb")
    try:
        cluster.impersonate(user=as_user, groups=as_groups)
        them = cluster.whoami()
    except (ClusterError, ValueError) as exc:
        raise IdentityError(f"--as {as_user}: {getattr(exc, 'message', exc)}") from None
    if them.username != as_user:
        raise IdentityError(f"--as {as_user}: the cluster answers as {them.username!r} instead; not acting",
                            hint="check the API server honours impersonation")
    return actor_from(them.username, them.groups,
                  source=f"kube credentials of {me.username}, impersonating (SelfSubjectAccessReview, SelfSubjectReview)")


def establish(*, cluster_spec: str | None, cluster: Any = None, as_user: str | None = None,
              as_groups: tuple[str, ...] = ()) -> Actor:
    """The actor for a command: from the cluster's authentication on kube, else the simulator's `--as`."""
    if is_kube(cluster_spec):
        if cluster is None:
            raise IdentityError("no cluster connection to ask who you are")
        return cluster_actor(cluster, as_user=as_user, as_groups=as_groups)
    return demo_actor(as_user, as_groups=as_groups)


__all__ = ["IdentityError", "actor_from", "cluster_actor", "demo_actor", "establish", "is_kube"]
