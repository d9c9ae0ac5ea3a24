"""The decision: may this tool call run alone, must a person approve it, or is it denied?

`decide()` is a pure function of (policy, call, risk, target, snapshot, now,
counts). Order of judgement:
1. a target outside every file's scope is denied ("out-of-scope");
2. the first matching rule (file order, then list order) gives the effect;
   no matching rule denies ("default-deny"). A condition that cannot be
   evaluated (missing field, type error) never makes an allow rule match,
   and always makes a deny or require_approval rule match (fail closed);
3. an architectural tool is never allowed: an allow becomes require_approval;
4. a replica count outside the target's intent bounds is denied, naming the
   intent (`bounds.py`: the daemon would reverse it);
5. an allow that would exceed a rate limit or the blast radius is denied;
   the deny says when the limit allows the call again (`retry_at`).
It never raises for a call it does not understand; it never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opsagent.clock import format_duration
from opsagent.model import Decision, RuleRef, Snapshot, ToolCall
from opsagent.policy.bounds import outside_bounds
from opsagent.policy.facts import Facts
from opsagent.policy.limits import NO_COUNTS, Counts
from opsagent.policy.policy import CompiledRule, Policy

BUILTIN = "<builtin>"
DEFAULT_DENY = RuleRef(file=BUILTIN, name="default-deny")
OUT_OF_SCOPE = RuleRef(file=BUILTIN, name="out-of-scope")
ARCHITECTURAL = RuleRef(file=BUILTIN, name="architectural-needs-approval")
BLAST_RADIUS = RuleRef(file=BUILTIN, name="max-workloads-per-run")


_VERB = {"allow": "allows it", "deny": "denies it", "require_approval": "sends it to a person"}


@dataclass(frozen=True)
class Verdict:
    """A decision plus how it was reached (the matched rule, if any); used by explain()."""

    decision: Decision
    facts: Facts
    rule: CompiledRule | None
    checked: tuple[tuple[CompiledRule, str], ...] = ()


def decide(
    policy: Policy,
    *,
    call: ToolCall,
    risk: str,
    target: Any,
    snapshot: Snapshot | None,
    now: datetime,
    counts: Counts = NO_COUNTS,
) -> Decision:
    """The policy's verdict on `call`. `target` is anything with .namespace/.workload/.node (or None)."""
    return judge(policy, call=call, risk=risk, target=target, snapshot=snapshot, now=now, counts=counts).decision


def judge(
    policy: Policy,
    *,
    call: ToolCall,
    risk: str,
    target: Any,
    snapshot: Snapshot | None,
    now: datetime,
    counts: Counts = NO_COUNTS,
    trace: bool = False,
) -> Verdict:
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    elif now.utcoffset():
        now = now.astimezone(timezone.utc)
    risk = policy.risk_of(call.tool, risk)
    facts = Facts(policy, call=call, risk=risk, target=target, snapshot=snapshot, now=now)
    dry_run = policy.mode == "dry-run"

    if not _in_scope(policy, facts):
        where = facts.workload_key or facts.namespace
        decision = Decision(effect="deny", rule=OUT_OF_SCOPE, reason=f"{where} is outside the scope of every policy file", dry_run=dry_run)
        return Verdict(decision, facts, None)

    checked: list[tuple[CompiledRule, str]] = []
    matched: CompiledRule | None = None
    rules = policy.rules if trace else policy.candidates(call.tool, risk)
    for rule in rules:
        why = rule.mismatch(facts)
        if why is None:
            matched = rule
            break
        if trace:
            checked.append((rule, why))

    if matched is None:
        decision = Decision(
            effect="deny", rule=DEFAULT_DENY, dry_run=dry_run,
            reason=f"no rule allows {call.tool} by {call.actor}" + (f" on {facts.workload_key or facts.namespace}" if facts.namespace else ""),
        )
        return Verdict(decision, facts, None, tuple(checked))

    decision = _effect(policy, matched, facts, dry_run)
    if decision.effect != "deny":
        decision = outside_bounds(policy, facts, dry_run=dry_run) or decision
    if decision.effect == "allow":
        decision = _limits(policy, facts, counts, dry_run) or _blast_radius(policy, facts, counts, dry_run) or decision
    return Verdict(decision, facts, matched, tuple(checked))


