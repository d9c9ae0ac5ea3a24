"""`policy lint`: every error of a policy directory, plus warnings for rules that cannot matter.

Errors are what the loader finds (schema, YAML, CEL, unknown groups, an allow
on an architectural tool, a bad `annotation_intents` entry). Warnings: a rule
names a tool that does not exist, a namespace outside its file's scope, or is
shadowed by an earlier rule with no condition that matches everything it does;
files disagreeing on mode; an `annotation_intents` entry that opts every
namespace in, names one outside the scope, or has a ceiling of zero; an intent
that selects by labels alone (labels are cluster text: anyone who can label a
workload would bring it under the intent). Pure
apart from reading the files through the loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from opsagent.policy.errors import Problem
from opsagent.policy.loader import read_policy
from opsagent.policy.policy import CompiledRule, Policy
from opsagent.policy.toolrisk import is_glob, tools_matched


@dataclass(frozen=True)
class LintReport:
    policy: Policy | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


def lint(directory: Path | str, *, tool_risks: Mapping[str, str]) -> LintReport:
    """Load `directory` and check it. `tool_risks` (name → risk) is the tool catalogue's table."""
    policy, problems = read_policy(directory, tool_risks=tool_risks)
    found = list(problems)
    if policy is not None:
        found.extend(rule_warnings(policy))
        found.extend(opt_in_warnings(policy))
    found.sort(key=lambda p: (p.file, p.line or 0, p.column or 0))
    return LintReport(policy, tuple(found))


def rule_warnings(policy: Policy) -> list[Problem]:
    out: list[Problem] = []
    for position, rule in enumerate(policy.rules):
        out.extend(_unknown_tools(policy, rule))
        out.extend(_outside_scope(policy, rule))
        out.extend(_idle_confirm(rule))
        for earlier in policy.rules[:position]:
            if shadows(earlier, rule):
                out.append(_warn(rule, f"rule {rule.rule.name!r} can never match: earlier rule {earlier.rule.name!r} "
                                       f"({earlier.file}:{getattr(earlier, 'line', '?')}) matches every call it does",
                                 hint="move it above the earlier rule, or narrow the earlier one"))
                break
    return out


def opt_in_warnings(policy: Policy) -> list[Problem]:
    """`annotation_intents` entries that opt in more than intended, or can never apply."""
    out: list[Problem] = []
    for opt_in in policy.opt_ins:
        def warn(message: str, hint: str) -> None:  # called only within this iteration, so opt_in is the current one
            out.append(Problem(opt_in.file, opt_in.line, None, message, hint=hint, field="annotation_intents", severity="warning"))  # noqa: B023
        for namespace in opt_in.spec.namespaces:
            if namespace == "*":
                warn("annotation_intents opts every namespace in: whoever can annotate a Deployment anywhere declares its intent "
                     "(up to the ceilings)", "name the namespaces whose teams may declare their own intents, e.g. [team-*]")
            elif not is_glob(namespace) and not policy.in_scope(namespace):
                warn(f"annotation_intents namespace {namespace!r} is outside the scope, so its annotations are never obeyed",
                     "add it to scope.namespaces or remove it")
        if opt_in.spec.max_replicas == 0:
            warn("annotation_intents max_replicas is 0: no annotation intent can keep a replica running",
                 "raise max_replicas, or remove the entry")
    for index, intent in enumerate(policy.intents):
        selector = intent.selector
        if selector.labels and not selector.names and selector.namespace in (None, "", "*"):
            place = policy.intent_book.places[index].get("", "") if index < len(policy.intent_book.places) else ""
            file, _, line = place.rpartition(":")
            out.append(Problem(file or place, int(line) if line.isdigit() else None, None,
                               f"intent {intent.name!r} selects by labels alone: whoever can label a workload in any namespace "
                               "in scope brings it under this intent", hint="add selector.namespace (or names)",
                               field=f"intents[{index}].selector", severity="warning"))
    return out


def _warn(rule: CompiledRule, message: str, *, hint: str | None = None, field: str | None = None) -> Problem:
    return Problem(rule.file, getattr(rule, "line", None), getattr(rule, "column", None), message, hint=hint,
                   field=field or f"rules[{rule.index}]", severity="warning")


def _unknown_tools(policy: Policy, rule: CompiledRule) -> Iterable[Problem]:
    known = policy.tool_risks
    for name in rule.rule.tools:
        if is_glob(name):
            if name != "*" and not tools_matched([name], known):
                yield _warn(rule, f"pattern {name!r} matches no known tool", field=f"rules[{rule.index}].tools")
        elif name not in known:
            yield _warn(rule, f"unknown tool {name!r}", hint=f"known tools: {', '.join(sorted(known))}", field=f"rules[{rule.index}].tools")


def _idle_confirm(rule: CompiledRule) -> Iterable[Problem]:
    """`confirm: true` where nobody can ever be asked: only reads, or only opsagent's own machine actors."""
    if not rule.rule.confirm:
        return
    if rule.risks is not None and rule.risks <= {"read"}:
        yield _warn(rule, f"rule {rule.rule.name!r} asks for confirmation but matches only reads, which never wait for anyone",
                    field=f"rules[{rule.index}].confirm", hint="remove confirm: true, or match write tools")
    elif not rule.any_actor and rule.actor_names and rule.actor_names <= {"daemon", "wake-proxy"}:
        yield _warn(rule, f"rule {rule.rule.name!r} asks for confirmation but matches only machine actors; nobody can "
                          "confirm their calls in conversation, so the writes it allows are refused",
                    field=f"rules[{rule.index}].confirm", hint="use effect: require_approval for calls a person should check")


def _outside_scope(policy: Policy, rule: CompiledRule) -> Iterable[Problem]:
    scopes = rule.scopes or policy.scopes
    for namespace in rule.rule.namespaces:
        if is_glob(namespace):
            continue
        if not any(s.covers_namespace(namespace) for s in scopes):
            yield _warn(rule, f"namespace {namespace!r} is outside the scope, so this part can never match",
                        hint="add it to scope.namespaces or remove it", field=f"rules[{rule.index}].namespaces")


def shadows(earlier: CompiledRule, later: CompiledRule) -> bool:
    """True when `earlier` (no condition) matches every call `later` could match. Conservative."""
    if earlier.when is not None:
        return False
    if earlier.scopes and earlier.scopes != later.scopes:
        return False
    if not _covers(earlier.tools.any, earlier.tools.exact, earlier.tools.globs, later.rule.tools):
        return False
    if earlier.risks is not None and (later.risks is None or not later.risks <= earlier.risks):
        return False
    if earlier.namespaces is not None:
        if later.namespaces is None:
            return False
        if not _covers(earlier.namespaces.any, earlier.namespaces.exact, earlier.namespaces.globs, later.rule.namespaces):
            return False
    if not earlier.any_actor and (later.any_actor or not later.actor_names <= earlier.actor_names):
        return False
    if earlier.channels is not None and (later.channels is None or not later.channels <= earlier.channels):
        return False
    return set(earlier.labels) <= set(later.labels)


def _covers(any_: bool, exact: frozenset[str], globs: tuple[str, ...], names: Iterable[str]) -> bool:
    if any_:
        return True
    from opsagent.policy.toolrisk import matches_any

    for name in names:
        if is_glob(name):
            if name not in exact and name not in globs:
                return False
        elif name not in exact and not matches_any(name, globs):
            return False
    return True
