"""`opsagent policy`: lint policy files, explain a decision, show what the agent may do.

Thin: each command loads the policy through `opsagent.policy`, calls one
function (lint, explain, summary) and prints. `explain` can read target state
from a simulated scenario (`--scenario demo --at 14:30`) or from JSON
(`--target-state`). Nothing here decides policy or touches a cluster.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import ValidationError

from opsagent.cli.common import PoliciesOpt, fail
from opsagent.cli.output import (PROBLEM_COLUMNS, Column, Format, FormatOpt, LintOutputOpt, NoHeadersOpt, Section,
                                 emit_record, emit_sections, record_option)
from opsagent.clock import RealClock, parse_duration
from opsagent.model import Pod, Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import PolicyError, load_policy
from opsagent.policy.explain import explain as explain_call
from opsagent.policy.lint import lint as lint_dir
from opsagent.policy.toolrisk import POD_TOOLS

policy_app = typer.Typer(
    name="policy",
    help="Check and explain the policy files that bound what the agent may do.\n\nExample: opsagent policy lint policies/",
    no_args_is_help=True,
)
CHANNELS = ("daemon", "cli", "slack", "wake-proxy", "eval", "api", "mcp", "lease")


def _tool_risks() -> dict[str, str]:
    from tools import risk_table

    return risk_table()


def _load(directory: Path):
    try:
        return load_policy(directory, tool_risks=_tool_risks())
    except PolicyError as exc:
        fail(str(exc), hint=f"run: opsagent policy lint {directory}")


def _policies(value: Path | None) -> Path:
    from opsagent.cli.resolve import folder

    return value if value is not None and value.is_file() else folder(value, "policies")


@policy_app.command("lint")
def lint_cmd(
    directory: Path = typer.Argument(None, envvar="OPSAGENT_POLICIES", callback=_policies, show_default=False,
                                     help="Policy directory or one file (default: ./policies, ~/.config/opsagent/policies, then the shipped ones)."),
    output: Format = LintOutputOpt,
    no_headers: bool = NoHeadersOpt,
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero on warnings too."),
) -> None:
    """Check policy files: schema, CEL conditions, groups, rules that can never match.

    Errors and warnings name file:line:column and the field, with a hint.
    Exits 1 when there are errors (or warnings, with --strict).

    Example: opsagent policy lint policies/ -o json
    """
    report = lint_dir(directory, tool_risks=_tool_risks())
    pol = report.policy
    summary = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    if pol is not None and report.ok:
        summary = (f"ok: {len(pol.files)} file(s), {len(pol.rules)} rules, {len(pol.intents)} intents, "
                   f"{len(pol.limits)} limits, mode {pol.mode}; {len(report.warnings)} warning(s)")
    emit_sections([Section(list(report.problems), PROBLEM_COLUMNS, hide_empty=True)], output, headers=not no_headers,
                  notes=[summary], record={"ok": report.ok, "errors": len(report.errors), "warnings": len(report.warnings),
                                           "problems": [p.as_dict() for p in report.problems]})
    if not report.ok or (strict and report.warnings):
        raise typer.Exit(1)


RULE_COLUMNS = [
    Column("rule", lambda r: r.rule.name), Column("effect", lambda r: r.rule.effect), Column("tools", lambda r: r.rule.tools),
    Column("actors", lambda r: r.rule.actors), Column("namespaces", lambda r: r.rule.namespaces or "*"),
    Column("channels", lambda r: r.rule.channels or "*", wide=True), Column("risk", lambda r: r.rule.risk or "*", wide=True),
    Column("approvers", lambda r: r.rule.approvers, wide=True), Column("when", lambda r: r.rule.when, wide=True),
    Column("file", lambda r: r.file, wide=True),
]


@policy_app.command("show")
def show_cmd(policies: Path = PoliciesOpt, output: Format = FormatOpt, no_headers: bool = NoHeadersOpt) -> None:
    """Print the rules in the order they are tried (the first that matches decides), then what the agent may
    do alone, what needs a person and what is denied: the summary the agent's planner reads.

    `-o wide` adds each rule's channels, risk classes, approvers, condition and file; `-o name` prints
    `rule/NAME` lines; json and yaml hold the whole policy (rules, limits, intents, groups).

    Example: opsagent policy show --policies policies/ -o wide
    """
    pol = _load(policies)
    record = {
        "mode": pol.mode, "files": list(pol.files), "approval_ttl_seconds": pol.approval_ttl_seconds,
        "max_workloads_per_run": pol.max_workloads_per_run, "groups": pol.groups,
        "rules": [{"file": r.file, "line": getattr(r, "line", None), **r.rule.model_dump(mode="json")} for r in pol.rules],
        "limits": [{"file": lim.file, **lim.limit.model_dump(mode="json")} for lim in pol.limits],
        "intents": [i.model_dump(mode="json") for i in pol.intents],
        "annotation_intents": [{"file": o.file, "line": o.line, **o.spec.model_dump(mode="json")} for o in pol.opt_ins],
        "summary": pol.summary(),
    }
    emit_sections([Section(list(pol.rules), RULE_COLUMNS, "rule", lambda r: r.rule.name)], output, record=record,
                  headers=not no_headers, notes=["", *pol.summary().splitlines()])


@policy_app.command("explain")  # the example is the docstring's last line (an epilog would print it twice)
def explain_cmd(
    tool: str = typer.Option(..., "--tool", help="Tool name, e.g. sleep_workload."),
    args: str = typer.Option("{}", "--args", help="The call's arguments as a JSON object."),
    actor: str = typer.Option(..., "--actor", help="Who asks: a person, daemon or wake-proxy."),
    channel: str = typer.Option("cli", "--channel", help=f"One of {', '.join(CHANNELS)}."),
    target: Optional[str] = typer.Option(None, "--target", help="Target workload NAMESPACE/NAME (default: from --args; must agree with it)."),
    scenario: Optional[str] = typer.Option(None, "--scenario", help="Read target state from a simulated scenario: builtin name or file."),
    at: Optional[str] = typer.Option(None, "--at", help="Time in the scenario: HH:MM on its first day, or +DURATION from its start."),
    target_state: Optional[str] = typer.Option(None, "--target-state", help=(
        "Target state as JSON, instead of --scenario: Workload fields (plus idle_minutes) for a workload, "
        "Pod fields (phase, reason, restarts, ready, ...) for a pod tool such as delete_pod.")),
    risk: Optional[str] = typer.Option(None, "--risk", help="Risk class for a tool the catalogue does not know."),
    policies: Path = PoliciesOpt,
    output: Format = record_option("one decision, with the reasons for it"),
) -> None:
    """Show the decision for one tool call, the rule that made it, and why each earlier rule did not match.

    Also shows the target's intent and where each bound came from (a policy file's line, an annotation under an annotation_intents ceiling, or the built-in ceiling of the replicas it runs now), and the cluster text that was reported and not obeyed.

    Example: opsagent policy explain --tool sleep_workload --args '{"namespace":"render","name":"render-ui"}' --actor daemon --channel daemon --scenario demo --at 15:00
    """
    pol = _load(policies)
    if channel not in CHANNELS:
        fail(f"--channel: unknown channel {channel!r}", hint=f"use one of {', '.join(CHANNELS)}")
    if not actor.strip():
        fail("--actor is empty", hint="name who asks: a person, daemon or wake-proxy")
    try:
        call_args = json.loads(args)
    except json.JSONDecodeError as exc:
        fail(f"--args is not JSON: {exc.msg} at column {exc.colno}", hint='quote it: --args \'{"namespace":"render","name":"render-ui"}\'')
    if not isinstance(call_args, dict):
        fail("--args must be a JSON object", hint='e.g. --args \'{"namespace":"render","name":"render-ui"}\'')
    call = ToolCall(tool=tool, args=call_args, actor=actor, channel=channel)  # type: ignore[arg-type]
    tool_risk, call_target = _risk_and_target(tool, call_args, risk, target)
    snapshot, now = _state(scenario, at, target_state, call, call_target)
    result = explain_call(pol, call=call, risk=tool_risk, target=call_target, snapshot=snapshot, now=now)
    head = f"call:     {tool} {json.dumps(call_args, sort_keys=True)} by {actor} via {channel} ({result.risk}) at {now.isoformat()}"
    emit_record({"call": call, "now": now.isoformat(), **result.model_dump(mode="json")}, output, [head, *result.lines()])


def _risk_and_target(tool: str, args: dict[str, Any], risk: str | None, target: str | None) -> tuple[str, Any]:
    from tools import REGISTRY
    from tools.base import Target

    spec = REGISTRY.get(tool)
    if risk is not None and risk not in ("read", "write", "architectural"):
        fail(f"unknown risk {risk!r}", hint="use read, write or architectural")
    if spec is None and risk is None:
        fail(f"unknown tool {tool!r}", hint=f"known tools: {', '.join(sorted(REGISTRY))}; or pass --risk for a tool of your own")
    tool_risk = risk or spec.risk  # type: ignore[union-attr]
    named = None
    if spec is not None:
        try:
            named = spec.input_model.model_validate(args).target()
        except ValidationError as exc:
            if target is None:  # with --target, abbreviated arguments are fine: the target is given
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "args"
                fail(f"bad arguments for {tool}: {where}: {first['msg']}", hint=f"the gate would refuse this call; check the fields of {tool}")
    if target is None:
        return tool_risk, named if named is not None else Target(namespace=args.get("namespace"))
    try:
        ref = WorkloadRef.parse(target)
    except ValueError as exc:
        fail(f"--target: {exc}", hint="e.g. --target render/render-ui")
    _agree(ref, tool, args, named)
    return tool_risk, Target(namespace=ref.namespace, workload=ref)


def _agree(ref: WorkloadRef, tool: str, args: dict[str, Any], named: Any) -> None:
    """Fail when --args names another workload (or namespace) than --target."""
    in_args = getattr(named, "workload", None)
    namespace, name = args.get("namespace"), args.get("name")
    if in_args is None and named is None and tool not in POD_TOOLS and isinstance(namespace, str) and isinstance(name, str):
        in_args = WorkloadRef(namespace=namespace, name=name)
    if in_args is not None and (in_args.namespace, in_args.name) != (ref.namespace, ref.name):
        fail(f"--target {ref.namespace}/{ref.name} disagrees with --args, which names {in_args.namespace}/{in_args.name}",
             hint="drop --target (the arguments already name the workload), or make both name the same one")
    if isinstance(namespace, str) and namespace != ref.namespace:
        fail(f"--target {ref.namespace}/{ref.name} disagrees with --args, whose namespace is {namespace}",
             hint="drop --target, or make both name the same namespace")


def _state(scenario: str | None, at: str | None, target_state: str | None, call: ToolCall,
           target: Any) -> tuple[Snapshot | None, datetime]:
    if scenario is not None and target_state is not None:
        fail("give --scenario or --target-state, not both")
    if scenario is not None:
        from opsagent.cluster.sim import ScenarioError, SimCluster, builtin_names, builtin_scenario, load_scenario

        try:
            path = Path(scenario)
            spec = load_scenario(path) if (path.suffix in (".yaml", ".yml") or path.exists()) else builtin_scenario(scenario)
        except (ScenarioError, ValueError, KeyError) as exc:
            fail(f"--scenario {scenario}: {exc}", hint=f"builtin scenarios: {', '.join(builtin_names())}")
        sim = SimCluster(spec)
        start = sim.clock.now()
        when = _at(at, start)
        if when < start:
            fail(f"--at {at} is before the scenario starts ({start.isoformat()})")
        if when > start:
            sim.advance((when - start).total_seconds())
        snap = sim.snapshot()
        return snap, snap.time
    now = RealClock().now()
    if at is not None:
        now = _at(at, now.replace(hour=0, minute=0, second=0, microsecond=0))
    if target_state is None:
        return None, now
    return _target_snapshot(target_state, call, target, now), now


STATE_HINT = 'Workload fields, e.g. \'{"replicas": 1, "gpus_per_replica": 1, "idle_minutes": 45}\''
POD_STATE_HINT = 'Pod fields, e.g. \'{"phase": "Running", "reason": "CrashLoopBackOff", "restarts": 4}\''


def _target_snapshot(text: str, call: ToolCall, target: Any, now: datetime) -> Snapshot:
    """A one-object snapshot from --target-state: the workload the call names, or the pod it names."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--target-state is not JSON: {exc.msg} at column {exc.colno}", hint=STATE_HINT)
    if not isinstance(fields, dict):
        fail("--target-state must be a JSON object", hint=STATE_HINT)
    ref = getattr(target, "workload", None)
    if ref is None and call.tool in POD_TOOLS:
        return _pod_snapshot(fields, call, now)
    if ref is None:
        fail("--target-state needs a call that names a workload or a pod", hint="add --target NAMESPACE/NAME")
    if "ref" in fields:
        fail("--target-state: field 'ref' cannot be set here: --args (or --target) names the workload",
             hint=STATE_HINT)
    if "idle_minutes" in fields:  # convenience: idle for N minutes
        minutes = fields.pop("idle_minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes < 0:
            fail(f"--target-state: field 'idle_minutes' must be a number of minutes, 0 or more, not {minutes!r}", hint=STATE_HINT)
        fields["last_request_at"] = (now - timedelta(minutes=minutes)).isoformat()
    workload = _validated(Workload, {"ref": ref, **fields}, STATE_HINT)
    return Snapshot(time=now, workloads=(workload,), source="cli")


def _pod_snapshot(fields: dict[str, Any], call: ToolCall, now: datetime) -> Snapshot:
    for key in ("namespace", "name"):
        if key in fields:
            fail(f"--target-state: field {key!r} cannot be set here: --args names the pod", hint=POD_STATE_HINT)
    pod = _validated(Pod, {"namespace": call.args.get("namespace"), "name": call.args.get("name"), **fields}, POD_STATE_HINT)
    workloads = (Workload(ref=pod.workload),) if pod.workload is not None else ()
    return Snapshot(time=now, workloads=workloads, pods=(pod,), source="cli")


def _validated(model: Any, data: dict[str, Any], hint: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(object)"
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"field {where!r}: {message}")
        fail(f"--target-state: {'; '.join(problems)}", hint=hint)


def _at(text: str | None, start: datetime) -> datetime:
    if text is None:
        return start
    try:
        if text.startswith("+"):
            return start + parse_duration(text[1:])
        if "T" in text:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        clock = time.fromisoformat(text)
        return datetime.combine(start.date(), clock, tzinfo=timezone.utc)
    except ValueError:
        fail(f"--at {text!r} is not a time", hint="use HH:MM (on the scenario's first day), +2h30m, or an ISO time")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
