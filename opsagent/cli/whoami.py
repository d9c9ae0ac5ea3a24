"""`--as` / `--as-group`, declared once, and turning them into the actor a command runs as.

Thin: the decisions live in `opsagent.identity` (who you are) and the policy
(what you may do). This module maps `IdentityError` to a one-line CLI error
and hands the established actor to the chat service and the approval queue,
so what they check is the identity the cluster confirmed, not a name typed.
"""

from __future__ import annotations

from typing import Any, Callable

import typer

from opsagent.cli.common import fail
from opsagent.identity import IdentityError, establish, is_kube
from opsagent.model.actor import Actor

ActorOpt = typer.Option(
    None, "--as", envvar="OPSAGENT_ACTOR",
    help="On a real cluster (--cluster kube): act as this user through impersonation, only if the cluster lets your "
         "kube credentials impersonate them (as kubectl --as); without it you are who your kube credentials say "
         "(kubectl auth whoami). On the simulator: the name to act as, for demos; default the OS user.")
AsGroupOpt = typer.Option(
    None, "--as-group", envvar="OPSAGENT_ACTOR_GROUP",
    help="With --as on a real cluster: also impersonate this group (the cluster must allow it, as kubectl --as-group).")


def identify(*, cluster_spec: str | None, cluster: Any = None, as_user: str | None, as_group: str | None,
             on_error: Callable[[], None] | None = None) -> Actor:
    """The actor, or a one-line error (after `on_error`, e.g. closing what was opened) and exit 2."""
    try:
        return establish(cluster_spec=cluster_spec, cluster=cluster, as_user=as_user or None,
                         as_groups=(as_group,) if as_group else ())
    except IdentityError as exc:
        if on_error is not None:
            on_error()
        fail(exc.message, hint=exc.hint)


def member_check(policy: Any, who: Actor) -> Callable[[str, str], bool]:
    """The approval queue's `is_member`: the policy's, with `who`'s cluster groups counting for `who` only."""
    def is_member(actor: str, name: str) -> bool:
        return policy.actor_matches(actor, name, who.groups if actor == who.name else ())
    return is_member


def bind(service: Any, approvals: Any, policy: Any, who: Actor) -> None:
    """Make the chat service resolve only `who` (with its groups) and the queue count `who`'s cluster groups."""
    service.resolve = lambda name: who if name == who.name else None
    approvals.is_member = member_check(policy, who)


__all__ = ["ActorOpt", "AsGroupOpt", "bind", "identify", "is_kube", "member_check"]
