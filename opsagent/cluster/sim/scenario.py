"""Scenario files for the simulated cluster: the schema and the loader.

A scenario declares the starting cluster (nodes and their GPUs, workloads,
queued jobs), each workload's traffic and rollout failure modes, and a
timeline of things that happen (traffic changes, requests, new images, job
submissions, node trouble, API faults, chat messages, text planted in pod
events and status messages).

This module only parses and validates. It must not simulate anything, and it
never reads the system clock. A bad file raises `ScenarioError` naming the
file, the line and the field path.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opsagent.clock import parse_duration
from opsagent.cluster.sim.needs_decl import (
    ConfigAction, ConfigObjectDecl, NeedsDecl, QuotaDecl, ServiceDecl, VolumeClaimDecl,
)
from opsagent.model import GpuRequirement, WorkloadRef
from opsagent.yamlfile import unreadable

UTC = timezone.utc


class ScenarioError(Exception):
    """A scenario file could not be loaded. `where` is `file:line`, `field` the dotted path."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = "") -> None:
        self.file, self.line, self.field, self.reason = file, line, field, message
        where = f"{file}:{line}" if line else file
        parts = [p for p in (where, f"field {field!r}" if field else "", message) if p]
        super().__init__(": ".join(parts))


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30s, 10m or 2h")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuGroup(Strict):
    """`count` identical devices on one node."""

    model: str = "A100-80GB"
    memory_mib: int = Field(default=81920, ge=0)
    count: int = Field(default=1, ge=1, le=64)
    link: int = Field(default=16, ge=1, le=32, description="PCIe link width in lanes")
    switch: str = Field(default="0", description="PCIe switch group")
    numa: int = Field(default=0, ge=0)


class NodeSpec(Strict):
    """One node, or a pool of `count` identical nodes named NAME-1..NAME-count."""

    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=1)
    labels: dict[str, str] = Field(default_factory=dict)
    gpus: tuple[GpuGroup, ...] = ()
    cordoned: bool = Field(default=False, description="cordoned from the start (say, left so after maintenance)")


class ColdStart(Strict):
    image_pull: timedelta = timedelta(seconds=30)
    model_load: timedelta = timedelta(seconds=60)

    _parse = field_validator("image_pull", "model_load", mode="before")(_duration)


class Traffic(Strict):
    """Request rate: `peak_rps` shaped by a named daily `curve`, or explicit `points` (HH:MM -> rps)."""

    peak_rps: float = Field(default=0.0, ge=0)
    curve: Literal["office-hours", "flat", "none"] = "office-hours"
    points: dict[str, float] = Field(default_factory=dict)

    @field_validator("points")
    @classmethod
    def _hhmm(cls, value: dict[str, float]) -> dict[str, float]:
        for key, rps in value.items():
            _parse_hhmm(key)
            if rps < 0:
                raise ValueError(f"rps at {key} must be >= 0")
        return value


FailureMode = Literal["transient", "bad_image", "crash", "slow", "pull_unauthorized"]


class FailureRule(Strict):
    """A rollout failure: revisions with this image (or this revision number) fail in `mode`."""

    mode: FailureMode
    image: str | None = None
    revision: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_key(self) -> "FailureRule":
        if (self.image is None) == (self.revision is None):
            raise ValueError("give exactly one of image or revision")
        return self


class ProbeDecl(Strict):
    """A container probe as the pod template declares it (see docs/simulator.md, "Memory and probes")."""

    action: Literal["http", "tcp"] = "http"
    path: str = Field(default="/health", min_length=1, max_length=200)
    port: int = Field(default=8000, ge=1, le=65535)
    initial_delay: timedelta = timedelta(0)
    period: timedelta = timedelta(seconds=10)
    failure_threshold: int = Field(default=3, ge=1, le=10000)

    _parse = field_validator("initial_delay", "period", mode="before")(_duration)


class ProbesDecl(Strict):
    readiness: ProbeDecl | None = None
    liveness: ProbeDecl | None = None
    startup: ProbeDecl | None = None


class ServerDecl(Strict):
    """What the container serves once its model is loaded: the port it listens on and its health path."""

    port: int = Field(default=8000, ge=1, le=65535)
    health_path: str = Field(default="/health", min_length=1, max_length=200)


