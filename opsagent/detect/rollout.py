"""Failed rollouts and crash loops: the `rollout_failed` and `crashloop` detectors.

`rollout_failed`: the rollout's progress deadline was exceeded (status
failed), or pods of the new revision sit in ImagePullBackOff, ErrImagePull or
CrashLoopBackOff while it progresses. Details carry the retry plan from the
intent (bounded attempts with doubling backoff, then one rollback or escalate;
one attempt when the intent declares no rollout settings)
and the attempts so far from the caller's history. After the rollback, if the
finding is still open, the plan is to escalate: never a second rollback.
When the new revision's pods are not failing but cannot be placed at all
(Pending, Unschedulable: a surge pod on a full GPU node), a restart only makes
the same pod wait again, so the plan skips the retries.

An image pull whose cause the runtime names (not found, unauthorized) is
`image_pull_failed`'s (opsagent/detect/images.py), not this detector's.

`crashloop`: pods in CrashLoopBackOff on the revision of a complete rollout
(so not a rollout problem), with their restart counts.

Pure: no I/O and no clock; `now` and `history` are passed in.
"""

from __future__ import annotations

from datetime import datetime

from opsagent.detect import memory
from opsagent.detect.common import History, Intents, intent_of, iso, make, short
from opsagent.detect.images import claims, last_good_revision
from opsagent.detect.incident import (
    incident_attempts, rejected_tools, rejection_rows, release_started, revision_started, tools_done)
from opsagent.model import Finding, Pod, Snapshot
from opsagent.policy.intents import RolloutRetry

BAD_POD_REASONS = ("ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff")
UNDECLARED_RETRY = RolloutRetry(max_attempts=1)


def rollout_failed(snapshot: Snapshot, intents: Intents, now: datetime,
                   history: History | None = None) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        rollout = workload.rollout
        revision = rollout.revision or workload.revision
        bad = sorted(
            (p for p in snapshot.pods_of(workload.ref) if p.revision == revision and p.reason in BAD_POD_REASONS),
            key=lambda p: p.name,
        )
        unplaced = sorted(p.name for p in snapshot.pods_of(workload.ref)
                          if p.revision == revision and p.phase == "Pending" and p.reason == "Unschedulable")
        if (bad or rollout.status == "failed") and claims(snapshot, workload):
            continue  # an image the registry has not, or refuses: image_pull_failed plans it (no restart helps)
        if memory.memory_fix_rolling(workload, history) and any(
                memory.cause(p) is not None for p in snapshot.pods_of(workload.ref) if p.revision == revision):
            continue  # a memory raise that was still too small: out_of_memory proposes the next one
        if rollout.status == "failed":
            reason = rollout.reason or "ProgressDeadlineExceeded"
        elif rollout.status == "progressing" and bad:
            reason = bad[0].reason or "PodFailure"
        else:
            continue
        intent = intent_of(intents, workload)
        # Nobody declared a retry budget: each restart then needs a person, so ask for one, then the rollback.
        retry = (intent.rollout if intent else None) or UNDECLARED_RETRY
        subject = workload.key
        started = release_started(workload, revision)
        seen = incident_attempts(history, f"rollout_failed:{subject}", started_at=started)
        refused = rejected_tools(seen)
        backoff = retry.backoff * (2 ** seen.attempts)
        anchor = seen.last_action_at or rollout.since  # the first retry waits `backoff` after the failure
        retry_at = anchor + backoff if anchor else None
        # A rollback made in this incident (the rolled-back revision fails too) is never retried or repeated.
        rolled_back = "undo_rollout" in tools_done(seen) or (not seen.actions and seen.attempts > retry.max_attempts)
        if rolled_back:
            next_action = "escalate"
        elif seen.attempts < retry.max_attempts and "restart_rollout" not in refused and not (unplaced and not bad):
            next_action = "restart_rollout"
        elif retry.then == "rollback" and "undo_rollout" not in refused:
            next_action = "undo_rollout"  # retries used up, refused, or unable to help: the next stage
        else:  # retries used up and the rollback (if any) made or refused: a person decides what next
            next_action = "escalate"
        protected = bool(intent and intent.protected)
        if protected:
            next_action = "escalate"
        findings.append(make(
            "rollout_failed", subject,
            f"{subject} rollout of revision {revision} failed ({reason}); "
            f"attempt {seen.attempts} of {retry.max_attempts}, then {retry.then}",
            now,
            revision=revision,
            image=workload.image,
            reason=reason,
            message=short(rollout.message or (bad[0].message if bad else None)),
            bad_pods=[p.name for p in bad],
            unschedulable_pods=unplaced,
            last_good_revision=last_good_revision(workload, revision),
            attempts=seen.attempts,
            last_action_at=iso(seen.last_action_at),
            max_attempts=retry.max_attempts,
            backoff_seconds=int(backoff.total_seconds()),
            retry_due=retry_at is None or now >= retry_at,
            retry_at=iso(retry_at),
            then=retry.then,
            next_action=next_action,
            protected=protected,
            intent=intent.name if intent else None,
            incident_started_at=iso(started),
            rejected=rejection_rows(seen),
        ))
    return findings


def explained(snapshot: Snapshot, pod: Pod) -> bool:
    """The restarts have a known cause a fresh pod would not fix: out of memory, or a probe that kills it
    (out_of_memory and not_ready report those, with the change a person should make)."""
    if memory.cause(pod) is not None:
        return True
    return any(e.reason == "Killing" and " probe, will be restarted" in e.message
               for e in snapshot.events_for(pod.namespace, pod.name))


def crashloop(snapshot: Snapshot, intents: Intents, now: datetime,
              history: History | None = None) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        if workload.rollout.status != "complete":
            continue  # pods crashing mid-rollout belong to rollout_failed
        looping = sorted(
            (p for p in snapshot.pods_of(workload.ref)
             if p.reason == "CrashLoopBackOff" and p.revision == workload.revision and not explained(snapshot, p)),
            key=lambda p: p.name,
        )
        if not looping:
            continue
        intent = intent_of(intents, workload)
        subject = workload.key
        seen = incident_attempts(history, f"crashloop:{subject}", started_at=revision_started(workload))
        if "delete_pod" in rejected_tools(seen):
            seen = seen.model_copy(update={"attempts": max(seen.attempts, 1)})  # a person said no: next stage
        worst = max(looping, key=lambda p: p.restarts)
        findings.append(make(
            "crashloop", subject,
            f"{len(looping)} pod(s) of {subject} in CrashLoopBackOff on revision {workload.revision} "
            f"(up to {worst.restarts} restarts)",
            now,
            revision=workload.revision,
            pods=[p.name for p in looping],
            worst_pod=worst.name,
            restarts=worst.restarts,
            restarts_total=sum(p.restarts for p in looping),
            message=short(worst.message),
            attempts=seen.attempts,
            last_action_at=iso(seen.last_action_at),
            protected=bool(intent and intent.protected),
            intent=intent.name if intent else None,
            incident_started_at=iso(revision_started(workload)),
            rejected=rejection_rows(seen),
        ))
    return findings


__all__ = ["BAD_POD_REASONS", "crashloop", "rollout_failed"]
