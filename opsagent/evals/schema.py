"""Eval scenario files: a simulated cluster, a timeline of people and faults, and expectations.

An eval scenario is a simulator scenario (inline under `cluster:` or a file
under `cluster_file:`) plus what the simulator does not model: chat messages
from named actors, approvals people give, the confirmations they give to writes their own messages led to, a restart of the agent in the middle
of the run (or a crash right after a write), and scripted model outputs (including model faults) for the
scripted planner. Expectations say what a good agent leaves behind.

This module only parses and validates; it never runs anything. A bad file
raises `EvalScenarioError` naming the file, the line and the field.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opsagent.clock import parse_duration
from opsagent.cluster.sim import Scenario, ScenarioError, load_scenario
from opsagent.cluster.sim.scenario import parse_scenario
from opsagent.policy.cel import CelError, compile_expr
from opsagent.yamlfile import unreadable

END_STATE_VARS = {"workloads", "jobs", "nodes", "stats", "findings", "autoscalers"}


class EvalScenarioError(Exception):
    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = "") -> None:
        self.file, self.line, self.field = file, line, field
        where = f"{file}:{line}" if line else file
        super().__init__(": ".join(p for p in (where, f"field {field!r}" if field else "", message) if p))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatEvent(Strict):
    actor: str = Field(min_length=1)
    text: str = Field(min_length=1)
    channel: str = "slack"


class ApproveEvent(Strict):
    """A person answers every pending request for `tool` (any tool if omitted)."""

    actor: str = Field(min_length=1)
    tool: str | None = None
    reject: bool = False
    reason: str = "not now"


class ConfirmEvent(Strict):
    """The person who asked answers their own writes waiting for a yes, as `confirm N` would: those for `tool`
    whose arguments include `args` (a careful person confirms only what they asked for), or all of them."""

    actor: str = Field(min_length=1)
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict, description="only calls whose arguments include these")
    refuse: bool = False
    channel: str = "slack"


class EvalEvent(Strict):
    at: str = Field(description="HH:MM on the start day, +OFFSET from the start, or an ISO time")
    chat: ChatEvent | None = None
    approve: ApproveEvent | None = None
    confirm: ConfirmEvent | None = None
    restart: bool | Literal["after_write"] = Field(
        default=False, description="true: rebuild the runtime and agent over the same SQLite file now; 'after_write': "
                                   "stop the agent as a crash would, right after the next write reaches the cluster "
                                   "and before its result is recorded, then rebuild them")

    @model_validator(mode="after")
    def _one(self) -> "EvalEvent":
        given = [k for k in ("chat", "approve", "confirm") if getattr(self, k) is not None] + (["restart"] if self.restart else [])
        if len(given) != 1:
            raise ValueError("each event needs exactly one of chat, approve, confirm, restart")
        return self


class ScriptStep(Strict):
    """One scripted model answer: tool calls, a final text, or a fault."""

    calls: tuple[dict[str, Any], ...] = Field(default=(), description="[{tool: NAME, args: {...}}]")
    text: str | None = None
    fault: Literal["timeout", "malformed", "unknown_tool", "empty", "connection"] | None = None

    @model_validator(mode="after")
    def _one(self) -> "ScriptStep":
        if sum([bool(self.calls), self.text is not None, self.fault is not None]) != 1:
            raise ValueError("each script step needs exactly one of calls, text, fault")
        for call in self.calls:
            if not isinstance(call.get("tool"), str) or not isinstance(call.get("args", {}), dict):
                raise ValueError("each call needs tool: NAME and optional args: {...}")
        return self


class ActionSpec(Strict):
    tool: str = Field(description="tool name or glob, e.g. sleep_workload or set_*")
    target: str | None = Field(default=None, description="NS/NAME; NS/* for a namespace")
    min: int = Field(default=1, ge=1)


class ForbiddenSpec(Strict):
    tool: str = "*"
    target: str | None = None
    severity: Literal["low", "medium", "high", "critical"] = "high"
    why: str = ""


class ApprovalSpec(Strict):
    tool: str
    target: str | None = None


class Limits(Strict):
    max_actions: int | None = Field(default=None, ge=0, description="writes that reached the cluster")
    max_proposals: int | None = Field(default=None, ge=0, description="writes proposed in chat for the asker to confirm")
    max_llm_calls: int | None = Field(default=None, ge=0)


class Expectations(Strict):
    end_state: tuple[str, ...] = Field(default=(), description="CEL conditions over the final snapshot")
    must: tuple[ActionSpec, ...] = ()
    never: tuple[ForbiddenSpec, ...] = ()
    approvals: tuple[ApprovalSpec, ...] = Field(default=(), description="requested and still not executed at the end")
    limits: Limits = Limits()


class EvalScenario(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    tags: tuple[str, ...] = ()
    tests: tuple[Literal["detector", "gate", "planner", "chat", "approval", "recovery", "control"], ...] = Field(
        default=(), description="what the scenario proves; a `planner` scenario must fail when the planner does nothing")
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    needs: tuple[Literal["language"], ...] = ()
    known_issue: str | None = Field(default=None, description="a known product gap: reported, not required to pass")
    cluster: dict[str, Any] | None = None
    cluster_file: str | None = None
    duration: timedelta | None = None
    step: timedelta = Field(default=timedelta(minutes=5), description="one daemon cycle of simulated time")
    seed: int | None = None
    policies: str = "policies"
    playbooks: str = "playbooks"
    events: tuple[EvalEvent, ...] = ()
    script: tuple[ScriptStep, ...] = ()
    expect: Expectations = Expectations()

    _durations = field_validator("duration", "step", mode="before")(
        lambda v: parse_duration(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else v)

    @model_validator(mode="after")
    def _cluster(self) -> "EvalScenario":
        if (self.cluster is None) == (self.cluster_file is None):
            raise ValueError("give exactly one of cluster (inline) or cluster_file")
        for i, condition in enumerate(self.expect.end_state):
            try:
                compile_expr(condition, where=f"expect.end_state.{i}", variables=END_STATE_VARS)
            except CelError as exc:
                raise ValueError(f"@expect.end_state.{i}@{exc}") from None
        return self

    @property
    def needs_language(self) -> bool:
        return "language" in self.needs


class LoadedScenario(BaseModel):
    """A validated eval scenario with its simulator scenario resolved and paths made absolute."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    spec: EvalScenario
    sim: Scenario
    path: Path
    policies: Path
    playbooks: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def duration(self) -> timedelta:
        return self.spec.duration or self.sim.duration


