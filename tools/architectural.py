"""Architectural tools: changes people decide. The agent may only propose them.

The gate never runs these without a person's approval of exactly this call,
whatever a policy says. When approved they act through `ctx.cluster` like any
write (passing `dry_run=ctx.dry_run`). `change_policy` never touches the live
policy directory: it writes the proposed file under `ctx.proposals_dir` for a
person to review and move into place.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from opsagent.cluster.port import Invalid, WorkloadSpec
from opsagent.model import (
    ToolResult,
    MAX_GPUS_PER_REPLICA, MAX_MEMORY_MIB, MAX_PROBE_FAILURES, MAX_PROBE_PERIOD_SECONDS, PROBE_PATH, Container, GpuRequirement,
    Probe, WorkloadRef)

from tools import effects
from tools.args import Replicas, WorkloadArgs, find_workload
from tools.base import Outcome, ResultData, Tool, ToolContext, ToolInput, WriteData
from tools.show import arrow, given, phrased, plain, quoted, shows
from tools.write import _done

MIN_ANNOTATION = "opsagent.dev/min-replicas"
MAX_ANNOTATION = "opsagent.dev/max-replicas"
MAX_POLICY_BYTES = 64 * 1024



class SetResourcesIn(WorkloadArgs):
    gpus_per_replica: int | None = Field(default=None, ge=0, le=MAX_GPUS_PER_REPLICA,
                                         description="GPUs of the main (first) container, 0..16, written as its "
                                                     "nvidia.com/gpu limit and request; omit to keep.")
    memory_mib: int | None = Field(default=None, ge=1, le=MAX_MEMORY_MIB,
                                   description="Memory of the main (first) container in MiB, written as both its "
                                               "memory limit and its memory request; omit to keep.")
    seen_memory_mib: int | None = Field(
        default=None, ge=1, le=MAX_MEMORY_MIB,
        description="The main container's memory limit (MiB) when the change was proposed; given, the call is a "
                    "raise from it (memory_mib above it) and refuses to run if the limit is already at or above "
                    "memory_mib, or gone, by the time it runs.")

    @model_validator(mode="after")
    def _something(self) -> "SetResourcesIn":
        if self.gpus_per_replica is None and self.memory_mib is None:
            raise ValueError("give gpus_per_replica, memory_mib, or both")
        if self.seen_memory_mib is not None and (self.memory_mib is None or self.memory_mib <= self.seen_memory_mib):
            raise ValueError(f"seen_memory_mib ({self.seen_memory_mib}) says this is a raise: memory_mib must be "
                             f"above it, got {self.memory_mib}")
        return self


class ContainerResources(ResultData):
    """The main container's resources as `set_resources` writes them (None: not read, or not set)."""

    container: str | None = None
    gpus: int | None = None
    memory_limit_mib: int | None = None
    memory_request_mib: int | None = None


class ResourcesSet(WriteData):
    workload: str
    before: ContainerResources
    after: ContainerResources | None = None
    refused: str | None = None  # "stale_raise": an approved raise that no longer raises


def container_resources(main: Container | None) -> dict[str, Any]:
    """What `set_resources` writes, as the main container has it now (None: no container was read)."""
    return {"container": main.name if main else None, "gpus": main.gpus if main else None,
            "memory_limit_mib": main.memory_limit_mib if main else None,
            "memory_request_mib": main.memory_request_mib if main else None}


def _stale_raise(key: str, main: Container | None, args: SetResourcesIn) -> str | None:
    """Why an approved memory raise must not run now: the limit is already at or above it (or gone); else None."""
    if args.seen_memory_mib is None or args.memory_mib is None:
        return None
    now = main.memory_limit_mib if main else None
    proposed = f"proposed as a raise from {args.seen_memory_mib} MiB to {args.memory_mib} MiB"
    if now is None:
        return (f"not run: the main container of {key} has no memory limit now ({proposed}); setting one would "
                "cap memory it may use today, so propose the change again")
    if now == args.memory_mib:
        return f"nothing to do: the memory limit of {key} is already {now} MiB ({proposed})"
    if now > args.memory_mib:
        return (f"not run: the memory limit of {key} is already {now} MiB, above the approved {args.memory_mib} MiB "
                f"({proposed}); running it would lower the limit")
    return None


