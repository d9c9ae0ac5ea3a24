"""Intents: the desired state operators declare per workload selector.

Part of the policy file schema (`intents:` list). Pure pydantic, no I/O.
Detectors read intents to find drift, idle GPUs, wake windows and failed
rollouts; tools read `wake.warm_replicas`. Durations are written as '30m',
'2h', '90s' and parsed here once.

A workload may also declare its own intent through `opsagent.dev/*`
annotations (read by `opsagent.policy.annotations`, validated here by
`intents_from_annotations`). Which intent applies, and how far annotations
may change it, is decided in one place, `opsagent.policy.resolve.intent_for`,
which every part uses (detectors, the GPU utilisation watch, the gate's CEL
`intent`): annotations narrow a policy intent and are obeyed on their own only
where a policy file opts in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opsagent.clock import parse_duration
from opsagent.model import GpuRequirement, Workload
from opsagent.policy.annotations import AnnotationError, annotation_fields, intent_annotations, refused
from opsagent.policy.cron import CronError, parse_cron, zone


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float, str)):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30m, 2h or 90s")


class Selector(Strict):
    """Which workloads something applies to. All given parts must match."""

    namespace: str | None = Field(default=None, description="exact namespace; '*' or empty for any in scope")
    names: tuple[str, ...] = Field(default=(), description="workload names; empty means any")
    labels: dict[str, str] = Field(default_factory=dict, description="labels that must all be present with these values")

    def matches(self, workload: Workload) -> bool:
        ref = workload.ref
        if self.namespace not in (None, "", "*") and ref.namespace != self.namespace:
            return False
        if self.names and ref.name not in self.names:
            return False
        return all(workload.labels.get(k) == v for k, v in self.labels.items())


class ReplicaBounds(Strict):
    """Replica bounds. With no `max`, the ceiling is the replicas the workload runs now (see resolve.py):
    going above it needs a person."""

    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0, description="ceiling; unset means the replicas it runs now")

    @model_validator(mode="after")
    def _ordered(self) -> "ReplicaBounds":
        if self.max is not None and self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) is above replicas.max ({self.max})")
        return self


class IdleRule(Strict):
    """Scale to zero when idle: no requests for `after`, or GPU busy under `gpu_util_below` for `after`."""

    after: timedelta = Field(description="how long without traffic before the workload counts as idle, e.g. 30m")
    gpu_util_below: float | None = Field(default=None, ge=0, le=100, description="also idle when GPU utilisation stays under this percent")

    _parse = field_validator("after", mode="before")(_duration)


class PrewarmWindow(Strict):
    """Keep warm from `cron` (minute hour day-of-month month day-of-week, read in `time_zone`) for `duration`."""

    cron: str = Field(description="5-field cron or a macro, e.g. '0 8 * * mon-fri' for weekdays 08:00, or '@daily'")
    duration: timedelta = Field(description="how long the window stays open, e.g. 10h")
    time_zone: str = Field(default="UTC", description="IANA time zone the cron is read in, e.g. Europe/Berlin (default UTC)")

    _parse = field_validator("duration", mode="before")(_duration)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse_cron(value)  # the zone cannot make a valid cron invalid; it is checked on its own field
        except CronError as exc:
            raise ValueError(f"cron {value!r}: {exc}" if not str(exc).startswith("cron ") else str(exc)) from None
        return value


class WakeRule(Strict):
    on_request: bool = Field(default=True, description="scale from zero when a request arrives")
    warm_replicas: int = Field(default=1, ge=1, description="replicas to wake to")
    timeout: timedelta = Field(default=timedelta(minutes=10), description="how long a wake may wait for ready")
    prewarm: tuple[PrewarmWindow, ...] = ()

    _parse = field_validator("timeout", mode="before")(_duration)


class PlacementRule(Strict):
    gpus: int | None = Field(default=None, ge=0, description="GPUs per replica")
    min_link_width: int | None = Field(default=None, ge=1, le=32, description="minimum PCIe link width, lanes (x16 = 16)")
    coherent: bool = Field(default=False, description="all GPUs of a replica on one switch group")

    def requirement(self) -> GpuRequirement:
        return GpuRequirement(min_link_width=self.min_link_width, coherent=self.coherent)


class RolloutRetry(Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: timedelta = Field(default=timedelta(minutes=2), description="wait before the first retry; doubles each time")
    then: Literal["rollback", "escalate"] = Field(default="rollback", description="after the last attempt: undo to the last good revision, or hand to a person")

    _parse = field_validator("backoff", mode="before")(_duration)


class Intent(Strict):
    name: str = Field(min_length=1)
    selector: Selector
    replicas: ReplicaBounds | None = None
    idle: IdleRule | None = None
    wake: WakeRule | None = None
    placement: PlacementRule | None = None
    rollout: RolloutRetry | None = None
    protected: bool = Field(default=False, description="never scale to zero or restart automatically")
    max_wake: timedelta | None = Field(default=None, description="longest a person may keep it up with a time-boxed "
                                                                 "wake (`opsagent wake NS/NAME --for 2h`), e.g. 4h")

    _parse_max_wake = field_validator("max_wake", mode="before")(_duration)

    @field_validator("max_wake")
    @classmethod
    def _positive_wake(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("max_wake must be longer than zero, e.g. 4h")
        return value


def intents_from_annotations(workload: Workload) -> Intent | None:
    """The intent a workload's `opsagent.dev/*` annotations declare, or None when it has none.

    Raises AnnotationError naming the workload, the annotation and its value
    when a value cannot be read or the values do not form a valid intent.
    """
    pairs = intent_annotations(workload)
    if not pairs:
        return None
    key = (workload.key, pairs)
    found = _ANNOTATION_INTENTS.get(key)
    if found is None:
        found = _annotation_intent(workload)
        if len(_ANNOTATION_INTENTS) >= _CACHE_MAX:
            _ANNOTATION_INTENTS.clear()
        _ANNOTATION_INTENTS[key] = found
    if isinstance(found, AnnotationError):
        raise found
    return found


def annotation_problem(workload: Workload) -> str | None:
    """What is wrong with the workload's intent annotations, or None when they are fine (or absent)."""
    try:
        intents_from_annotations(workload)
    except AnnotationError as exc:
        return str(exc)
    return None


_CACHE_MAX = 4096
# (workload key, its intent annotations) -> the Intent, or the error they give; annotations change rarely.
_ANNOTATION_INTENTS: dict[tuple[str, tuple[tuple[str, str], ...]], "Intent | AnnotationError"] = {}


def _annotation_intent(workload: Workload) -> Intent | AnnotationError:
    try:
        data = annotation_fields(workload)
        return Intent.model_validate(data)
    except AnnotationError as exc:
        return exc
    except ValidationError as exc:
        first = exc.errors()[0]
        return refused(workload, tuple(first["loc"]), first["msg"].removeprefix("Value error, "))
