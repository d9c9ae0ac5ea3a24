"""Load a directory of policy YAML files into one compiled `Policy`.

Every `*.yaml` / `*.yml` file is read and merged in order of its `priority`
(lower first, default 100), then file name: scopes are a
union, groups merge (the same group defined twice differently is an error),
intents, annotation opt-ins, rules and limits are concatenated in file order. Each `when`
condition is compiled once here. Every problem is reported with its
file:line:column, the field, and a hint; all errors of a load are raised
together as one `PolicyError`. Reads files; decides nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from opsagent.policy.cel import CelError, compile_expr
from opsagent.policy.errors import PolicyError, Problem
from opsagent.policy.optin import OptIn
from opsagent.policy.facts import CEL_VARIABLES
from opsagent.policy.intents import Intent
from opsagent.policy.policy import CompiledLimit, CompiledRule, FileScope, Patterns, Policy, cluster_groups_of, expand_actors
from opsagent.policy.schema import PolicyFile, Scope, SpendCap, SpendCaps
from opsagent.policy.toolrisk import tools_matched
from opsagent.yamlmarks import Marks, YamlProblem, load_with_marks, locate

DEFAULT_TTL = timedelta(hours=1)
DEFAULT_CONFIRMATION_TTL = timedelta(minutes=15)
_FIELD_HINTS = {
    "extra_forbidden": "remove it or check its spelling against docs/policy.md",
    "missing": "add this field",
    "literal_error": "use one of the values listed",
}


def load_policy(directory: Path | str, *, tool_risks: Mapping[str, str]) -> Policy:
    """The merged policy of `directory` (or of one file). Raises PolicyError listing every error.

    `tool_risks` (tool name -> risk class) is the tool catalogue's table (`tools.risk_table()`),
    handed over by whoever loads the policy: the policy layer does not import the tools."""
    policy, problems = read_policy(directory, tool_risks=tool_risks)
    errors = [p for p in problems if p.severity == "error"]
    if errors or policy is None:
        raise PolicyError(errors or [Problem(str(directory), None, None, "no policy could be loaded")])
    return policy


def read_policy(directory: Path | str, *, tool_risks: Mapping[str, str]) -> tuple[Policy | None, list[Problem]]:
    """Like load_policy, but returns (policy or None, problems) instead of raising; lint uses it."""
    root = Path(directory)
    risks = dict(tool_risks)
    if root.is_file():
        paths = [root]
    elif root.is_dir():
        paths = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    else:
        return None, [Problem(str(root), None, None, "no such policy directory or file", hint="pass the directory holding your policy *.yaml files")]
    if not paths:
        return None, [Problem(str(root), None, None, "no *.yaml policy files here", hint="copy policies/default.yaml from the opsagent repository to start")]

    problems: list[Problem] = []
    parsed: list[tuple[str, PolicyFile, Marks]] = []
    for path in paths:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(name, None, None, f"cannot read: {exc}"))
            continue
        loaded = _parse(name, text, problems)
        if loaded is not None:
            parsed.append((name, *loaded))
    parsed.sort(key=lambda item: item[1].priority)  # stable: name order within one priority
    policy = _merge(parsed, risks, problems)
    return policy, problems


def _parse(name: str, text: str, problems: list[Problem]) -> tuple[PolicyFile, Marks] | None:
    try:
        value, marks = load_with_marks(text)
    except YamlProblem as exc:
        problems.append(Problem(name, exc.line, exc.column, f"bad YAML: {exc.message}", hint="check indentation and quoting"))
        return None
    if value is None:
        problems.append(Problem(name, 1, 1, "the file is empty", severity="warning"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(name, 1, 1, f"a policy file must be a mapping, got {type(value).__name__}", hint="start with keys such as scope:, groups:, intents:, rules:"))
        return None
    try:
        return PolicyFile.model_validate(value), marks
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            line, column = locate(marks, loc, key=error["type"] == "extra_forbidden")
            field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown field {loc[-1]!r}"
            problems.append(Problem(name, line, column, message, hint=_FIELD_HINTS.get(error["type"]), field=field or None))
        return None


def _merge(parsed: list[tuple[str, PolicyFile, Marks]], risks: dict[str, str], problems: list[Problem]) -> Policy | None:
    groups: dict[str, tuple[str, ...]] = {}
    group_origin: dict[str, str] = {}
    for name, doc, marks in parsed:
        for group, members in doc.groups.items():
            if group in groups and set(groups[group]) != set(members):
                line, column = locate(marks, ("groups", group))
                problems.append(Problem(name, line, column, f"group {group!r} is already defined differently in {group_origin[group]}",
                                        hint="define each group once, or give both the same members", field=f"groups.{group}"))
                continue
            groups[group] = tuple(members)
            group_origin.setdefault(group, name)

    scopes: list[FileScope] = []
    rules: list[CompiledRule] = []
    limits: list[CompiledLimit] = []
    intents: list[Intent] = []
    places: list[dict[str, str]] = []
    opt_ins: list[OptIn] = []
    modes: dict[str, str] = {}
    ttls: list[timedelta] = []
    confirm_ttls: list[timedelta] = []
    caps: list[int] = []
    default_approvers: list[str] = []
    spend: list[tuple[str, SpendCaps]] = []
    warnings: list[Problem] = []

    for name, doc, marks in parsed:
        _check_groups_known(name, doc, marks, groups, problems)
        if doc.scope is not None:
            scopes.append(FileScope(name, doc.scope))
        if doc.mode:
            modes[name] = doc.mode
        if doc.approval_ttl is not None:
            ttls.append(doc.approval_ttl)
        if doc.confirmation_ttl is not None:
            confirm_ttls.append(doc.confirmation_ttl)
        if doc.max_workloads_per_run is not None:
            caps.append(doc.max_workloads_per_run)
        default_approvers.extend(a for a in doc.default_approvers if a not in default_approvers)
        intents.extend(doc.intents)
        if doc.spend_caps is not None:
            spend.append((name, doc.spend_caps))
            warnings.extend(_zero_caps(name, doc.spend_caps, marks))
        places.extend(_intent_places(name, marks, index) for index in range(len(doc.intents)))
        for index, spec in enumerate(doc.annotation_intents):
            opt_ins.append(OptIn(spec, file=name, line=locate(marks, ("annotation_intents", index))[0]))

    for name, doc, marks in parsed:
        file_scopes = tuple(s for s in scopes if s.file == name)
        for index, rule in enumerate(doc.rules):
            when = None
            if rule.when is not None:
                try:
                    when = compile_expr(rule.when, where=f"{name}:rules[{index}].when", variables=set(CEL_VARIABLES))
                except CelError as exc:
                    line, column = _cel_place(marks, ("rules", index, "when"), exc)
                    problems.append(Problem(name, line, column, f"condition does not compile: {exc.message}", field=f"rules[{index}].when",
                                            hint=f"CEL over {', '.join(sorted(CEL_VARIABLES))}; see docs/policy.md"))
                    continue
            compiled = CompiledRule(rule, file=name, index=index, scopes=file_scopes, when=when, groups=groups)
            compiled.line, compiled.column = locate(marks, ("rules", index))  # type: ignore[attr-defined]
            _check_rule(name, compiled, marks, risks, bool(default_approvers), problems)
            rules.append(compiled)
        for limit in doc.limits:
            limits.append(CompiledLimit(
                limit=limit, file=name, tools=Patterns(limit.tools),
                namespaces=Patterns(limit.namespaces) if limit.namespaces else None,
                actor_names=None if (not limit.actors or "*" in limit.actors) else frozenset(expand_actors(limit.actors, groups)),
                cluster_groups=cluster_groups_of(limit.actors),
            ))

    if not scopes:
        scopes.append(FileScope("<builtin>", Scope()))
        if parsed:
            warnings.append(Problem(parsed[0][0], 1, 1, "no file declares a scope, so every namespace is governed",
                                    hint="add scope: {exclude_namespaces: [kube-system, kube-public]}", severity="warning"))
    mode = "dry-run" if "dry-run" in modes.values() else "enforce"
    if len(set(modes.values())) > 1:
        warnings.append(Problem(next(n for n, m in modes.items() if m == "dry-run"), None, None,
                                f"files disagree on mode ({', '.join(f'{n}: {m}' for n, m in modes.items())}); dry-run wins",
                                hint="set the same mode in every file", field="mode", severity="warning"))
    if len(set(ttls)) > 1:
        warnings.append(Problem(parsed[0][0], None, None, "files set different approval_ttl values; the shortest is used", field="approval_ttl", severity="warning"))
    if len({caps for _, caps in spend}) > 1:
        warnings.append(Problem(spend[1][0], None, None, "files set different spend_caps; the smallest value of each is used",
                                field="spend_caps", severity="warning"))
    if len(set(confirm_ttls)) > 1:
        warnings.append(Problem(parsed[0][0], None, None, "files set different confirmation_ttl values; the shortest is used",
                                field="confirmation_ttl", severity="warning"))
    problems.extend(warnings)
    if not parsed:
        return None
    return Policy(
        files=tuple(n for n, _, _ in parsed), scopes=tuple(scopes), groups=groups, intents=tuple(intents),
        intent_places=tuple(places), opt_ins=tuple(opt_ins),
        rules=tuple(rules), limits=tuple(limits), mode=mode, approval_ttl=min(ttls) if ttls else DEFAULT_TTL,
        confirmation_ttl=min(confirm_ttls) if confirm_ttls else DEFAULT_CONFIRMATION_TTL,
        max_workloads_per_run=min(caps) if caps else None, default_approvers=tuple(default_approvers),
        tool_risks=risks, warnings=tuple(warnings), spend_caps=merge_spend_caps([caps for _, caps in spend]),
    )


def _zero_caps(name: str, caps: SpendCaps, marks: Marks) -> list[Problem]:
    """A cap of 0 is allowed (no model at all) but is more often a slip: say what it does."""
    out = []
    for scope in ("daemon", "per_actor"):
        cap = getattr(caps, scope)
        for unit in ("calls", "tokens"):
            if cap is not None and getattr(cap, unit) == 0:
                line, column = locate(marks, ("spend_caps", scope, unit))
                who = "the daemon never asks" if scope == "daemon" else "people chatting never ask"
                out.append(Problem(name, line, column, f"a cap of 0 {unit}: {who} the model "
                                   "(findings are planned offline, free-form chat gets no answer)",
                                   hint="remove the cap, or set a daily amount", field=f"spend_caps.{scope}.{unit}",
                                   severity="warning"))
    return out


def merge_spend_caps(all_caps: list[SpendCaps]) -> SpendCaps | None:
    """One set of caps from every file's: for each scope and unit the smallest value set anywhere (files only narrow)."""
    if not all_caps:
        return None

    def smallest(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    merged: dict[str, SpendCap | None] = {}
    for scope in ("daemon", "per_actor"):
        caps = [c for c in (getattr(doc, scope) for doc in all_caps) if c is not None]
        merged[scope] = SpendCap(calls=smallest([c.calls for c in caps]), tokens=smallest([c.tokens for c in caps])) \
            if caps else None
    return SpendCaps(**merged)
_INTENT_FIELDS = (("",), ("replicas",), ("replicas", "min"), ("replicas", "max"), ("idle",), ("wake",),
                  ("wake", "warm_replicas"), ("protected",), ("max_wake",))


def _intent_places(name: str, marks: Marks, index: int) -> dict[str, str]:
    """field path of one intent ("" for the intent itself) -> "file:line", for the fields the file writes."""
    found = {}
    for path in _INTENT_FIELDS:
        loc = ("intents", index) + tuple(p for p in path if p)
        line, _ = locate(marks, loc)
        if line is not None:
            found[".".join(p for p in path if p)] = f"{name}:{line}"
    return found


def _check_groups_known(name: str, doc: PolicyFile, marks: Marks, groups: dict[str, Any], problems: list[Problem]) -> None:
    places: list[tuple[tuple[Any, ...], str]] = [(("default_approvers", i), a) for i, a in enumerate(doc.default_approvers)]
    for r, rule in enumerate(doc.rules):
        places += [(("rules", r, "actors", i), a) for i, a in enumerate(rule.actors)]
        places += [(("rules", r, "approvers", i), a) for i, a in enumerate(rule.approvers)]
    for r, limit in enumerate(doc.limits):
        places += [(("limits", r, "actors", i), a) for i, a in enumerate(limit.actors)]
    for loc, actor in places:
        if actor.startswith("group:") and actor[6:] not in groups:
            line, column = locate(marks, loc)
            known = ", ".join(sorted(groups)) or "none defined"
            problems.append(Problem(name, line, column, f"unknown group {actor[6:]!r}", field=_field(loc),
                                    hint=f"define it under groups: (known: {known})"))


def _check_rule(name: str, rule: CompiledRule, marks: Marks, risks: dict[str, str], has_defaults: bool, problems: list[Problem]) -> None:
    spec = rule.rule
    loc = ("rules", rule.index)
    if spec.effect == "allow" and (rule.risks is None or "architectural" in rule.risks):
        architectural = {t for t, r in risks.items() if r == "architectural"}
        hit = sorted(set(tools_matched(spec.tools, risks)) & architectural)
        if (rule.risks is not None and "architectural" in rule.risks) or hit:
            line, column = locate(marks, loc + ("effect",))
            what = ", ".join(hit) if hit else "architectural tools"
            problems.append(Problem(name, line, column, f"rule {spec.name!r} would allow {what}; architectural changes always need a person",
                                    field=f"rules[{rule.index}].effect",
                                    hint="use effect: require_approval with approvers, or narrow the rule with risk: [read, write]"))
    if spec.effect == "require_approval" and not spec.approvers and not has_defaults:
        line, column = locate(marks, loc + ("effect",))
        problems.append(Problem(name, line, column, f"rule {spec.name!r} sends calls to a person but names no approvers",
                                field=f"rules[{rule.index}].approvers", hint="add approvers: [group:platform-leads] (or default_approvers at the top level)"))


def _cel_place(marks: Marks, loc: tuple[Any, ...], exc: CelError) -> tuple[int | None, int | None]:
    line, column = locate(marks, loc)
    if line is None or exc.line is None:
        return line, column
    if exc.line == 1:
        return line, (column or 1) + (exc.column or 1) - 1
    return line + exc.line - 1, exc.column


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