def set_resources(ctx: ToolContext, args: SetResourcesIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    main = w.main_container
    before = container_resources(main)
    stale = _stale_raise(w.key, main, args)
    if stale is not None:
        return Outcome(status="error", message=stale, data={"workload": w.key, "before": before, "refused": "stale_raise"})
    result = ctx.cluster.set_template(ref=w.ref, gpus_per_replica=args.gpus_per_replica, memory_mib=args.memory_mib, dry_run=ctx.dry_run)
    after = dict(before)
    if args.gpus_per_replica is not None:
        after["gpus"] = args.gpus_per_replica
    if args.memory_mib is not None:
        after["memory_limit_mib"] = after["memory_request_mib"] = args.memory_mib
    return _done(result, f"set resources of {w.key}: {resource_changes(args.model_dump(exclude={'seen_memory_mib'}))}", workload=w.key,
                 before=before, after=after)


class SetGpuPlacementIn(WorkloadArgs):
    min_link_width: int | None = Field(default=None, ge=1, le=32, description="Minimum PCIe link width in lanes (16 for x16); omit for any.")
    coherent: bool = Field(default=False, description="All GPUs of a replica on one PCIe switch group.")


class PlacementSet(WriteData):
    workload: str
    before: GpuRequirement
    after: GpuRequirement


def set_gpu_placement(ctx: ToolContext, args: SetGpuPlacementIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    req = GpuRequirement(min_link_width=args.min_link_width, coherent=args.coherent)
    result = ctx.cluster.set_template(ref=w.ref, gpu_requirement=req, dry_run=ctx.dry_run)
    return _done(result, f"set GPU placement of {w.key}", workload=w.key,
                 before=w.gpu_requirement.model_dump(), after=req.model_dump())


class SetReplicaBoundsIn(WorkloadArgs):
    min: Replicas = Field(description="Fewest replicas the agent may scale to, 0..1000.")
    max: Replicas = Field(description="Most replicas the agent may scale to, 0..1000.")

    @model_validator(mode="after")
    def _ordered(self) -> "SetReplicaBoundsIn":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class BoundsSet(WriteData):
    """The bound annotations before (None: not there) and as written."""

    workload: str
    before: dict[str, str | None]
    after: dict[str, str | None]


def set_replica_bounds(ctx: ToolContext, args: SetReplicaBoundsIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    notes: dict[str, str | None] = {MIN_ANNOTATION: str(args.min), MAX_ANNOTATION: str(args.max)}
    result = ctx.cluster.annotate(ref=w.ref, annotations=notes, dry_run=ctx.dry_run)
    before = {k: w.annotations.get(k) for k in notes}
    return _done(result, f"set replica bounds of {w.key} to {args.min}..{args.max}", workload=w.key, before=before, after=notes)


class CreateWorkloadIn(WorkloadArgs):
    image: str = Field(min_length=1, max_length=500, pattern=r"^[^\s]+$", description="Container image, e.g. 'registry/llm:1.4'.")
    replicas: Replicas = 1
    gpus_per_replica: int = Field(default=0, ge=0, le=MAX_GPUS_PER_REPLICA, description="GPUs per replica, 0..16.")
    memory_mib: int | None = Field(default=None, ge=1, le=MAX_MEMORY_MIB, description="Memory per replica in MiB.")
    min_link_width: int | None = Field(default=None, ge=1, le=32, description="Minimum PCIe link width in lanes.")
    coherent: bool = Field(default=False, description="All GPUs of a replica on one switch group.")
    tensor_parallel: bool = Field(default=False, description="Replicas shard one model across all their GPUs.")
    kind: str = Field(default="Deployment", pattern=r"^(Deployment|StatefulSet)$", description="Deployment or StatefulSet.")
    labels: dict[str, str] = Field(default_factory=dict, max_length=32, description="Labels for the workload.")

    @field_validator("labels")
    @classmethod
    def _label_sizes(cls, value: dict[str, str]) -> dict[str, str]:
        for k, v in value.items():
            if not k or len(k) > 253 or len(v) > 63:
                raise ValueError(f"label {k[:40]!r}: keys are 1..253 characters, values at most 63")
        return value


class Created(WriteData):
    workload: str
    image: str


def create_workload(ctx: ToolContext, args: CreateWorkloadIn) -> Outcome:
    ref = WorkloadRef(namespace=args.namespace, name=args.name, kind=args.kind)  # type: ignore[arg-type]
    if ctx.observe().workload(ref) is not None:
        raise Invalid(f"workload {ref} already exists")
    spec = WorkloadSpec(
        ref=ref, image=args.image, replicas=args.replicas, gpus_per_replica=args.gpus_per_replica,
        memory_mib=args.memory_mib, tensor_parallel=args.tensor_parallel, labels=dict(args.labels),
        gpu_requirement=GpuRequirement(min_link_width=args.min_link_width, coherent=args.coherent),
    )
    result = ctx.cluster.create_workload(spec=spec, dry_run=ctx.dry_run)
    return _done(result, f"create {ref} ({args.replicas} x {args.gpus_per_replica} GPU)", workload=str(ref), image=args.image)


class DeleteWorkloadIn(WorkloadArgs):
    pass


class Deleted(WriteData):
    workload: str
    replicas_before: int
    gpus_freed: int = 0


def delete_workload(ctx: ToolContext, args: DeleteWorkloadIn) -> Outcome:
    snap = ctx.observe()
    w = find_workload(snap, args.namespace, args.name)
    result = ctx.cluster.delete_workload(ref=w.ref, dry_run=ctx.dry_run)
    return _done(result, f"delete {w.key}", workload=w.key, replicas_before=w.replicas, gpus_freed=snap.gpus_held_by(w.ref))


class ChangePolicyIn(ToolInput):
    file: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$",
                      description="Policy file name (no directories), e.g. 'inference.yaml'.")
    content: str = Field(min_length=1, max_length=MAX_POLICY_BYTES, description="The complete new YAML text of that file.")
    reason: str = Field(min_length=1, max_length=1000, description="Why the change is needed, for the person who reviews it.")

    @field_validator("content")
    @classmethod
    def _yaml(cls, value: str) -> str:
        try:
            doc = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ValueError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        if not isinstance(doc, dict):
            raise ValueError("a policy file must be a YAML mapping")
        return value


class PolicyProposed(WriteData):
    file: str
    proposal: str  # the path written (or, in a dry run, that would be) under the proposals directory
    bytes: int


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "", text)


def change_policy(ctx: ToolContext, args: ChangePolicyIn) -> Outcome:
    if ctx.proposals_dir is None:
        raise Invalid("no proposals directory is configured; change_policy cannot write its proposal")
    stamp = _slug(ctx.clock.now().strftime("%Y%m%dT%H%M%SZ"))
    path = ctx.proposals_dir / f"{stamp}-{args.file}"
    data: dict[str, Any] = {"file": args.file, "proposal": str(path), "bytes": len(args.content.encode()), "dry_run": ctx.dry_run}
    if ctx.dry_run:
        return Outcome(message=f"dry run: would write the proposed {args.file} to {path}", data=data)
    ctx.proposals_dir.mkdir(parents=True, exist_ok=True)
    header = f"# Proposed change to {args.file}\n# Reason: {' '.join(args.reason.split())}\n"
    path.write_text(header + args.content if args.content.endswith("\n") else header + args.content + "\n")
    return Outcome(message=f"wrote the proposed {args.file} to {path}; a person must review it and move it into the policy directory", data=data)


class SetAutoscalerBoundsIn(WorkloadArgs):
    min_replicas: int = Field(ge=0, le=1000, description="The autoscaler's minimum (0 only for KEDA).")
    max_replicas: int = Field(ge=1, le=1000, description="The autoscaler's maximum.")

    @model_validator(mode="after")
    def _ordered(self) -> "SetAutoscalerBoundsIn":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        return self


class MinMax(ResultData):
    min: int
    max: int


class AutoscalerBoundsSet(WriteData):
    """`autoscaler` (KIND namespace/name) with its bounds before and after; only `workload` when none owns it."""

    workload: str
    autoscaler: str | None = None
    before: MinMax | None = None
    after: MinMax | None = None


def set_autoscaler_bounds(ctx: ToolContext, args: SetAutoscalerBoundsIn) -> Outcome:
    snap = ctx.observe()
    w = find_workload(snap, args.namespace, args.name)
    owner = snap.autoscaler_of(w.ref)
    if owner is None:
        return Outcome(status="error", message=f"no autoscaler owns {w.key}; propose set_replica_bounds instead",
                       data={"workload": w.key})
    if owner.kind == "HorizontalPodAutoscaler" and args.min_replicas < 1:
        return Outcome(status="error", message=f"{owner.label} cannot go below 1 replica; only KEDA scales to zero",
                       data={"workload": w.key, "autoscaler": owner.label})
    result = ctx.cluster.set_autoscaler_bounds(kind=owner.kind, namespace=owner.namespace, name=owner.name,
                                               min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                                               dry_run=ctx.dry_run)
    return _done(result, f"set the bounds of {owner.label} from {owner.min_replicas}..{owner.max_replicas} to "
                         f"{args.min_replicas}..{args.max_replicas}",
                 workload=w.key, autoscaler=owner.label, before={"min": owner.min_replicas, "max": owner.max_replicas},
                 after={"min": args.min_replicas, "max": args.max_replicas})


class SetProbeIn(WorkloadArgs):
    probe: Literal["readiness", "liveness", "startup"] = Field(description="Which probe of the main container.")
    path: str | None = Field(default=None, min_length=1, max_length=200, pattern=PROBE_PATH,
                             description="HTTP path the probe should GET, e.g. '/health'; omit to keep.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port the probe should use; omit to keep.")
    period_seconds: int | None = Field(default=None, ge=1, le=MAX_PROBE_PERIOD_SECONDS,
                                       description="Seconds between attempts; omit to keep.")
    failure_threshold: int | None = Field(default=None, ge=1, le=MAX_PROBE_FAILURES,
                                          description="Failures in a row before the kubelet acts; omit to keep.")

    @model_validator(mode="after")
    def _something(self) -> "SetProbeIn":
        if self.path is None and self.port is None and self.period_seconds is None and self.failure_threshold is None:
            raise ValueError("give path, port, period_seconds or failure_threshold")
        return self


class ProbeSet(WriteData):
    """The probe before (None: it is added) and as written; only `workload` when the call was refused."""

    workload: str
    before: Probe | None = None
    after: Probe | None = None


def set_probe(ctx: ToolContext, args: SetProbeIn) -> Outcome:
    w = find_workload(ctx.observe(), args.namespace, args.name)
    main = w.containers[0] if w.containers else None
    if main is None:
        return Outcome(status="error", message=f"the pod template of {w.key} shows no container", data={"workload": w.key})
    current = main.probe(args.probe)
    base = current or (main.probe("liveness") or main.probe("readiness") if args.probe == "startup" else None)
    if base is None:
        return Outcome(status="error", message=f"{w.key} has no {args.probe} probe to change (only a startup probe may be "
                       "added, on the endpoint of its liveness or readiness probe)", data={"workload": w.key})
    changes = {k: v for k, v in {"path": args.path, "port": args.port, "period_seconds": args.period_seconds,
                                 "failure_threshold": args.failure_threshold}.items() if v is not None}
    if "path" in changes and base.action != "http":
        return Outcome(status="error", message=f"the {base.kind} probe of {w.key} is not an HTTP probe; it has no path",
                       data={"workload": w.key})
    if base.action == "exec" and ("port" in changes or current is None):
        # A command probe has no port to set, and a startup probe cannot copy its command (it is not read from the
        # cluster): either would say it changed something it did not, or write a probe that checks nothing.
        return Outcome(status="error", data={"workload": w.key}, message=(
            f"the {base.kind} probe of {w.key} runs a command: it has no port to set" if "port" in changes else
            f"the {base.kind} probe of {w.key} runs a command, which a startup probe cannot copy; add one by hand"))
    new = Probe.model_validate({**base.model_dump(), **changes, "kind": args.probe})
    result = ctx.cluster.set_probe(ref=w.ref, probe=new, dry_run=ctx.dry_run)
    return _done(result, f"set the {args.probe} probe of {w.key}: {new.describe()}", workload=w.key,
                 before=current.model_dump() if current else None, after=new.model_dump())


RETURNS: dict[str, str] = {
    'set_autoscaler_bounds': 'workload, `autoscaler` (kind namespace/name), before and after (min, max), dry_run.',
    'set_resources': 'workload, before and after of the main container (container, gpus, memory_limit_mib, '
                     'memory_request_mib), dry_run; refused: stale_raise when a raise no longer raises.',
    'set_gpu_placement': 'workload, before and after (min_link_width, coherent), dry_run.',
    'set_replica_bounds': 'workload, before and after annotations (opsagent.dev/min-replicas, opsagent.dev/max-replicas), dry_run.',
    'create_workload': 'workload, image, dry_run.',
    'delete_workload': 'workload, replicas_before, gpus_freed, dry_run.',
    'change_policy': 'file, `proposal` (the path written under the proposals directory), bytes, dry_run.',
    'set_probe': 'workload, before (the probe, or null when it is added) and after (kind, action, path, port, timings), dry_run.',
}


EFFECTS: dict[str, effects.EffectCheck] = {
    "set_resources": effects.resources,
    "set_gpu_placement": effects.template(effects.placement),
    "set_replica_bounds": effects.bounds,
    "set_autoscaler_bounds": effects.autoscaler_bounds,
    "create_workload": effects.exists(True),
    "delete_workload": effects.exists(False),
    "set_probe": effects.probe,
    "change_policy": effects.unchecked(lambda a: "it writes a proposal file, never the cluster: look in the proposals "
                                                 f"directory for a file ending in -{str(a.get('file'))[:100]} before "
                                                 "proposing it again"),
}


def resource_changes(args: dict[str, Any]) -> str:
    """What `set_resources` will write, in words: the main container's limit and request, and when a raise refuses."""
    said = []
    if args.get("gpus_per_replica") is not None:
        said.append(f"main container's nvidia.com/gpu limit and request to {plain(args['gpus_per_replica'], 12)}")
    if args.get("memory_mib") is not None:
        memory = plain(args["memory_mib"], 12)
        said.append(f"main container's memory limit and request to {memory} MiB")
        if args.get("seen_memory_mib") is not None:
            said[-1] += (f" (a raise from the {plain(args['seen_memory_mib'], 12)} MiB limit it had; not run if the "
                         f"limit is already {memory} MiB or more)")
    return "; ".join(said) or "nothing"


def _resources(d: ResourcesSet) -> tuple[str, str]:
    after = d.after or d.before
    parts = [f"{label} {arrow(getattr(d.before, key), getattr(after, key))}"
             for key, label in (("gpus", "GPUs"), ("memory_limit_mib", "memory limit MiB"), ("memory_request_mib", "memory request MiB"))
             if getattr(d.before, key) != getattr(after, key)]
    where = f"container {plain(after.container, 63)}" if after.container else "main container"
    return d.workload, f"{where}: {', '.join(parts) or 'no change'}"


def _placement(req: GpuRequirement) -> str:
    width = f"links x{req.min_link_width} or wider" if req.min_link_width else "any link width"
    return f"{width}{', one switch group' if req.coherent else ''}"


def _span(low: Any, high: Any) -> str:
    """Replica bounds as `low..high`, an unset end shown as `any`."""
    return f"{'any' if low is None else low}..{'any' if high is None else high}"


def _autoscaler_bounds(d: AutoscalerBoundsSet) -> tuple[str, str]:
    span = arrow(_span(d.before.min, d.before.max) if d.before else None, _span(d.after.min, d.after.max) if d.after else None)
    return d.workload, f"{plain(d.autoscaler)} bounds {span}"


def _probe(d: ProbeSet) -> tuple[str, str]:
    if d.after is None:
        return d.workload, "probe unchanged"
    verb = "changed" if d.before is not None else "added"
    return d.workload, f"{verb} the {plain(d.after.describe(), 200)}"


# How a pending call reads in an approval request: what it would change, not just where.
PHRASES: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "set_resources": phrased("set resources of", details=lambda a: f": {resource_changes(a)}"),
    "set_gpu_placement": phrased("set the GPU placement of", details=lambda a: f": min_link_width "
                                 f"{plain(a.get('min_link_width') or 'any', 12)}, coherent {plain(bool(a.get('coherent')), 8)}"),
    "set_replica_bounds": phrased("set the replica bounds of", details=lambda a: f" to {plain(a.get('min'), 12)}..{plain(a.get('max'), 12)}"),
    "set_autoscaler_bounds": phrased("set the autoscaler bounds of", details=lambda a: f" to "
                                     f"{plain(a.get('min_replicas'), 12)}..{plain(a.get('max_replicas'), 12)}"),
    "create_workload": phrased("create", details=lambda a: f" from `{plain(a.get('image'), 200)}`: "
                                                           + given(a, "replicas", "gpus_per_replica", "memory_mib", "kind")),
    "delete_workload": phrased("delete workload"),
    "change_policy": lambda subject, a: (f"propose a new text of policy file `{plain(a.get('file'), 100)}` "
                                         f"({len(str(a.get('content', '')).encode())} bytes), because {quoted(a.get('reason'), 200)}"),
    "set_probe": lambda subject, a: (f"set the {plain(a.get('probe'), 12)} probe of `{subject}`: "
                                     f"{given(a, 'path', 'port', 'period_seconds', 'failure_threshold')}"),
}