class WorkloadDecl(Strict):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    image: str = Field(min_length=1)
    replicas: int = Field(default=1, ge=0)
    gpus: int = Field(default=0, ge=0, description="GPUs per replica")
    memory_mib: int | None = Field(default=None, ge=0)
    gpu_requirement: GpuRequirement = GpuRequirement()
    tensor_parallel: bool = False
    cold_start: ColdStart = ColdStart()
    capacity_rps: float = Field(default=10.0, gt=0, description="requests/s one replica serves at 100% GPU")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    traffic: Traffic | None = None
    failures: tuple[FailureRule, ...] = ()
    memory_use_mib: int | None = Field(default=None, ge=1, description="host memory the container uses once its "
                                       "model is loaded; above memory_mib (its limit) it is OOMKilled")
    gpu_memory_mib: int | None = Field(default=None, ge=1, description="GPU memory the model needs per replica "
                                       "(weights and cache): split over its GPUs when tensor_parallel, else on one")
    probes: ProbesDecl = ProbesDecl()
    server: ServerDecl = ServerDecl()
    needs: NeedsDecl = Field(default=NeedsDecl(), description="ConfigMaps, Secrets and claims its pods need")

    @property
    def ref(self) -> WorkloadRef:
        return WorkloadRef(namespace=self.namespace, name=self.name, kind=self.kind)


AutoscalerFailure = Literal["missing_metrics", "no_resource_requests", "cannot_scale"]


class AutoscalerDecl(Strict):
    """An autoscaler that owns a workload's replicas (see docs/simulator.md, "Autoscalers").

    It sets replicas to `ceil(request rate / target_rps)` between `min_replicas` and
    `max_replicas` each tick (a KEDA object with `min_replicas: 0` goes to zero after
    `cooldown` without requests, and back to one on the first request); `failure` makes it
    unable to act the way real ones fail: no metrics, no resource requests on the pods, or no
    access to the scale subresource.
    """

    kind: Literal["HorizontalPodAutoscaler", "ScaledObject", "HTTPScaledObject"] = "HorizontalPodAutoscaler"
    workload: str = Field(description="NAMESPACE/NAME of the Deployment or StatefulSet it scales")
    name: str | None = Field(default=None, min_length=1, description="default: the workload's name")
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_rps: float = Field(default=5.0, gt=0, description="requests per second one replica should take")
    cooldown: timedelta = Field(default=timedelta(minutes=5), description="KEDA cooldownPeriod before scaling to zero")
    failure: AutoscalerFailure | None = None
    paused_replicas: int | None = Field(default=None, ge=0, description="KEDA paused-replicas annotation from the start")
    hosts: tuple[str, ...] = Field(default=(), description="HTTPScaledObject hosts")

    _parse = field_validator("cooldown", mode="before")(_duration)

    @model_validator(mode="after")
    def _valid(self) -> "AutoscalerDecl":
        WorkloadRef.parse(self.workload)
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        if self.kind == "HorizontalPodAutoscaler" and self.min_replicas < 1:
            raise ValueError("an HPA's min_replicas is at least 1 (scale to zero needs KEDA)")
        if self.kind == "HorizontalPodAutoscaler" and self.paused_replicas is not None:
            raise ValueError("paused_replicas is KEDA's annotation; an HPA has no pause")
        return self