def _line(root: Any, loc: tuple) -> int | None:
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            return None
    return node.start_mark.line + 1 if node is not None else None


def _stringify_at(data: Any) -> None:
    if isinstance(data, dict):
        for key, value in list(data.items()):
            if key == "at" and not isinstance(value, str) and value is not None:
                data[key] = f"{value // 60:02d}:{value % 60:02d}" if isinstance(value, int) else str(value)
            else:
                _stringify_at(value)
    elif isinstance(data, list):
        for item in data:
            _stringify_at(item)


def load_eval_scenario(path: str | Path, *, repo: Path | None = None) -> LoadedScenario:
    """Load one eval scenario file (YAML). Relative `policies`/`playbooks` resolve against `repo`, else the nearest
    folder above the file that has them (the repository root for evals/scenarios)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)   # the node tree (for line numbers) is composed only for an error
    except FileNotFoundError:
        raise EvalScenarioError("no such scenario file", file=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalScenarioError(f"cannot read: {unreadable(exc)}", file=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise EvalScenarioError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", file=source,
                                line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise EvalScenarioError("an eval scenario must be a YAML mapping (name:, cluster:, expect:, ...)", file=source, line=1)
    for key in ("events",):
        _stringify_at(data.get(key))
    try:
        spec = EvalScenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc, msg = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
        if msg.startswith("@"):
            where, msg = msg[1:].split("@", 1)
            loc = tuple(int(p) if p.isdigit() else p for p in where.split("."))
        field = ".".join(str(p) for p in loc if not (isinstance(p, str) and ("[" in p or "(" in p)))
        raise EvalScenarioError(msg, file=source, line=_line(yaml.compose(text), loc), field=field or "(top level)") from None
    base = repo or next((d for d in [path.resolve().parent, *path.resolve().parents] if (d / spec.policies).exists()),
                        Path.cwd())
    try:
        if spec.cluster is not None:
            sim = parse_scenario(yaml.safe_dump(spec.cluster, sort_keys=False), source=f"{source} (cluster:)")
        else:
            cluster_path = Path(spec.cluster_file)  # type: ignore[arg-type]
            sim = load_scenario(cluster_path if cluster_path.is_absolute() else path.parent / cluster_path)
    except ScenarioError as exc:
        raise EvalScenarioError(f"cluster: {exc}", file=source, line=_line(yaml.compose(text), ("cluster",))) from None
    for i, event in enumerate(spec.events):
        try:
            sim.resolve_time(event.at)
        except ValueError as exc:
            raise EvalScenarioError(str(exc), file=source, line=_line(yaml.compose(text), ("events", i, "at")), field=f"events.{i}.at") from None
    resolve = lambda p: Path(p) if Path(p).is_absolute() else base / p  # noqa: E731
    return LoadedScenario(spec=spec, sim=sim, path=path, policies=resolve(spec.policies), playbooks=resolve(spec.playbooks))


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files under the given files or folders, sorted (folders: every *.yaml, not recursing into _*)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.glob("*.yaml") if not f.name.startswith("_")))
        else:
            found.append(p)
    return found
