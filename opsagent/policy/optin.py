"""Where a policy file lets workloads declare their own intent through annotations, and inside which ceilings.

Authority comes from the policy files and from authenticated people. A
workload's `opsagent.dev/*` annotations are written by whoever can edit the
Deployment, so they are obeyed as an intent only where a policy file says so:

    annotation_intents:
      - namespaces: [team-*]      # names or globs
        max_replicas: 4           # no annotation intent may let the agent run more
        max_gpus: 8               # optional: replicas x GPUs per replica stays under this
        min_idle_after: 15m       # an idle window shorter than this is raised to it

Elsewhere the annotations may only narrow the policy (see
`opsagent.policy.resolve`). `AnnotationOptIn` is the file format; `OptIn`
is one entry as loaded, with the file and line it came from so that
`policy explain` can name it. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opsagent.clock import parse_duration
from opsagent.policy.toolrisk import matches_any

_NAMESPACE = r"^[a-z0-9*?\[\]]([-a-z0-9*?\[\]]*[a-z0-9*?\[\]])?$"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30m, 2h or 90s")


class AnnotationOptIn(BaseModel):
    """One `annotation_intents:` entry of a policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespaces: tuple[str, ...] = Field(min_length=1, description="namespaces (names or globs) whose workloads' annotation intents are obeyed")
    max_replicas: int = Field(ge=0, le=10_000, description="ceiling on replicas.max, min-replicas and warm-replicas an annotation may declare")
    max_gpus: int | None = Field(default=None, ge=0, description="ceiling on replicas x GPUs per replica")
    min_idle_after: timedelta = Field(description="floor on the idle window an annotation may declare, e.g. 15m")

    @field_validator("namespaces", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("namespaces")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.match(_NAMESPACE, item):
                raise ValueError(f"{item!r} is not a namespace name or glob (lower-case letters, digits, -, and * ? [ ])")
        return value

    _idle = field_validator("min_idle_after", mode="before")(_duration)

    @field_validator("min_idle_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("min_idle_after must be a positive duration such as 15m")
        return value


@dataclass(frozen=True)
class OptIn:
    """An `annotation_intents:` entry as loaded: the spec and where it is written."""

    spec: AnnotationOptIn
    file: str
    line: int | None = None

    @property
    def place(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def covers(self, namespace: str) -> bool:
        return matches_any(namespace, self.spec.namespaces)

    def replica_ceiling(self, gpus_per_replica: int) -> tuple[int, str]:
        """The most replicas an annotation intent may reach here, and which ceiling sets it."""
        ceiling, why = self.spec.max_replicas, f"max_replicas {self.spec.max_replicas}"
        if self.spec.max_gpus is not None and gpus_per_replica > 0:
            by_gpus = self.spec.max_gpus // gpus_per_replica
            if by_gpus < ceiling:
                ceiling, why = by_gpus, f"max_gpus {self.spec.max_gpus} at {gpus_per_replica} GPU(s) per replica"
        return ceiling, why


def opt_in_for(opt_ins: tuple[OptIn, ...], namespace: str) -> OptIn | None:
    """The first opt-in (file order) that covers `namespace`, or None."""
    for opt_in in opt_ins:
        if opt_in.covers(namespace):
            return opt_in
    return None
