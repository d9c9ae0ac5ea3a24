"""The loaded policy: merged files, compiled rules, and the lookups callers use.

`Policy` is built by `load_policy()` (loader.py) and never changes afterwards.
Each `CompiledRule` keeps its CEL condition compiled and its match sets
precomputed, and says in a few words why it does not match a call
(`mismatch`), which both `decide()` and `explain()` use. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from opsagent.model import RuleRef, Snapshot, Workload
from opsagent.policy.cel import Expr
from opsagent.policy.facts import Facts
from opsagent.policy.intents import Intent
from opsagent.policy.optin import OptIn
from opsagent.policy.resolve import IntentBook, Resolved
from opsagent.policy.schema import CLUSTER_GROUP, RateLimit, Rule, Scope, SpendCaps
from opsagent.policy.toolrisk import is_glob, matches_any

_CACHE_MAX = 4096


class Patterns:
    """Names and globs, matched fast: exact names in a set, globs tried after."""

    __slots__ = ("any", "exact", "globs", "source")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.source = tuple(patterns)
        self.any = "*" in self.source
        self.exact = frozenset(p for p in self.source if not is_glob(p))
        self.globs = tuple(p for p in self.source if is_glob(p) and p != "*")

    def match(self, name: str) -> bool:
        return self.any or name in self.exact or (bool(self.globs) and matches_any(name, self.globs))


@dataclass(frozen=True)
class FileScope:
    file: str
    scope: Scope
    include: Patterns = field(init=False)
    exclude: Patterns = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", Patterns(self.scope.namespaces))
        object.__setattr__(self, "exclude", Patterns(self.scope.exclude_namespaces))

    def covers_namespace(self, namespace: str | None) -> bool:
        if namespace is None:
            return True  # cluster-scoped calls (nodes, inventory) are governed everywhere
        return self.include.match(namespace) and not self.exclude.match(namespace)

    def covers(self, namespace: str | None, workload: Workload | None, names_workload: bool) -> bool:
        if not self.covers_namespace(namespace):
            return False
        if self.scope.labels and names_workload:
            if workload is None:
                return False
            return all(workload.labels.get(k) == v for k, v in self.scope.labels.items())
        return True


class CompiledRule:
    """A rule ready to match: patterns precomputed, condition compiled."""

    def __init__(self, rule: Rule, *, file: str, index: int, scopes: tuple[FileScope, ...], when: Expr | None, groups: Mapping[str, tuple[str, ...]]) -> None:
        self.rule = rule
        self.file = file
        self.index = index
        self.ref = RuleRef(file=file, name=rule.name)
        self.scopes = scopes  # the scope of this rule's file, or () when the file declares none
        self.tools = Patterns(rule.tools)
        self.risks = frozenset(rule.risk) if rule.risk else None
        self.namespaces = Patterns(rule.namespaces) if rule.namespaces else None
        self.channels = frozenset(rule.channels) if rule.channels else None
        self.labels = tuple(rule.labels.items())
        self.when = when
        self.when_vars = tuple(sorted(when.variables)) if when is not None else ()
        self.any_actor = "*" in rule.actors
        self.actor_names = frozenset(expand_actors(rule.actors, groups))
        self.cluster_groups = cluster_groups_of(rule.actors)
        self.effect = rule.effect

    def matches_tool(self, tool: str, risk: str) -> bool:
        return self.tools.match(tool) and (self.risks is None or risk in self.risks)

    def mismatch(self, facts: Facts) -> str | None:
        """None when the rule matches `facts`; otherwise a short reason it does not."""
        call = facts.call
        if not self.tools.match(call.tool):
            return f"tool {call.tool} is not in {list(self.tools.source)}"
        if self.risks is not None and facts.risk not in self.risks:
            return f"risk {facts.risk} is not in {sorted(self.risks)}"
        if self.scopes and not any(s.covers(facts.namespace, facts.workload if s.scope.labels else None, facts.ref is not None) for s in self.scopes):
            return f"target is outside the scope of {self.file}"
        if self.namespaces is not None and (facts.namespace is None or not self.namespaces.match(facts.namespace)):
            return f"namespace {facts.namespace or '(none)'} is not in {list(self.namespaces.source)}"
        if not self.any_actor and call.actor not in self.actor_names and self.cluster_groups.isdisjoint(call.actor_groups):
            return f"actor {call.actor} is not in {list(self.rule.actors)}"
        if self.channels is not None and call.channel not in self.channels:
            return f"channel {call.channel} is not in {sorted(self.channels)}"
        if self.labels:
            if facts.ref is None:
                return "the rule needs target labels but the call names no workload"
            workload = facts.workload
            if workload is None:
                return "the rule needs target labels but the workload is not in the snapshot" if facts.snapshot is not None else "the rule needs target labels but there is no snapshot"
            for key, value in self.labels:
                if workload.labels.get(key) != value:
                    return f"target label {key}={workload.labels.get(key)!r}, rule wants {value!r}"
        matched, error = (True, None) if self.when is None else self.when.check(facts.context(self.when_vars))
        if not matched and self.when is not None:  # only a condition can be false
            if error and self.effect != "allow":
                # Fail closed: a deny or approval rule whose condition cannot be
                # evaluated still applies, so a missing field never opens a door.
                facts.condition_error = error
                return None
            return f"condition is false: {' '.join(self.when.source.split())}" + (f" ({error})" if error else "")
        return None


def expand_actors(actors: Iterable[str], groups: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The person names `actors` stand for (policy groups expanded); cluster groups are matched apart."""
    names: set[str] = set()
    for actor in actors:
        if actor.startswith("group:"):
            names.update(groups.get(actor[6:], ()))
        elif actor != "*" and not actor.startswith(CLUSTER_GROUP):
            names.add(actor)
    return names


