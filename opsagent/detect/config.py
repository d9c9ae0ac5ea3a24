"""What a pod needs and cannot get: missing ConfigMaps and Secrets, Pending claims, quota refusals.

Three detectors, each a hand-over to a person (the fix is configuration, storage or
a quota, all decisions of people; no tool acts on them):

- `config_missing`: pods of a workload wait with `CreateContainerConfigError`, or
  cannot mount a volume (a `FailedMount` event), because a ConfigMap or Secret they
  reference does not exist or lacks a key. The kubelet's message names the object;
  the finding names it too, and says whether it exists now (then the kubelet's next
  retry starts the pod and no finding is raised). Existence is all that is known of a
  Secret: its contents are never read.
- `volume_pending`: a PersistentVolumeClaim stays Pending: its StorageClass does not
  exist, nothing provisions it, or no volume matches, as the PV controller's events
  say; or it has waited longer than `PENDING_GRACE` with no word.
- `quota_exceeded`: a ResourceQuota refused pods (`FailedCreate` events on a
  ReplicaSet, StatefulSet or Job, "exceeded quota: NAME, requested: ..., used: ...,
  limited: ...") in the last `QUOTA_WINDOW`.

Cluster text (pod messages, events) is parsed for object names and numbers only, and
shown as data: it can never make a finding that asks for a write.

Pure: no I/O and no clock; `now` is passed in.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from opsagent.detect.common import iso, make, minutes, short
from opsagent.model import Event, Finding, Pod, Snapshot

PENDING_GRACE = timedelta(minutes=5)
QUOTA_WINDOW = timedelta(minutes=15)

_NAME = r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?"
_NOT_FOUND = re.compile(rf'\b(configmap|secret) "({_NAME})" not found', re.IGNORECASE)
_NO_KEY = re.compile(rf"couldn't find key ([-._a-zA-Z0-9]{{1,253}}) in (ConfigMap|Secret) ({_NAME})/({_NAME})")
_KINDS = {"configmap": "ConfigMap", "secret": "Secret"}
_QUOTA = re.compile(r"exceeded quota: ([a-z0-9.-]{1,253}), requested: ([^,]{1,300}), used: ([^,]{1,300}), limited: ([^\n]{1,300})")
_SC_MISSING = re.compile(rf'storageclass\.storage\.k8s\.io "({_NAME})" not found')
_PROVISIONER = re.compile(r'external provisioner "([^"]{1,253})"')


def waits_for_claim(pod: Pod) -> bool:
    """A Pending pod the scheduler holds back for its PersistentVolumeClaim (unbound, or not found), not for GPUs."""
    return pod.phase == "Pending" and "persistentvolumeclaim" in (pod.message or "").lower()


def missing_config(text: str | None, namespace: str) -> list[dict[str, str]]:
    """The ConfigMaps and Secrets (and keys) a kubelet message says are missing, in the pod's `namespace`.

    A pod can only reference its own namespace's, so a message naming another namespace's object (an event
    anyone may write) names nothing: it cannot point the diagnosis, or a question of existence, elsewhere."""
    found = []
    for kind, name in _NOT_FOUND.findall(text or ""):
        found.append({"kind": _KINDS[kind.lower()], "namespace": namespace, "name": name})
    for key, kind, ns, name in _NO_KEY.findall(text or ""):
        if ns == namespace:
            found.append({"kind": kind, "namespace": ns, "name": name, "key": key})
    return found


def _pod_missing(snapshot: Snapshot, pod: Pod, mounts: dict[str, list[Event]]) -> list[dict[str, str]]:
    texts = [pod.message] if pod.reason == "CreateContainerConfigError" else []
    texts += [e.message for e in mounts.get(pod.key, ())]
    return [m for text in texts for m in missing_config(text, pod.namespace)]


def config_missing(snapshot: Snapshot, now: datetime) -> list[Finding]:
    mounts: dict[str, list[Event]] = {}
    for event in snapshot.events:
        if event.kind == "Pod" and event.reason == "FailedMount":
            mounts.setdefault(f"{event.namespace}/{event.name}", []).append(event)
    by_subject: dict[str, tuple[list[Pod], dict[str, dict[str, str]]]] = {}
    for pod in snapshot.pods:
        if pod.ready or pod.phase in ("Succeeded", "Failed"):
            continue
        missing = _pod_missing(snapshot, pod, mounts)
        if not missing:
            continue
        pods, objects = by_subject.setdefault(str(pod.workload) if pod.workload else pod.key, ([], {}))
        pods.append(pod)
        for item in missing:
            objects.setdefault(f"{item['kind']} {item['namespace']}/{item['name']}" + (f" key {item['key']}" if "key" in item else ""), item)
    found = []
    for subject, (pods, objects) in sorted(by_subject.items()):
        still: list[dict[str, Any]] = []
        for label, item in sorted(objects.items()):
            exists = snapshot.config_exists(item["kind"], item["namespace"], item["name"])
            if exists and "key" not in item:
                continue   # created since: the kubelet's next retry starts the pod
            still.append({**item, "exists": exists, "what": label})
        if not still:
            continue
        names = ", ".join(m["what"] + (" (exists, the key does not)" if m["exists"] else " (does not exist)") for m in still)
        found.append(make(
            "config_missing", subject, f"{len(pods)} pod(s) of {subject} cannot start: {names}", now,
            missing=still, namespace=pods[0].namespace, pods=sorted(p.key for p in pods), reason=short(pods[0].reason, 100),
            message=short(pods[0].message)))
    return found


def _claim_problem(events: list[Event]) -> tuple[str, Event | None]:
    for event in reversed(events):
        if _SC_MISSING.search(event.message):
            return "storage_class_missing", event
        if event.reason == "ExternalProvisioning":
            return "no_provisioner", event
        if event.reason in ("FailedBinding", "ProvisioningFailed"):
            return "no_volume" if event.reason == "FailedBinding" else "provisioning_failed", event
    return "pending", None


def volume_pending(snapshot: Snapshot, now: datetime) -> list[Finding]:
    events: dict[str, list[Event]] = {}
    for seen in snapshot.events:
        if seen.kind == "PersistentVolumeClaim":
            events.setdefault(f"{seen.namespace}/{seen.name}", []).append(seen)
    found = []
    for claim in snapshot.volume_claims:
        if claim.phase != "Pending":
            continue
        said = events.get(claim.key, [])
        problem, event = _claim_problem(said)
        waited = now - claim.created_at if claim.created_at is not None else None
        warned = any(e.type == "Warning" for e in said)
        if not warned and (waited is None or waited < PENDING_GRACE):
            continue   # provisioning takes a moment; say nothing yet
        if problem == "no_provisioner" and waited is not None and waited < PENDING_GRACE:
            continue
        waiting = [p.key for p in snapshot.pods if p.namespace == claim.namespace and waits_for_claim(p)]
        sc = _SC_MISSING.search(event.message) if event is not None else None
        provisioner = _PROVISIONER.search(event.message) if event is not None else None
        says = {"storage_class_missing": f"StorageClass {sc.group(1) if sc else claim.storage_class} does not exist",
                "no_provisioner": "no provisioner has created its volume"
                                  + (f" ({provisioner.group(1)} is not running?)" if provisioner else ""),
                "no_volume": "no PersistentVolume matches it and no StorageClass provisions one",
                "provisioning_failed": "provisioning failed",
                "pending": "it is still Pending"}[problem]
        found.append(make(
            "volume_pending", claim.key, f"PersistentVolumeClaim {claim.key} is Pending: {says}", now,
            claim=claim.key, namespace=claim.namespace, storage_class=claim.storage_class, problem=problem, requested=claim.requested,
            reason=event.reason if event is not None else None, message=short(event.message) if event else None,
            pending_minutes=minutes(waited) if waited is not None else None, pods=sorted(waiting)))
    return found


def _workload_of(snapshot: Snapshot, event: Event) -> str:
    """The workload a refused ReplicaSet (NAME-HASH) or StatefulSet belongs to, else the object itself."""
    if event.kind == "StatefulSet" and snapshot.workload(f"{event.namespace}/{event.name}") is not None:
        return f"{event.namespace}/{event.name}"
    if event.kind == "ReplicaSet" and "-" in event.name:
        owner = f"{event.namespace}/{event.name.rsplit('-', 1)[0]}"
        if snapshot.workload(owner) is not None:
            return owner
    return f"{event.namespace}/{event.name}"


def quota_exceeded(snapshot: Snapshot, now: datetime) -> list[Finding]:
    latest: dict[str, tuple[Event, re.Match[str]]] = {}
    for event in snapshot.events:
        if event.reason != "FailedCreate" or event.kind not in ("ReplicaSet", "StatefulSet", "Job"):
            continue
        if abs(now - event.time) > QUOTA_WINDOW:
            continue   # old, or dated far ahead (it would otherwise stay "recent" until that date)
        match = _QUOTA.search(event.message)
        if match is not None:
            latest[_workload_of(snapshot, event)] = (event, match)
    found = []
    for subject, (event, match) in sorted(latest.items()):
        quota = f"{event.namespace}/{match.group(1)}"
        found.append(make(
            "quota_exceeded", subject,
            f"ResourceQuota {quota} refuses new pods of {subject} (requested {match.group(2)}, used {match.group(3)}, "
            f"limited {match.group(4).strip()})", now,
            quota=quota, namespace=event.namespace, object=f"{event.kind} {event.namespace}/{event.name}", requested=match.group(2),
            used=match.group(3), limited=match.group(4).strip(), last_refused_at=iso(event.time),
            message=short(event.message, 400)))
    return found
