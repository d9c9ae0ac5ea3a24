"""A short plain-text summary of a policy: what the agent may do alone, what needs a person, what is denied.

The agent's system prompt includes it, so it stays compact (a few lines per
effect, no YAML). Pure: formats a loaded Policy, reads nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsagent.policy.policy import CompiledRule, Policy

_HEADINGS = (
    ("allow", "You may do alone"),
    ("require_approval", "Needs a person's approval"),
    ("deny", "Denied"),
)


def describe_rule(rule: "CompiledRule") -> str:
    spec = rule.rule
    parts = [", ".join(spec.tools) if spec.tools != ("*",) else "any tool"]
    if spec.risk:
        parts.append(f"({'/'.join(spec.risk)})")
    if spec.namespaces:
        parts.append(f"in {', '.join(spec.namespaces)}")
    if spec.labels:
        parts.append("labelled " + ", ".join(f"{k}={v}" for k, v in spec.labels.items()))
    if spec.actors != ("*",):
        parts.append(f"by {', '.join(spec.actors)}")
    if spec.channels:
        parts.append(f"via {', '.join(spec.channels)}")
    text = " ".join(parts)
    if spec.when and not spec.reason:
        text += f" when {' '.join(spec.when.split())}"
    elif spec.when:
        text += ", when its condition holds"
    if spec.effect == "require_approval":
        approvers = spec.approvers or ()
        if approvers:
            text += f" [approvers: {', '.join(approvers)}]"
    if spec.reason:
        text += f" - {spec.reason}"
    return text


def summarize(policy: "Policy") -> str:
    lines = [f"Policy mode: {policy.mode}" + (" (actions run as dry-run; nothing changes)" if policy.mode == "dry-run" else "")]
    scope_parts = []
    for scope in policy.scopes:
        text = ", ".join(scope.scope.namespaces)
        if scope.scope.exclude_namespaces:
            text += f" except {', '.join(scope.scope.exclude_namespaces)}"
        scope_parts.append(text)
    lines.append(f"In scope: namespaces {'; '.join(scope_parts)}. Anything else is denied.")
    for effect, heading in _HEADINGS:
        rules = [r for r in policy.rules if r.effect == effect]
        if rules:
            lines.append(f"{heading}:")
            lines.extend(f"- {describe_rule(r)}" for r in rules)
    lines.append("Architectural tools (resources, GPU placement, replica bounds, create/delete workloads, policy) always need a person.")
    lines.append("Anything no rule allows is denied.")
    if policy.limits:
        lines.append("Limits: " + "; ".join(
            f"{lim.limit.name}: {lim.limit.max} x {', '.join(lim.limit.tools)} per {int(lim.limit.per.total_seconds() // 60)}m"
            + ("" if lim.limit.by == "global" else f" per {lim.limit.by}") for lim in policy.limits))
    if policy.opt_ins:
        lines.append("Workload annotation intents are obeyed only in: " + "; ".join(
            f"{', '.join(o.spec.namespaces)} (at most {o.spec.max_replicas} replicas"
            + (f", {o.spec.max_gpus} GPUs" if o.spec.max_gpus is not None else "") + ")" for o in policy.opt_ins)
            + ". Elsewhere annotations only narrow the policy.")
    else:
        lines.append("Workload annotations never widen the policy; they may only narrow it.")
    if policy.max_workloads_per_run:
        lines.append(f"At most {policy.max_workloads_per_run} workloads changed per run.")
    return "\n".join(lines)
