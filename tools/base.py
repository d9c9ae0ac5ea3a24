"""What a tool is, declared once: input model, risk class, function over the port, and
how it shows (docs, chat) and how recovery checks its effect.

Tools act only through the `Cluster` port handed to them in a `ToolContext`;
they never import an adapter. The gate is the only caller of `Tool.run`.
A tool returns an `Outcome` (small, structured, what a model needs to decide
its next step); it raises `ClusterError` for cluster failures, which the gate
turns into an error result for the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from opsagent.clock import Clock
from opsagent.cluster.port import Cluster
from opsagent.model import Finding, Frozen, ReplicaWrite, Risk, Snapshot, ToolResult, Workload, WorkloadRef

from tools.effects import EffectCheck


class Target(Frozen):
    """What a call touches, for policy matching (namespace, labels, node)."""

    namespace: str | None = None
    workload: WorkloadRef | None = None
    node: str | None = None


class ToolInput(BaseModel):
    """Base of every tool's arguments. Unknown fields are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def target(self) -> Target:
        return Target()


class ResultData(BaseModel):
    """Base of a tool's typed result: `ToolResult.data` read by field, not by string key.

    A tool still returns plain data (it is what the audit log and a model see); a
    consumer that needs fields reads them with `Model.of(result)`. Fields a model does
    not name are kept (extra="allow"), so a typed view never drops what a tool said.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def of(cls, result: ToolResult) -> Self:
        return cls.model_validate(result.data or {})


class WriteData(ResultData):
    """What every write's result carries (tools.write._done): whether it was a dry run, and what the cluster
    said about the write (cut to 300 characters)."""

    dry_run: bool = False
    cluster_message: str | None = None


class Outcome(Frozen):
    status: Literal["ok", "no_data", "error"] = "ok"
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class ToolContext:
    """Everything a tool may use. Built by the gate for one call."""

    cluster: Cluster
    clock: Clock
    observe: Callable[[], Snapshot]
    dry_run: bool = False
    warm_replicas: Callable[[WorkloadRef], int] = lambda ref: 1
    findings: Callable[[], list[Finding]] = lambda: []
    wake_timeout_seconds: float = 600.0
    poll_seconds: float = 5.0
    # How a tool waits between polls. None means `clock.sleep`; a simulator-driven
    # caller sets it to `sim.advance` so that waiting lets the simulation move.
    wait: Callable[[float], None] | None = None
    # Where `change_policy` writes proposed policy files (never the live policy dir).
    proposals_dir: Path | None = None
    # Why a workload's pods are not ready, as plain data (the gate hands in opsagent.detect.probes.explain).
    explain_not_ready: Callable[[Snapshot, Workload], dict[str, Any] | None] = lambda snapshot, workload: None

    def pause(self, seconds: float) -> None:
        """Wait `seconds` the way this context was told to (see `wait`)."""
        (self.wait or self.clock.sleep)(seconds)


@dataclass(frozen=True)
class ChatForm:
    """How a person asks for a tool in one chat line (opsagent.chat.grammar reads these).

    `pattern` is a regular expression over the cleaned line; `{WL}` stands for the workload
    (groups `ns`, `name`) and `{NUM}` for a count (group `n`, digits or a number word, handed to
    `build` as an int). `build(ref, groups)` returns the call's arguments beyond namespace and
    name, and the command's canonical summary. A node tool's pattern uses `{NODE}` (group `node`)
    instead of `{WL}`: `build` then gets the node's name and the call gets `node`.
    """

    verb: str
    form: str  # the line `help` shows, e.g. "scale NS/NAME to N"
    pattern: str
    hint: str  # shown when the verb is understood but not the rest
    build: Callable[[str, dict[str, Any]], tuple[dict[str, Any], str]]
    aliases: tuple[str, ...] = ()  # other first words for the same form
    particles: tuple[str, ...] = ()  # words that may stand between the verb and the workload ("scale up X")


@dataclass(frozen=True)
class Tool:
    name: str
    risk: Risk
    input_model: type[ToolInput]
    run: Callable[[ToolContext, Any], Outcome]
    description: str
    examples: tuple[dict[str, Any], ...] = field(default=())
    returns: str = ""  # what the result's data holds, in one line (docs and prompts)
    # Recovery after a crash: does the cluster show this call's change? None: no check (reads).
    effect: EffectCheck | None = None
    # Chat: the lines that show an ok result; None shows the result's message.
    show: Callable[[ToolResult], list[str]] | None = None
    # Chat: how a call reads in one line, given "NS/NAME" (already made plain) and the raw arguments.
    phrase: Callable[[str, dict[str, Any]], str] | None = None
    # Chat: the command that asks for this tool, if people may type one.
    chat: ChatForm | None = None
    # The typed view of what a successful call's data holds (see ResultData); None: untyped.
    result_model: type[ResultData] | None = None
    # Whether it writes a workload's replicas ("direct") or may go through an autoscaler instead
    # ("pausable"); the gate refuses either on a workload an autoscaler owns when it cannot (opsagent.policy.ownership).
    replicas: ReplicaWrite | None = None
