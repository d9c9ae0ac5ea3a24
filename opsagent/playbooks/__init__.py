"""Playbooks: human-written procedures per finding kind (schema, loader, templating, lint).

`load_playbooks(directory) -> PlaybookSet`; `PlaybookSet.for_finding(finding,
snapshot)`; `render_steps(playbook, finding, snapshot)` for the offline
planner; `verify(...)` for the re-observed state; `lint_playbooks(directory)`.
Reads playbook files only; never touches a cluster or the network.
"""

from opsagent.playbooks.context import playbook_context, target_context
from opsagent.playbooks.lint import lint_playbooks
from opsagent.playbooks.loader import Issue, PlaybookError, PlaybookSet, load_playbooks, verify
from opsagent.playbooks.render import render_steps
from opsagent.playbooks.schema import Playbook, Retry, Step
from opsagent.playbooks.template import TemplateError

__all__ = [
    "Issue", "Playbook", "PlaybookError", "PlaybookSet", "Retry", "Step", "TemplateError", "lint_playbooks",
    "load_playbooks", "playbook_context", "render_steps", "target_context", "verify",
]
