"""Why a call got its decision: the rule that decided, and why each earlier rule did not match.

`explain()` runs the same judgement as `decide()` but walks every rule in
order and keeps the reason each one did not match (tool, risk, namespace,
labels, actor, channel, or the condition's value or error). It also says
which intent applied, where each of its bounds came from (a policy file's
line, an annotation under an opt-in's ceiling, or the built-in "replicas it
runs now" ceiling), and which cluster text was reported and not obeyed.
`policy explain` prints it. Pure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from opsagent.clock import format_duration
from opsagent.model import Decision, Snapshot, ToolCall
from opsagent.policy.decide import judge
from opsagent.policy.limits import NO_COUNTS, Counts
from opsagent.policy.policy import Policy


class RuleCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    rule: str
    line: int | None = None
    effect: str
    why_not: str


class BoundSource(BaseModel):
    model_config = ConfigDict(frozen=True)

    bound: str  # "replicas.max = 2"
    source: str  # "policies/gpu-fleet.yaml:27 (intent render-ui-scales-to-zero)", an annotation under an opt-in, or the built-in ceiling


class Explanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Decision
    risk: str
    rule_line: int | None = None
    skipped: tuple[RuleCheck, ...] = ()
    target: dict[str, Any] = {}
    intent: dict[str, Any] = {}
    bounds: tuple[BoundSource, ...] = ()
    not_obeyed: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        d = self.decision
        out = [f"decision: {d.effect}" + (" (dry-run)" if d.dry_run else ""),
               f"rule:     {d.rule.file}" + (f":{self.rule_line}" if self.rule_line else "") + f" {d.rule.name}",
               f"reason:   {d.reason}"]
        if d.effect == "require_approval":
            expiry = "" if d.expires_after_seconds is None else f"; expires after {format_duration(d.expires_after_seconds)}"
            out.append(f"approvers: {', '.join(d.approvers) or '(none)'}{expiry}")
        if d.confirm:
            out.append("confirm:  in chat the person who asks confirms it first (confirm: true); unconfirmed, an allow is refused")
        other_tools = [c.rule for c in self.skipped if c.why_not.startswith("tool ")]
        relevant = [c for c in self.skipped if not c.why_not.startswith("tool ")]
        if self.skipped:
            out.append("earlier rules that did not match:")
            for check in relevant:
                place = f"{check.file}:{check.line}" if check.line else check.file
                out.append(f"  - {check.rule} ({check.effect}, {place}): {check.why_not}")
            if other_tools:
                out.append(f"  - {len(other_tools)} rule(s) for other tools: {', '.join(other_tools)}")
        if self.intent:
            out.append(f"intent:   {self.intent.get('name')}")
            out.extend(f"  - {b.bound}: {b.source}" for b in self.bounds)
        elif self.target:
            out.append("intent:   none applies")
        if self.not_obeyed:
            out.append("cluster text reported, not obeyed:")
            out.extend(f"  - {line}" for line in self.not_obeyed)
        return out


def explain(
    policy: Policy,
    *,
    call: ToolCall,
    risk: str,
    target: Any,
    snapshot: Snapshot | None,
    now: datetime,
    counts: Counts = NO_COUNTS,
) -> Explanation:
    verdict = judge(policy, call=call, risk=risk, target=target, snapshot=snapshot, now=now, counts=counts, trace=True)
    context = verdict.facts.context()
    workload = verdict.facts.workload
    pod = verdict.facts.pod
    if workload is None and pod is not None and pod.workload is not None and snapshot is not None:
        workload = snapshot.workload(pod.workload)
    resolved = policy.resolve(workload) if workload is not None else None
    skipped = tuple(
        RuleCheck(file=rule.file, rule=rule.rule.name, line=getattr(rule, "line", None), effect=rule.effect, why_not=why)
        for rule, why in verdict.checked
    )
    return Explanation(
        decision=verdict.decision,
        risk=verdict.facts.risk,
        rule_line=getattr(verdict.rule, "line", None) if verdict.rule is not None else None,
        skipped=skipped,
        target=context["target"],
        intent=context["intent"],
        bounds=tuple(BoundSource(bound=b, source=src) for b, src in resolved.sources) if resolved else (),
        not_obeyed=resolved.ignored if resolved else (),
    )
