"""The playbook file format: pydantic models, strict about unknown fields.

A file holds `playbooks:`, a list of playbooks. Each answers one finding kind
(`on`), optionally only when a CEL condition holds (`when`), and gives the LLM
planner `guidance`, the offline planner `steps`, a `verify` condition over the
re-observed state and a `retry` budget. Compiled CEL lives in private
attributes, set by the loader. No I/O here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from opsagent.clock import parse_duration
from opsagent.model import FindingKind
from opsagent.playbooks.template import TemplateError, check

WHEN_VARIABLES = frozenset({"finding", "target"})
VERIFY_VARIABLES = frozenset({"finding", "target", "finding_open"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(Strict):
    """One tool call for the offline planner. Argument values may hold `{{ lookups }}`."""

    tool: str = Field(min_length=1, description="tool name from the tool registry")
    args: dict[str, Any] = Field(default_factory=dict)
    for_each: str | None = Field(default=None, description="a list to repeat the step over, e.g. details.idle_holders; each element is `item`")
    note: str | None = Field(default=None, description="why this step, for people reading the plan")

    @field_validator("args")
    @classmethod
    def _templates(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("for_each")
    @classmethod
    def _list_path(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check("{{ " + value + " }}", roots=frozenset({"finding", "target", "details"}))
            except TemplateError as exc:
                raise ValueError(str(exc)) from None
        return value


class Retry(Strict):
    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff: timedelta = Field(default=timedelta(minutes=5), description="wait between attempts, e.g. 2m")

    @field_validator("backoff", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, timedelta):
            return value
        if isinstance(value, (int, float, str)):
            return parse_duration(value)
        raise ValueError("expected a duration such as 30s, 2m or 1h")


class Playbook(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="unique, lower-case with dashes")
    on: FindingKind
    when: str | None = Field(default=None, description="CEL over `finding` and `target`; absent means always")
    guidance: str = Field(min_length=1, description="for the LLM planner: what to check, what to do, what never to do")
    steps: tuple[Step, ...] = ()
    verify: str | None = Field(default=None, description="CEL over `target` (re-observed), `finding_open` and `finding`")
    retry: Retry = Retry()
    wait: bool = Field(default=False, description="nothing to do yet: the finding stays open and no run starts")

    _when: Any = PrivateAttr(default=None)
    _verify: Any = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="<memory>")
    _file: str = PrivateAttr(default="<memory>")
    _index: int = PrivateAttr(default=0)

    @model_validator(mode="after")
    def _wait_has_no_steps(self) -> "Playbook":
        if self.wait and self.steps:
            raise ValueError("a `wait: true` playbook starts no run, so it cannot have `steps`")
        return self

    @property
    def source(self) -> str:
        """Where it was written: 'playbooks/idle-gpu.yaml:12'."""
        return self._source


class PlaybookFile(Strict):
    playbooks: tuple[Playbook, ...]

    @field_validator("playbooks", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if value in (None, [], ()):
            raise ValueError("a playbook file needs at least one playbook under `playbooks:`")
        return value