# What a person sees in chat after an ok result: the object and the change.
SHOWS: dict[str, Callable[[ToolResult], list[str]]] = {
    "set_resources": shows(ResourcesSet, _resources),
    "set_gpu_placement": shows(PlacementSet, lambda d: (d.workload, f"GPU placement {_placement(d.before)} → {_placement(d.after)}")),
    "set_replica_bounds": shows(BoundsSet, lambda d: (d.workload, "replica bounds "
                                + arrow(_span(d.before.get(MIN_ANNOTATION), d.before.get(MAX_ANNOTATION)),
                                        _span(d.after.get(MIN_ANNOTATION), d.after.get(MAX_ANNOTATION))))),
    "set_autoscaler_bounds": shows(AutoscalerBoundsSet, _autoscaler_bounds),
    "create_workload": shows(Created, lambda d: (d.workload, f"created from image {quoted(d.image)}")),
    "delete_workload": shows(Deleted, lambda d: (d.workload, f"deleted (had {d.replicas_before} replica(s)), "
                                                             f"{d.gpus_freed} GPU(s) freed")),
    "change_policy": shows(PolicyProposed, lambda d: (d.file, f"proposal written to {plain(d.proposal, 300)}",
                                                      "a person reviews it and moves it into the policy directory")),
    "set_probe": shows(ProbeSet, _probe),
}


