"""The policy file format (pydantic, unknown fields are errors).

One YAML file holds any of: `priority`, `scope`, `groups`, `intents`,
`annotation_intents`, `rules`, `limits`,
`max_workloads_per_run`, `mode`, `approval_ttl`, `confirmation_ttl`, `default_approvers`, `spend_caps`. The
loader merges every file of a directory (see loader.py); this module only
says what one file may contain. Pure: no I/O, no CEL compilation here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opsagent.clock import parse_duration
from opsagent.model import Effect, Risk
from opsagent.model.actor import ActorNameError, normalize_name
from opsagent.policy.intents import Intent
from opsagent.policy.optin import AnnotationOptIn

RISKS: tuple[str, ...] = ("read", "write", "architectural")
ACTOR_KEYWORDS = ("daemon", "wake-proxy", "*")
CLUSTER_GROUP = "cluster-group:"  # a group the cluster's authentication reports (SelfSubjectReview)
_ACTOR = re.compile(r"^(group:[A-Za-z0-9][-A-Za-z0-9_.]*|[A-Za-z0-9*][-A-Za-z0-9_.@*:]*)$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_tuple(value: object) -> object:
    """Let a single string stand for a one-item list (`risk: write`)."""
    return (value,) if isinstance(value, str) else value


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30m, 2h or 90s")


def _check_actor(value: str) -> str:
    """A valid actor reference, in the normalised form every door gives actor names (case-folded)."""
    if value.startswith(CLUSTER_GROUP):
        try:
            return CLUSTER_GROUP + normalize_name(value[len(CLUSTER_GROUP):], what="cluster group")
        except ActorNameError as exc:
            raise ValueError(f"{value!r} is not a cluster group: {exc}") from None
    if not _ACTOR.match(value):
        raise ValueError(f"{value!r} is not an actor: use a person's name, group:NAME, cluster-group:NAME, "
                         "daemon, wake-proxy or *")
    # group:NAME is a policy group; slack:USERID names an unmapped Slack user by Slack's own (upper-case) id
    return value if value.startswith(("group:", "slack:")) else normalize_name(value)


class Scope(Strict):
    """Which targets this file governs. Namespaces are names or globs (`team-*`)."""

    namespaces: tuple[str, ...] = Field(default=("*",), description="namespaces governed; default every namespace")
    exclude_namespaces: tuple[str, ...] = Field(default=(), description="namespaces never governed, even if matched above")
    labels: dict[str, str] = Field(default_factory=dict, description="the target workload must carry all of these labels")

    _tuples = field_validator("namespaces", "exclude_namespaces", mode="before")(_as_tuple)


class Rule(Strict):
    """One rule. The first rule (file order, then list order) that matches a call decides it."""

    name: str = Field(min_length=1, max_length=100)
    tools: tuple[str, ...] = Field(default=("*",), description="tool names or globs (scale_*); default any")
    risk: tuple[Risk, ...] = Field(default=(), description="risk classes matched; default any")
    namespaces: tuple[str, ...] = Field(default=(), description="namespace names or globs; default any in scope")
    labels: dict[str, str] = Field(default_factory=dict, description="labels the target workload must carry")
    actors: tuple[str, ...] = Field(default=("*",), description="person, group:NAME, cluster-group:NAME, daemon, wake-proxy or *")
    channels: tuple[str, ...] = Field(default=(), description="daemon, cli, slack, wake-proxy, eval, api, mcp, lease; default any")
    when: str | None = Field(default=None, description="CEL condition over args, target, intent, actor, channel, now, hour, weekday")
    effect: Effect
    approvers: tuple[str, ...] = Field(default=(), description="who may approve (require_approval only)")
    expires_after: timedelta | None = Field(default=None, description="approval expiry; default the policy's approval_ttl")
    reason: str = Field(default="", max_length=500)
    confirm: bool = Field(default=False, description="a person asking in chat must confirm the write before it runs")

    _tuples = field_validator("tools", "risk", "namespaces", "actors", "channels", "approvers", mode="before")(_as_tuple)
    _expiry = field_validator("expires_after", mode="before")(lambda v: None if v is None else _duration(v))

    @field_validator("actors", "approvers")
    @classmethod
    def _actors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_actor(v) for v in value)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = ("daemon", "cli", "slack", "wake-proxy", "eval", "api", "mcp", "lease")
        for item in value:
            if item not in known:
                raise ValueError(f"unknown channel {item!r}; known: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _approval_fields(self) -> "Rule":
        if self.effect != "require_approval" and (self.approvers or self.expires_after is not None):
            raise ValueError("approvers and expires_after only make sense with effect: require_approval")
        if self.confirm and self.effect == "deny":
            raise ValueError("confirm: true only makes sense with effect: allow or require_approval (a denied call never runs)")
        return self


class RateLimit(Strict):
    """At most `max` successful calls of `tools` per `per` window, counted `by` namespace, actor or overall."""

    name: str = Field(min_length=1, max_length=100)
    tools: tuple[str, ...] = Field(default=("*",), description="tool names or globs")
    namespaces: tuple[str, ...] = Field(default=(), description="only calls in these namespaces; default any")
    actors: tuple[str, ...] = Field(default=(), description="only calls by these actors; default any")
    max: int = Field(ge=0)
    per: timedelta
    by: Literal["namespace", "actor", "global"] = "global"

    _tuples = field_validator("tools", "namespaces", "actors", mode="before")(_as_tuple)
    _per = field_validator("per", mode="before")(_duration)

    @field_validator("actors")
    @classmethod
    def _actors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_actor(v) for v in value)

    @field_validator("per")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("per must be a positive duration such as 1h")
        return value


class SpendCap(Strict):
    """At most `calls` model calls and `tokens` prompt + completion tokens in any 24 hours (each optional)."""

    calls: int | None = Field(default=None, ge=0, description="model calls in the last 24 hours")
    tokens: int | None = Field(default=None, ge=0, description="prompt + completion tokens in the last 24 hours")

    @model_validator(mode="after")
    def _something(self) -> "SpendCap":
        if self.calls is None and self.tokens is None:
            raise ValueError("set calls, tokens or both (a cap with neither caps nothing)")
        return self


class SpendCaps(Strict):
    """Caps on language-model use over a rolling 24 hours: the daemon's runs, and each chat actor's."""

    daemon: SpendCap | None = Field(default=None, description="the daemon's finding runs together")
    per_actor: SpendCap | None = Field(default=None, description="each person chatting (ask, chat, Slack), separately")


class PolicyFile(Strict):
    """Everything one policy file may hold. Every part is optional."""

    priority: int = Field(default=100, ge=0, le=1000, description="merge order: lower first, then file name; rules of earlier files win")
    scope: Scope | None = None
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    intents: tuple[Intent, ...] = ()
    annotation_intents: tuple[AnnotationOptIn, ...] = Field(
        default=(), description="namespaces where workloads' opsagent.dev/* annotation intents are obeyed, and the ceilings they stay under")
    rules: tuple[Rule, ...] = ()
    limits: tuple[RateLimit, ...] = ()
    max_workloads_per_run: int | None = Field(default=None, ge=1, description="blast radius: distinct workloads one run may change")
    mode: Literal["enforce", "dry-run"] | None = None
    approval_ttl: timedelta | None = None
    confirmation_ttl: timedelta | None = Field(default=None, description="how long a write proposed in chat waits for "
                                                                         "the asker's confirmation; default 15m")
    default_approvers: tuple[str, ...] = Field(default=(), description="approvers for rules that name none")
    spend_caps: SpendCaps | None = Field(default=None, description="daily caps on model calls and tokens")

    _ttl = field_validator("approval_ttl", "confirmation_ttl", mode="before")(lambda v: None if v is None else _duration(v))
    _approvers = field_validator("default_approvers", mode="before")(_as_tuple)

    @field_validator("confirmation_ttl")
    @classmethod
    def _positive_ttl(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() <= 0:
            raise ValueError("confirmation_ttl must be a positive duration such as 15m")
        return value

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name, members in value.items():
            if not _NAME.match(name):
                raise ValueError(f"group name {name!r} must be lower-case letters, digits, - _ .")
            for member in members:
                if member.startswith(("group:", CLUSTER_GROUP)) or member == "*":
                    raise ValueError(f"group {name!r}: member {member!r} must be a person, daemon or wake-proxy (no nesting, no *)")
            out[name] = tuple(_check_actor(m) for m in members)
        return out

    @field_validator("default_approvers")
    @classmethod
    def _default_approvers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_actor(v) for v in value)