def cluster_groups_of(actors: Iterable[str]) -> frozenset[str]:
    """The cluster groups named as `cluster-group:NAME`: only these match a person's cluster groups."""
    return frozenset(a[len(CLUSTER_GROUP):] for a in actors if a.startswith(CLUSTER_GROUP))


@dataclass(frozen=True)
class CompiledLimit:
    limit: RateLimit
    file: str
    tools: Patterns
    namespaces: Patterns | None
    actor_names: frozenset[str] | None
    cluster_groups: frozenset[str] = frozenset()

    @property
    def ref(self) -> RuleRef:
        return RuleRef(file=self.file, name=self.limit.name)

    def applies(self, tool: str, namespace: str | None, actor: str, actor_groups: Iterable[str] = ()) -> bool:
        if not self.tools.match(tool):
            return False
        if self.namespaces is not None and (namespace is None or not self.namespaces.match(namespace)):
            return False
        return self.actor_names is None or actor in self.actor_names or not self.cluster_groups.isdisjoint(actor_groups)


class Policy:
    """All policy files of a directory, merged and compiled. Immutable once built."""

    def __init__(
        self,
        *,
        files: tuple[str, ...],
        scopes: tuple[FileScope, ...],
        groups: Mapping[str, tuple[str, ...]],
        intents: tuple[Intent, ...],
        rules: tuple[CompiledRule, ...],
        limits: tuple[CompiledLimit, ...],
        mode: str,
        approval_ttl: timedelta,
        max_workloads_per_run: int | None,
        default_approvers: tuple[str, ...],
        tool_risks: Mapping[str, str],
        warnings: tuple[Any, ...] = (),
        spend_caps: SpendCaps | None = None,
        intent_places: tuple[Mapping[str, str], ...] = (),
        opt_ins: tuple[OptIn, ...] = (),
        confirmation_ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        self.files = files
        self.scopes = scopes
        self.groups = dict(groups)
        self.intents = intents
        self.rules = rules
        self.limits = limits
        self.mode = mode
        self.approval_ttl = approval_ttl
        self.confirmation_ttl = confirmation_ttl
        self.max_workloads_per_run = max_workloads_per_run
        self.default_approvers = default_approvers
        self.tool_risks = dict(tool_risks)
        self.warnings = warnings
        self.spend_caps = spend_caps   # SpendCaps: daily model-call and token caps (None: no caps)
        self.opt_ins = opt_ins
        self.intent_book = IntentBook(intents, opt_ins, intent_places)
        self._candidates: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}
        self._limits_for: dict[str, tuple[CompiledLimit, ...]] = {}

    # -- the agreed lookups --------------------------------------------------
    @property
    def approval_ttl_seconds(self) -> int:
        return int(self.approval_ttl.total_seconds())

    @property
    def confirmation_ttl_seconds(self) -> int:
        """How long a write proposed in chat waits for the asker's confirmation."""
        return int(self.confirmation_ttl.total_seconds())

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry-run"

    def intent_for(self, workload: Workload) -> Intent | None:
        """The workload's intent: a matching policy intent narrowed by its annotations, else an opted-in annotation intent."""
        return self.intent_book.intent_for(workload)

    def resolve(self, workload: Workload) -> Resolved:
        """`intent_for` with its account: the effective replica ceiling, where each bound came from, what was not obeyed."""
        return self.intent_book.resolve(workload)

    def intent_dict_for(self, workload: Workload) -> dict[str, Any]:
        """`intent_for` as CEL reads it (durations in seconds, `replicas.max` the effective ceiling); {} when none applies."""
        return self.intent_book.resolve(workload).as_dict

    def annotation_notes(self, snapshot: Snapshot) -> tuple[str, ...]:
        """What the snapshot's workloads declare in annotations and this policy does not obey (or clamps), one line each."""
        seen = set(snapshot.notes)
        out: list[str] = []
        for workload in snapshot.workloads:
            if not workload.annotations:
                continue
            for line in self.resolve(workload).ignored:
                if line not in seen:
                    seen.add(line)
                    out.append(line)
        return tuple(out)

    def actor_matches(self, actor: str, name: str, actor_groups: Iterable[str] = ()) -> bool:
        """Does `actor` (who acts or approves) fit `name` (a person, group:NAME, cluster-group:NAME, daemon,
        wake-proxy or *)? `actor_groups` are the groups the cluster reports for `actor`; only a
        `cluster-group:NAME` naming one of them matches through them."""
        if name == "*":
            return True
        if name.startswith("group:"):
            return actor in self.groups.get(name[6:], ())
        if name.startswith(CLUSTER_GROUP):
            return name[len(CLUSTER_GROUP):] in set(actor_groups)
        return actor == name

    def in_scope(self, namespace: str | None, labels: Mapping[str, str] | None = None) -> bool:
        """Is a target in `namespace` (with these workload labels, if it names one) governed by any file?"""
        for scope in self.scopes:
            if not scope.covers_namespace(namespace):
                continue
            if scope.scope.labels and labels is not None and not all(labels.get(k) == v for k, v in scope.scope.labels.items()):
                continue
            return True
        return False

    def named_namespaces(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(namespaces the scopes name exactly, patterns such as `team-*` with their file): what RBAC Roles can
        be rendered for, and what cannot be (a Role lives in one named namespace)."""
        exact: set[str] = set()
        patterns: list[str] = []
        for scope in self.scopes:
            for ns in scope.scope.namespaces:
                if is_glob(ns):
                    patterns.append(f"{ns} ({Path(scope.file).name})")
                elif not scope.exclude.match(ns):
                    exact.add(ns)
        return tuple(sorted(exact)), tuple(patterns)

    def risk_of(self, tool: str, risk: str) -> str:
        """The stricter of the caller's risk and the known risk of the tool."""
        known = self.tool_risks.get(tool)
        if known == "architectural" or risk == "architectural":
            return "architectural"
        return risk

    # -- precomputed match sets, filled on first use per (tool, risk) -------
    def candidates(self, tool: str, risk: str) -> tuple[CompiledRule, ...]:
        key = (tool, risk)
        found = self._candidates.get(key)
        if found is None:
            found = tuple(r for r in self.rules if r.matches_tool(tool, risk))
            if len(self._candidates) < _CACHE_MAX:
                self._candidates[key] = found
        return found

    def limits_for(self, tool: str) -> tuple[CompiledLimit, ...]:
        found = self._limits_for.get(tool)
        if found is None:
            found = tuple(lim for lim in self.limits if lim.tools.match(tool))
            if len(self._limits_for) < _CACHE_MAX:
                self._limits_for[tool] = found
        return found

    def summary(self) -> str:
        from opsagent.policy.summary import summarize

        return summarize(self)

    def __repr__(self) -> str:
        return f"Policy(files={list(self.files)}, rules={len(self.rules)}, intents={len(self.intents)}, mode={self.mode})"