RESULTS: dict[str, type[ResultData]] = {
    "set_resources": ResourcesSet, "set_gpu_placement": PlacementSet, "set_replica_bounds": BoundsSet,
    "set_autoscaler_bounds": AutoscalerBoundsSet, "create_workload": Created, "delete_workload": Deleted,
    "change_policy": PolicyProposed, "set_probe": ProbeSet,
}


def _tool(name: str, model: type[ToolInput], fn: Callable[[ToolContext, Any], Outcome], description: str, *examples: dict) -> Tool:
    return Tool(name=name, risk="architectural", input_model=model, run=fn, description=description,
                examples=tuple(examples), returns=RETURNS[name], effect=EFFECTS[name], phrase=PHRASES[name],
                show=SHOWS[name], result_model=RESULTS[name])


ARCHITECTURAL_TOOLS: tuple[Tool, ...] = (
    _tool("set_resources", SetResourcesIn, set_resources,
          "Propose new GPUs and/or memory for a workload's main (first) container, written as both its limit and "
          "its request (needs a person's approval). For a raise, give seen_memory_mib (the limit it has now): an "
          "approval that comes after someone raised it further then refuses instead of lowering it.",
          {"namespace": "inference", "name": "llm", "gpus_per_replica": 2},
          {"namespace": "inference", "name": "coder", "memory_mib": 24576, "seen_memory_mib": 16384}),
    _tool("set_gpu_placement", SetGpuPlacementIn, set_gpu_placement,
          "Propose a GPU placement requirement: minimum link width and a coherent switch group (needs approval).",
          {"namespace": "inference", "name": "llm", "min_link_width": 16, "coherent": True}),
    _tool("set_replica_bounds", SetReplicaBoundsIn, set_replica_bounds,
          "Propose the replica bounds the agent must keep to, stored as workload annotations (needs approval).",
          {"namespace": "inference", "name": "llm", "min": 0, "max": 4}),
    _tool("set_autoscaler_bounds", SetAutoscalerBoundsIn, set_autoscaler_bounds,
          "Propose new min/max replicas for the autoscaler (HPA or KEDA ScaledObject) that owns a workload (needs approval).",
          {"namespace": "inference", "name": "llm", "min_replicas": 1, "max_replicas": 4}),
    _tool("create_workload", CreateWorkloadIn, create_workload,
          "Propose a new workload (needs approval).",
          {"namespace": "inference", "name": "embedder", "image": "registry/embedder:2.0", "replicas": 1, "gpus_per_replica": 1}),
    _tool("delete_workload", DeleteWorkloadIn, delete_workload,
          "Propose deleting a workload (needs approval).",
          {"namespace": "inference", "name": "old-llm"}),
    _tool("change_policy", ChangePolicyIn, change_policy,
          "Propose a new text for one policy file; on approval it is written as a proposal file, never to the live policy.",
          {"file": "inference.yaml", "content": "intents: []\n", "reason": "retire the old intent"}),
    _tool("set_probe", SetProbeIn, set_probe,
          "Propose a change to one probe of a workload's main container: its path or port, or a startup probe "
          "that covers a slow model load (needs a person's approval).",
          {"namespace": "inference", "name": "llm", "probe": "readiness", "path": "/health"}),
)
