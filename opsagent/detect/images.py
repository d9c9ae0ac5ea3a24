"""Images that cannot be pulled: the `image_pull_failed` detector.

A workload's pods of its current revision sit in `ErrImagePull` or
`ImagePullBackOff`, and what the runtime said about the pull (the pods'
waiting messages and their `Failed` events that name the image the template
asks for) says why:

- `not_found`: the registry has no such tag or digest. Restarting pulls the
  same missing image, so the plan is to roll back to the last image that ran
  (`rollback_image`: the newest earlier revision of the rollout history with
  another image), once per incident; never to an unpinned image, nor to one
  the history shows was already rolled back from (opsagent.model.images).
- `unauthorized`: the registry refuses the node's credentials (401, 403,
  "pull access denied"). Any image from that registry fails the same way, so
  no image change helps: a person fixes the pull secret.

A failure whose cause no message names is left to `rollout_failed`, whose
bounded retries are for the transient causes (a registry hiccup).

What the cluster's text may do here is narrow: choose between the two
diagnoses, or hand the workload to a person. It never supplies an argument:
the failing image is the template's, the rollback image comes from the
workload's own rollout history, and a tag is never invented (no `:latest`).

Pure: no I/O and no clock; `now` and `history` are passed in.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from opsagent.detect.common import History, Intents, intent_of, iso, make, short
from opsagent.detect.incident import incident_attempts, rejected_tools, rejection_rows, release_started, tools_done
from opsagent.model import Event, Finding, Pod, Snapshot, Workload
from opsagent.model.images import rollback_target

PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")
PullCause = Literal["not_found", "unauthorized", "unknown"]
# Checked first: "pull access denied, repository does not exist or may require authorization" is a refusal.
_UNAUTHORIZED = re.compile(r"unauthori[sz]ed|authorization failed|failed to authorize|access denied|denied:|forbidden|"
                           r"\b40[13]\b|authentication required|no basic auth credentials|may require authorization",
                           re.IGNORECASE)
_NOT_FOUND = re.compile(r"not found|manifest unknown|name unknown|no such manifest|\b404\b", re.IGNORECASE)


def last_good_revision(workload: Workload, revision: int) -> int | None:
    """The newest earlier revision that runs a different image than the failing one.

    Restarting a rollout makes a new revision of the same template, so "the
    revision before this one" is usually just an earlier retry of the same
    broken release. When every earlier revision runs the same image (the
    failure is elsewhere in the template), the newest earlier one is it.
    """
    older = sorted((r for r in workload.history if r.revision < revision), key=lambda r: r.revision, reverse=True)
    failing = next((r.image for r in workload.history if r.revision == revision), workload.image)
    other = [r.revision for r in older if r.image != failing]
    if other:
        return other[0]
    return older[0].revision if older else None


def pulling_failed(snapshot: Snapshot, workload: Workload) -> list[Pod]:
    """Pods of the workload's current revision whose image cannot be pulled, by name."""
    revision = workload.rollout.revision or workload.revision
    return sorted((p for p in snapshot.pods_of(workload.ref) if p.revision == revision and p.reason in PULL_REASONS),
                  key=lambda p: p.name)


def _pull_texts(snapshot: Snapshot, pods: list[Pod], image: str) -> list[str]:
    """What the runtime said about pulling `image`: waiting messages and Failed events that name it."""
    quoted = f'"{image}"'
    texts = [p.message for p in pods if p.message and quoted in p.message]
    for pod in pods:
        texts.extend(e.message for e in snapshot.events_for(pod.namespace, pod.name) if _about_pull(e, quoted))
    return texts


def _about_pull(event: Event, quoted: str) -> bool:
    return event.type == "Warning" and event.kind == "Pod" and event.reason in ("Failed", "ErrImagePull") and quoted in event.message


def pull_cause(texts: list[str]) -> PullCause:
    """Why the pull failed, from the runtime's words: a refusal anywhere wins (it narrows to a person)."""
    if any(_UNAUTHORIZED.search(t) for t in texts):
        return "unauthorized"
    if any(_NOT_FOUND.search(t) for t in texts):
        return "not_found"
    return "unknown"


def diagnosed(snapshot: Snapshot, workload: Workload) -> tuple[list[Pod], PullCause, list[str]]:
    """(failing pods, cause, the texts the cause was read from) for one workload."""
    pods = pulling_failed(snapshot, workload)
    if not pods:
        return [], "unknown", []
    texts = _pull_texts(snapshot, pods, workload.image)
    return pods, pull_cause(texts), texts


def claims(snapshot: Snapshot, workload: Workload) -> bool:
    """Whether `image_pull_failed` reports this workload (so `rollout_failed` leaves it alone)."""
    pods, cause, _ = diagnosed(snapshot, workload)
    return bool(pods) and cause != "unknown"


def image_pull_failed(snapshot: Snapshot, intents: Intents, now: datetime,
                      history: History | None = None) -> list[Finding]:
    findings = []
    for workload in snapshot.workloads:
        pods, cause, texts = diagnosed(snapshot, workload)
        if not pods or cause == "unknown":
            continue
        revision = workload.rollout.revision or workload.revision
        subject = workload.key
        started = release_started(workload, revision)
        seen = incident_attempts(history, f"image_pull_failed:{subject}", started_at=started)
        good = last_good_revision(workload, revision)
        target = rollback_target(workload)  # None (and why) when there is no earlier image it may go back to
        rollback = target.image
        intent = intent_of(intents, workload)
        protected = bool(intent and intent.protected)
        if cause == "unauthorized":
            next_action, why = "escalate", "the registry refuses the credentials: any image from it fails the same way"
        elif protected:
            next_action, why = "escalate", "the workload's intent is protected"
        elif rollback is None:
            next_action, why = "escalate", target.why
        elif {"set_image", "undo_rollout"} & tools_done(seen):
            next_action, why = "escalate", "a rollback was already made in this incident"
        elif "set_image" in rejected_tools(seen):
            next_action, why = "escalate", "a person refused the rollback"
        else:
            next_action, why = "set_image", f"the tag does not exist; {rollback} ran before"
        said = "was not found in the registry" if cause == "not_found" else "was refused by the registry (credentials)"
        findings.append(make(
            "image_pull_failed", subject,
            f"{subject} cannot pull {workload.image}: it {said}; " + (
                f"roll back to {rollback}" if next_action == "set_image" else f"a person decides ({why})"),
            now,
            image=workload.image,
            cause=cause,
            reason=pods[0].reason,
            message=short(texts[0] if texts else pods[0].message),
            revision=revision,
            pods=[p.name for p in pods],
            rollback_image=rollback,
            last_good_revision=good,
            next_action=next_action,
            why=why,
            attempts=seen.attempts,
            protected=protected,
            intent=intent.name if intent else None,
            incident_started_at=iso(started),
            rejected=rejection_rows(seen),
        ))
    return findings


__all__ = ["PULL_REASONS", "claims", "diagnosed", "image_pull_failed", "last_good_revision", "pull_cause", "pulling_failed"]