class DisruptionBudgetDecl(Strict):
    """A PodDisruptionBudget: the pods of `namespace` whose labels include `selector`; give one of
    `min_available` or `max_unavailable` (a count)."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    selector: dict[str, str] = Field(default_factory=dict)
    min_available: int | None = Field(default=None, ge=0)
    max_unavailable: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> "DisruptionBudgetDecl":
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("give exactly one of min_available or max_unavailable")
        return self


class JobDecl(Strict):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    gpus: int = Field(ge=1)
    duration: timedelta = timedelta(hours=1)
    at: str | None = Field(default=None, description="submission time; default the scenario start")

    _parse = field_validator("duration", mode="before")(_duration)


class RequestsAction(Strict):
    workload: str
    rps: float | None = Field(default=None, ge=0, description="fixed rate from now on")
    count: int | None = Field(default=None, ge=1, description="requests arriving now")
    resume_curve: bool = Field(default=False, description="drop a fixed rate, follow the curve again")

    @model_validator(mode="after")
    def _something(self) -> "RequestsAction":
        if self.rps is None and self.count is None and not self.resume_curve:
            raise ValueError("give rps, count or resume_curve")
        WorkloadRef.parse(self.workload)
        return self


class RolloutAction(Strict):
    workload: str
    image: str = Field(min_length=1)

    _ref = field_validator("workload")(lambda v: (WorkloadRef.parse(v), v)[1])


class NodeConditionDecl(Strict):
    """A problem condition on the node (as a node-problem detector sets it); `clear: true` removes it."""

    type: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, max_length=1000)
    clear: bool = False


class NodeAction(Strict):
    """Node trouble: cordon or uncordon, Ready or NotReady, a reboot, a problem condition, or a GPU XID error.

    `xid` emits a Warning event `XidError` on the node (as the DCGM exporter's
    event bridge or a node-problem detector reports it) naming the code and the GPU.
    `reboot` gives the node a new boot id and a new Ready transition time and emits the
    kubelet's `Rebooted` event; the pods on it are not restarted, so reboot a node with nothing on it.
    """

    name: str
    cordon: bool | None = None
    ready: bool | None = None
    reboot: bool = False
    condition: NodeConditionDecl | None = None
    xid: int | None = Field(default=None, ge=1, le=999)
    gpu: int = Field(default=0, ge=0, description="index of the GPU an xid is about")


class ApiFault(Strict):
    """The next `count` writes fail: `conflict` (409, nothing changed), `unavailable` (503, nothing
    changed) or `timeout` (the change IS applied, but the caller only hears that the request timed out)."""

    kind: Literal["conflict", "unavailable", "timeout"]
    count: int = Field(default=1, ge=1)


class PlantAction(Strict):
    """Text planted where a reader of the cluster finds it, as logs and crash output would put it there.

    `event`: a Warning event (with `reason`) on each pod the workload has now; `describe_pod` shows
    it among the pod's events. `pod_message`: appended to the status message of the workload's pods
    from now on (like a container's termination message); `describe_pod` and `list_pods` readers see it.
    """

    workload: str
    event: str | None = Field(default=None, min_length=1, max_length=2000)
    reason: str = Field(default="BackOff", min_length=1, max_length=100)
    pod_message: str | None = Field(default=None, min_length=1, max_length=2000)
    termination_message: str | None = Field(default=None, min_length=1, max_length=2000, description=(
        "ends the termination message of the workload's containers from now on (their last log lines, as a "
        "container that writes /dev/termination-log leaves them)"))

    @model_validator(mode="after")
    def _something(self) -> "PlantAction":
        if self.event is None and self.pod_message is None and self.termination_message is None:
            raise ValueError("give event, pod_message, termination_message or some of them")
        WorkloadRef.parse(self.workload)
        return self


class ChatMessage(Strict):
    actor: str = Field(min_length=1)
    text: str = Field(min_length=1)


class TimelineEvent(Strict):
    """Something that happens at `at`: HH:MM on the start day, +OFFSET from start, or an ISO time."""

    at: str
    requests: RequestsAction | None = None
    rollout: RolloutAction | None = None
    job: JobDecl | None = None
    node: NodeAction | None = None
    api_fault: ApiFault | None = None
    chat: ChatMessage | None = None
    plant: PlantAction | None = None
    config: ConfigAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "TimelineEvent":
        given = [k for k in ACTIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"each timeline event needs exactly one of {', '.join(ACTIONS)} (got {len(given)})")
        return self

    @property
    def action(self) -> str:
        return next(k for k in ACTIONS if getattr(self, k) is not None)


ACTIONS = ("requests", "rollout", "job", "node", "api_fault", "chat", "plant", "config")


class Scenario(Strict):
    name: str = "scenario"
    description: str = ""
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    duration: timedelta = timedelta(hours=24)
    seed: int = 0
    tick: timedelta = Field(default=timedelta(seconds=30), description="simulation step")
    progress_deadline: timedelta = timedelta(seconds=600)
    start_warm: bool = Field(default=True, description="workloads start with their pods already ready")
    nodes: tuple[NodeSpec, ...] = ()
    workloads: tuple[WorkloadDecl, ...] = ()
    jobs: tuple[JobDecl, ...] = ()
    autoscalers: tuple[AutoscalerDecl, ...] = ()
    disruption_budgets: tuple[DisruptionBudgetDecl, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    config_objects: tuple[ConfigObjectDecl, ...] = ()
    volume_claims: tuple[VolumeClaimDecl, ...] = ()
    quotas: tuple[QuotaDecl, ...] = ()
    services: tuple[ServiceDecl, ...] = ()

    _parse = field_validator("duration", "tick", "progress_deadline", mode="before")(_duration)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("tick")
    @classmethod
    def _tick(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(minutes=10):
            raise ValueError("tick must be between 1s and 10m")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        keys: set[str] = set()
        for i, w in enumerate(self.workloads):
            key = f"{w.namespace}/{w.name}"
            if key in keys:
                raise ValueError(f"@workloads.{i}@workload {key} declared twice")
            keys.add(key)
        node_names = {n.name if n.count == 1 else f"{n.name}-{i}" for n in self.nodes for i in range(1, n.count + 1)}
        for i, event in enumerate(self.timeline):
            try:
                self.resolve_time(event.at)
            except ValueError as exc:
                raise ValueError(f"@timeline.{i}.at@{exc}") from None
            target = getattr(event, event.action)
            ref = getattr(target, "workload", None)
            if ref is not None and ref not in keys:
                raise ValueError(f"@timeline.{i}.{event.action}.workload@unknown workload {ref!r}")
            if event.node is not None and event.node.name not in node_names:
                raise ValueError(f"@timeline.{i}.node.name@unknown node {event.node.name!r}")
        owned: set[tuple[str, str]] = set()
        for i, scaler in enumerate(self.autoscalers):
            if scaler.workload not in keys:
                raise ValueError(f"@autoscalers.{i}.workload@unknown workload {scaler.workload!r}")
            ident = (scaler.kind, f"{scaler.workload.split('/')[0]}/{scaler.name or scaler.workload.split('/')[1]}")
            if ident in owned:
                raise ValueError(f"@autoscalers.{i}.name@{ident[0]} {ident[1]} declared twice")
            owned.add(ident)
        for i, job in enumerate(self.jobs):
            if job.at is not None:
                try:
                    self.resolve_time(job.at)
                except ValueError as exc:
                    raise ValueError(f"@jobs.{i}.at@{exc}") from None
        return self

    def resolve_time(self, text: str) -> datetime:
        """HH:MM on the start day, +DURATION after the start, or an ISO 8601 time."""
        text = str(text).strip()
        if text.startswith("+"):
            return self.start + parse_duration(text[1:])
        if len(text) <= 5 and ":" in text:
            return datetime.combine(self.start.date(), _parse_hhmm(text), tzinfo=UTC)
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"bad time {text!r}: use HH:MM, +2h or 2026-01-05T13:00:00Z") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_hhmm(text: str) -> time:
    try:
        hour, minute = (int(x) for x in str(text).split(":"))
        return time(hour, minute)
    except ValueError:
        raise ValueError(f"bad time of day {text!r}: use HH:MM") from None


# --- loading ------------------------------------------------------------------


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Parse YAML text into a Scenario, or raise ScenarioError naming source, line and field."""
    try:
        data = yaml.safe_load(text)   # the node tree (for line numbers) is composed only for an error
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", file=source, line=line) from None
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a YAML mapping (name:, nodes:, workloads:, ...)", file=source, line=1)
    _stringify_times(data)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if msg.startswith("@"):  # a cross-reference check that knows where it points
            where, msg = msg[1:].split("@", 1)
            loc = tuple(int(p) if p.isdigit() else p for p in where.split("."))
        line = _line_for(yaml.compose(text), loc)
        field = ".".join(str(p) for p in loc if not (isinstance(p, str) and ("[" in p or "(" in p)))
        raise ScenarioError(msg, file=source, line=line, field=field or "(top level)") from None


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file. Raises ScenarioError for a missing or bad file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such scenario file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read: {unreadable(exc)}", file=str(path)) from None
    return parse_scenario(text, source=str(path))


def builtin_names() -> list[str]:
    folder = resources.files("opsagent") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_scenario(name: str = "demo") -> Scenario:
    """A scenario shipped with opsagent, by name (e.g. 'demo')."""
    if name not in builtin_names():
        raise ScenarioError(f"no builtin scenario {name!r}; builtins: {', '.join(builtin_names())}", file=name)
    resource = resources.files("opsagent") / "scenarios" / f"{name}.yaml"
    return parse_scenario(resource.read_text(encoding="utf-8"), source=f"builtin:{name}.yaml")


def _stringify_times(data: Any) -> None:
    """YAML reads `at: 13:00` as sexagesimal 780 and bare dates as datetimes; keep `at` as written."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("at", "start") and isinstance(value, int) and not isinstance(value, bool):
                data[key] = f"{value // 60:02d}:{value % 60:02d}" if key == "at" else value
            elif key == "at" and isinstance(value, datetime):
                data[key] = value.isoformat()
            else:
                _stringify_times(value)
    elif isinstance(data, list):
        for item in data:
            _stringify_times(item)


def _walk(node: Any, loc: tuple) -> tuple[Any, Any]:
    """Follow a pydantic error location through the composed YAML; return (deepest node, its key node)."""
    key_node = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    node, key_node = v, k
                    break
            else:
                continue  # a union/validator tag in the loc, or a missing key: stay here
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node, key_node = node.value[part], None
    return node, key_node


def _line_for(root: Any, loc: tuple) -> int | None:
    if root is None:
        return None
    node, key_node = _walk(root, loc)
    mark = (key_node or node).start_mark
    return mark.line + 1
