"""How the agent reads a playbook: its steps for a finding, its guidance, its verify check.

A thin adapter over `opsagent.playbooks`, so planners and the graph depend on
three small functions rather than on the playbook schema. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from opsagent.model import Finding, Snapshot
from opsagent.playbooks import render_steps as _render
from opsagent.playbooks import target_context
from opsagent.playbooks import verify as _verify


def render_steps(playbook: Any, finding: Finding, snapshot: Snapshot) -> list[tuple[str, dict[str, Any]]]:
    """The playbook's steps as (tool, args), rendered for this finding and snapshot.

    Raises `opsagent.playbooks.TemplateError` when a lookup finds nothing.
    """
    return [(str(item["tool"]), dict(item.get("args") or {})) for item in _render(playbook, finding, snapshot)]


def guidance_of(playbook: Any) -> str | None:
    value = getattr(playbook, "guidance", None)
    return str(value) if value else None


def is_resolved(playbook: Any | None, finding: Finding, snapshot: Snapshot, *, finding_open: bool) -> bool:
    """The playbook's verify condition on the re-observed state; without a playbook, 'finding closed'."""
    if playbook is None:
        return not finding_open
    return bool(_verify(playbook, finding=finding, target=target_context(finding, snapshot), finding_open=finding_open))
