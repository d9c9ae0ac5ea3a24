"""One owner per decision: a replica count outside the workload's declared intent is refused.

The intent's replica bounds are what the daemon reconciles to. A write that
puts a workload outside them (a person's "scale lang/translator to 10" with
bounds 1..5) would run, and the daemon would scale it back within the cycle:
two conflicting writes and nobody told. So the decision refuses it up front,
for every actor, naming the intent and the way to change it: a
`set_replica_bounds` proposal, which a platform lead approves.

Zero stays possible where the intent has an idle rule and is not protected
(zero is how such a workload sleeps), as the drift detector sees it. Inside
an open prewarm window, sleeping the workload or scaling it under the
window's warm replicas is refused the same way: the daemon would wake it
again in its next cycle.
Pure: no I/O; the caller passes the policy and the call's facts.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from opsagent.model import Decision, RuleRef
from opsagent.policy.cron import CronError, window_open

BUILTIN = "<builtin>"
OUTSIDE_INTENT = RuleRef(file=BUILTIN, name="outside-intent-bounds")
COUNT_TOOLS = ("scale_workload", "wake_workload")
_INT = TypeAdapter(int)


def _count(value: Any) -> int | None:
    """The replica count the tool will run with: its arguments are validated the same lax way ("10", 10.0)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return _INT.validate_python(value)
    except ValidationError:
        return None  # the tool's own validation refuses it


def _prewarm_until(intent: Any, now: Any) -> Any:
    """The end of an open prewarm window of `intent` at `now`, or None."""
    for window in getattr(getattr(intent, "wake", None), "prewarm", ()) or ():
        try:
            opened = window_open(window.cron, window.duration, now)
        except CronError:
            continue
        if opened is not None:
            return opened[1]
    return None


def _against_prewarm(policy: Any, facts: Any, *, dry_run: bool) -> Decision | None:
    tool = facts.call.tool
    if tool not in ("sleep_workload", "scale_workload") or facts.workload is None:
        return None
    intent = policy.intent_for(facts.workload)
    until = _prewarm_until(intent, facts.now) if intent is not None else None
    if until is None:
        return None
    warm = intent.wake.warm_replicas
    replicas = 0 if tool == "sleep_workload" else _count(facts.call.args.get("replicas"))
    if replicas is None or replicas >= warm:
        return None
    return Decision(
        effect="deny", rule=OUTSIDE_INTENT, dry_run=dry_run,
        reason=(f"{tool} to {replicas} goes under intent {intent.name}'s prewarm window, which keeps {warm} "
                f"replica(s) warm until {until.isoformat()}: the daemon would wake it again. Change the intent's "
                "prewarm windows instead (a platform lead approves it)"),
    )


def outside_bounds(policy: Any, facts: Any, *, dry_run: bool) -> Decision | None:
    """A deny when the call sets a replica count outside the target's intent bounds, else None."""
    if facts.call.tool not in COUNT_TOOLS:
        return _against_prewarm(policy, facts, dry_run=dry_run)
    replicas = _count(facts.call.args.get("replicas"))
    workload = facts.workload
    if replicas is None or workload is None:
        return None
    intent = policy.intent_for(workload)
    if intent is None or intent.replicas is None:
        return _against_prewarm(policy, facts, dry_run=dry_run)
    # No declared max: no bound to hold it to here (scaling above what runs needs a person, see the policy's
    # effective ceiling); only a declared range is one the daemon would reverse.
    low, high = intent.replicas.min, intent.replicas.max
    if (low <= replicas and (high is None or replicas <= high)) or (replicas == 0 and intent.idle is not None and not intent.protected):
        return _against_prewarm(policy, facts, dry_run=dry_run)
    return Decision(
        effect="deny", rule=OUTSIDE_INTENT, dry_run=dry_run,
        reason=(f"{facts.call.tool} to {replicas} is outside intent {intent.name}'s replica bounds {low}..{high if high is not None else ''}: "
                f"the daemon would reverse it. To change the bounds, propose set_replica_bounds "
                f"(a platform lead approves it)"),
    )


__all__ = ["OUTSIDE_INTENT", "outside_bounds"]