def _in_scope(policy: Policy, facts: Facts) -> bool:
    names_workload = facts.ref is not None
    for scope in policy.scopes:
        if scope.covers(facts.namespace, facts.workload if scope.scope.labels else None, names_workload):
            return True
    return False


def _effect(policy: Policy, rule: CompiledRule, facts: Facts, dry_run: bool) -> Decision:
    reason = rule.rule.reason or f"rule {rule.rule.name} {_VERB[rule.effect]}"
    if facts.condition_error:
        reason += f" (its condition could not be evaluated: {facts.condition_error[:200]}; applied to be safe)"
    confirm = rule.rule.confirm and facts.risk != "read"  # a read never waits for anyone
    if rule.effect == "allow" and facts.risk == "architectural":
        return Decision(
            effect="require_approval", rule=rule.ref, dry_run=dry_run, confirm=confirm,
            reason=f"architectural tools always need a person (rule {rule.rule.name} would allow it): {reason}",
            approvers=policy.default_approvers, expires_after_seconds=policy.approval_ttl_seconds,
        )
    if rule.effect == "require_approval":
        expires = rule.rule.expires_after
        return Decision(
            effect="require_approval", rule=rule.ref, reason=reason, dry_run=dry_run, confirm=confirm,
            approvers=rule.rule.approvers or policy.default_approvers,
            expires_after_seconds=int(expires.total_seconds()) if expires is not None else policy.approval_ttl_seconds,
        )
    return Decision(effect=rule.effect, rule=rule.ref, reason=reason, dry_run=dry_run, confirm=confirm and rule.effect == "allow")


def _limits(policy: Policy, facts: Facts, counts: Counts, dry_run: bool) -> Decision | None:
    call = facts.call
    for limit in policy.limits_for(call.tool):
        if not limit.applies(call.tool, facts.namespace, call.actor, call.actor_groups):
            continue
        spec = limit.limit
        namespace = facts.namespace if spec.by == "namespace" else None
        actor = call.actor if spec.by == "actor" else None
        since = facts.now - spec.per
        used = counts.count(limit_name=spec.name, tools=spec.tools, namespace=namespace, actor=actor, since=since)
        if used >= spec.max:
            scope = {"namespace": f" in namespace {namespace}", "actor": f" by {actor}", "global": ""}[spec.by]
            retry_at = _frees_up(counts.times(limit_name=spec.name, tools=spec.tools, namespace=namespace,
                                              actor=actor, since=since), used=used, spec=spec, now=facts.now)
            return Decision(
                effect="deny", rule=limit.ref, dry_run=dry_run, retry_at=retry_at,
                reason=f"rate limit {spec.name}: {used} of at most {spec.max} calls per {_span(spec.per.total_seconds())}{scope} "
                       f"already made" + (f"; allowed again at {retry_at.isoformat()}" if retry_at else ""),
            )
    return None


def _frees_up(times: list[datetime] | None, *, used: int, spec: Any, now: datetime) -> datetime | None:
    """When enough counted calls have left the window for one more: the (used - max + 1)th oldest + per.

    Without the times (a Counts that cannot list them) it is `now + per`, which is never too early.
    A limit of zero never frees up (None: the deny is final).
    """
    if spec.max <= 0:
        return None
    index = used - spec.max
    if times and 0 <= index < len(times):
        return max(now, sorted(times)[index] + spec.per)
    return now + spec.per


def _blast_radius(policy: Policy, facts: Facts, counts: Counts, dry_run: bool) -> Decision | None:
    cap = policy.max_workloads_per_run
    if cap is None or facts.risk == "read" or facts.ref is None:
        return None
    touched = counts.run_workloads()
    key = str(facts.ref)
    if key in touched or len(touched) < cap:
        return None
    return Decision(
        effect="deny", rule=BLAST_RADIUS, dry_run=dry_run,
        reason=f"blast radius: this run already changed {len(touched)} workloads (max {cap}); {key} would be one more",
    )


def _span(seconds: float) -> str:
    return format_duration(seconds)
