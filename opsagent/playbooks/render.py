"""Turn a playbook's steps into concrete tool calls for one finding (the offline planner's input).

Pure: reads the finding and the snapshot, returns plain dicts
`{"tool", "args", "finding_id", "playbook", "note"}`. It proposes; the gate
decides. Raises TemplateError when a lookup finds nothing.
"""

from __future__ import annotations

from typing import Any

from opsagent.model import Finding, Snapshot
from opsagent.playbooks.context import playbook_context
from opsagent.playbooks.schema import Playbook
from opsagent.playbooks.template import TemplateError, lookup, render


def render_steps(playbook: Playbook, finding: Finding, snapshot: Snapshot | None) -> list[dict[str, Any]]:
    """The playbook's steps with every `{{ lookup }}` filled in, in order."""
    context = playbook_context(finding, snapshot)
    calls: list[dict[str, Any]] = []
    for index, step in enumerate(playbook.steps):
        where = f"{playbook.name} steps[{index}]"
        items: list[Any] = [None]
        if step.for_each is not None:
            try:
                found = lookup(step.for_each, context)
            except TemplateError as exc:
                raise TemplateError(f"{where}.for_each: {exc}") from None
            if not isinstance(found, (list, tuple)):
                raise TemplateError(f"{where}.for_each: {step.for_each} is {type(found).__name__}, not a list")
            items = list(found)
        for item in items:
            scope = context if step.for_each is None else {**context, "item": item}
            try:
                args = render(step.args, scope)
            except TemplateError as exc:
                raise TemplateError(f"{where}.args: {exc}") from None
            calls.append({"tool": step.tool, "args": args, "finding_id": finding.id,
                          "playbook": playbook.name, "note": step.note})
    return calls
