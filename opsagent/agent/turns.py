"""Judging a model's turns: what it may propose before the gate, and whether a turn was usable.

A planner that is not the offline planner (a language model, or anything a
test or an eval plugs in) is untrusted. Two pure decisions keep a bad one
cheap:

- `refusal(...)`, before the gate: in a finding's run, a call to a tool that
  was not offered for the finding, or a write aimed at something other than
  the finding's subject (its workload, the workloads its details and its
  playbook's steps name, their pods, its node), is refused; so is, in any
  run, a call identical to one already refused in the same run. These only
  narrow what the policy allows: a refused call never reaches the gate, and
  a call that passes still needs the gate's `allow`. Calls past the first
  `MAX_CALLS_PER_TURN` of one answer are not run at all (`dropped`): they are
  not a verdict on the call, so they do not count as refused.
- `judge_turn(...)`, after the gate: a turn is `usable` when one of its writes
  ran or went to a person for approval, `unusable` when nothing of that kind
  happened and some call was refused (denied, invalid, refused before the
  gate), and `neutral` otherwise (reads only, or a tool that failed on the
  cluster's side, which is not the model's fault).

The graph counts unusable turns (and unparseable answers) in a row and falls
back to the offline planner at `AgentConfig.max_failures`. Names compare
exactly: a look-alike (other case, other script, extra spaces) of a subject
is not the subject. No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from pydantic import ValidationError

from opsagent.agent.playbook_view import guidance_of
from opsagent.model import Finding, Snapshot, canonical_json

Verdict = Literal["usable", "unusable", "neutral"]
REFUSED = ("denied", "invalid")
PROGRESS = ("ok", "pending_approval")
MAX_CALLS_PER_TURN = 8


def call_key(tool: str, args: Mapping[str, Any]) -> str:
    """One string per exact call: the tool and its arguments in canonical JSON."""
    return tool + canonical_json(dict(args))


@dataclass(frozen=True)
class Scope:
    """What a finding's run may write to: workloads and pods as `namespace/name`, nodes by name."""

    workloads: frozenset[str]
    pods: frozenset[str]
    nodes: frozenset[str]

    def covers(self, tool_input: Any) -> bool:
        """Whether a tool's validated input targets something in scope (its `target()`: a workload, a node or a pod)."""
        target = tool_input.target()
        if target.workload is not None:
            return str(target.workload) in self.workloads
        if target.node is not None:
            return target.node in self.nodes
        name = getattr(tool_input, "name", None)
        if target.namespace is not None and isinstance(name, str):  # a pod, named in its namespace
            return f"{target.namespace}/{name}" in self.pods
        return False


def _refs(value: Any, workloads: set[str], nodes: set[str], known: set[str]) -> None:
    """Workload and node names mentioned in a finding's details (any depth)."""
    if isinstance(value, Mapping):
        ns, name = value.get("namespace"), value.get("name")
        if isinstance(ns, str) and isinstance(name, str):
            workloads.add(f"{ns}/{name}")
        for key, item in value.items():
            if key in ("node", "nodes"):
                nodes.update(v for v in ([item] if isinstance(item, str) else item or []) if isinstance(v, str))
            else:
                _refs(item, workloads, nodes, known)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refs(item, workloads, nodes, known)
    elif isinstance(value, str) and value in known:
        workloads.add(value)


def scope_of(finding: Finding, snapshot: Snapshot, steps: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> Scope:
    """The finding's subject, what its details name, what its playbook's steps target, and their pods."""
    workloads: set[str] = set()
    nodes: set[str] = set()
    (workloads if "/" in finding.subject else nodes).add(finding.subject)
    _refs(dict(finding.details), workloads, nodes, {w.key for w in snapshot.workloads})
    for _, args in steps:  # the playbook is written by people: what it targets is in scope
        ns, name, node = args.get("namespace"), args.get("name"), args.get("node")
        if isinstance(ns, str) and isinstance(name, str):
            workloads.add(f"{ns}/{name}")
        if isinstance(node, str):
            nodes.add(node)
    pods = {f"{p.namespace}/{p.name}" for key in workloads for p in snapshot.pods_of(key)} \
        if any(snapshot.workload(k) is not None for k in workloads) else set()
    return Scope(workloads=frozenset(workloads), pods=frozenset(pods), nodes=frozenset(nodes))


def offered_tools(*, finding: Finding | None, playbook: Any | None, tools: Mapping[str, Any]) -> dict[str, Any]:
    """The tools offered to a model for this run: fewer tools, a shorter prompt, fewer wrong turns.

    A finding with a playbook gets every read tool plus the tools its playbook
    names (in its steps or its guidance). A chat message, or a finding no
    playbook covers, gets them all.
    """
    if finding is None or playbook is None:
        return dict(tools)
    named = {step.tool for step in getattr(playbook, "steps", ())}
    guidance = guidance_of(playbook) or ""
    return {name: t for name, t in tools.items() if t.risk == "read" or name in named or name in guidance}


def refusal(tool: str, args: Mapping[str, Any], *, tools: Mapping[str, Any], offered: Mapping[str, Any] | None,
            scope: Scope | None, refused: set[str]) -> str | None:
    """Why a model's call is refused before the gate, or None to hand it to the gate.

    `offered` and `scope` are None outside a finding's run; `refused` holds the
    `call_key`s already refused in this run. An unknown tool, or arguments its
    input model rejects, are left to the gate, which refuses them as invalid
    with the reason the model needs (and the turn counts as unusable).
    """
    if call_key(tool, args) in refused:
        return "the same call was already refused in this run"
    known = tools.get(tool)
    if known is None:
        return None
    if offered is not None and tool not in offered:
        return f"{tool} was not offered for this finding"
    try:
        parsed = known.input_model.model_validate(dict(args))
    except ValidationError:  # the gate refuses it as invalid and tells the model which field is wrong
        return None
    if scope is not None and known.risk != "read" and not scope.covers(parsed):
        return f"{tool} targets something outside this finding's subject"
    return None


def dropped(index: int) -> str | None:
    """Why the `index`-th call of one answer is not run at all, or None."""
    return f"more than {MAX_CALLS_PER_TURN} calls in one answer" if index >= MAX_CALLS_PER_TURN else None


def judge_turn(rows: Iterable[Mapping[str, Any]], *, tools: Mapping[str, Any]) -> tuple[Verdict, str | None]:
    """Whether one turn's results show a usable model: (verdict, why unusable)."""
    rows = list(rows)
    for row in rows:
        tool = tools.get(str(row.get("tool")))
        if row.get("status") in PROGRESS and tool is not None and tool.risk != "read":
            return "usable", None
    for row in rows:
        if row.get("status") in REFUSED:
            return "unusable", f"{row.get('tool')}: {row.get('status')}: {str(row.get('message') or '')[:200]}"
    return "neutral", None
