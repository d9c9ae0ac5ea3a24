"""Playbook lint: everything `load_playbooks` checks, plus what needs other parts.

Adds: tool names and argument names checked against the tool registry
(`tools.REGISTRY`, looked up lazily because the tools are optional at load
time), `details.X` lookups checked against the keys each finding kind carries,
and finding kinds that no playbook answers. Reads files; never touches a
cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opsagent.detect import DETAIL_KEYS
from opsagent.model import FINDING_KINDS
from opsagent.playbooks.loader import Issue, read_directory
from opsagent.playbooks.schema import Playbook
from opsagent.playbooks.template import check
from opsagent.yamlmarks import locate

_CEL_DETAILS = re.compile(r"\bfinding\.details\.([A-Za-z_][A-Za-z0-9_]*)")


def tool_registry() -> Mapping[str, Any] | None:
    """The tool registry, or None when the tools package cannot be imported."""
    try:
        import tools
    except ImportError:
        return None
    return getattr(tools, "REGISTRY", None)


def _place(playbook: Playbook, marks: dict[str, dict], loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    return locate(marks.get(playbook._file, {}), ("playbooks", playbook._index, *loc), key=True)


def _issue(playbook: Playbook, marks: dict[str, dict], loc: tuple[Any, ...], message: str, level: str = "error") -> Issue:
    line, column = _place(playbook, marks, loc)
    field = f"playbooks[{playbook._index}]" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return Issue(playbook._file, line, column, field, message, level)


def tool_issues(playbooks: Sequence[Playbook], marks: dict[str, dict], *,
                registry: Mapping[str, Any] | None) -> list[Issue]:
    """Unknown tools and argument names. With `registry=None` it looks the registry up, silently skipping if absent."""
    registry = registry if registry is not None else tool_registry()
    if registry is None:
        return []
    issues = []
    for playbook in playbooks:
        for j, step in enumerate(playbook.steps):
            tool = registry.get(step.tool)
            if tool is None:
                issues.append(_issue(playbook, marks, ("steps", j, "tool"),
                                     f"unknown tool {step.tool!r}; known: {', '.join(sorted(registry))}"))
                continue
            fields = getattr(getattr(tool, "input_model", None), "model_fields", None)
            if fields is None:
                continue
            for arg in step.args:
                if arg not in fields:
                    issues.append(_issue(playbook, marks, ("steps", j, "args", arg),
                                         f"{step.tool} has no argument {arg!r}; it takes {', '.join(fields)}"))
            missing = [n for n, f in fields.items() if f.is_required() and n not in step.args]
            if missing:
                issues.append(_issue(playbook, marks, ("steps", j, "args"),
                                     f"{step.tool} needs argument(s) {', '.join(missing)}"))
    return issues


def detail_issues(playbooks: Sequence[Playbook], marks: dict[str, dict]) -> list[Issue]:
    """`details.X` that the finding kind never carries: an error in templates, a warning in CEL."""
    issues = []
    for playbook in playbooks:
        known = DETAIL_KEYS.get(playbook.on, frozenset())
        for j, step in enumerate(playbook.steps):
            paths = check(step.args) + ([step.for_each] if step.for_each else [])
            for path in paths:
                parts = path.split(".")
                key = parts[1] if parts[0] == "details" and len(parts) > 1 else (
                    parts[2] if parts[:2] == ["finding", "details"] and len(parts) > 2 else None)
                if key is not None and key not in known:
                    issues.append(_issue(playbook, marks, ("steps", j), f"{playbook.on} findings have no detail "
                                         f"{key!r} (in {{{{ {path} }}}}); they carry: {', '.join(sorted(known))}"))
        for attr in ("when", "verify"):
            source = getattr(playbook, attr) or ""
            for key in _CEL_DETAILS.findall(source):
                if key not in known:
                    issues.append(_issue(playbook, marks, (attr,), f"{playbook.on} findings have no detail {key!r}; "
                                         "this condition will never be true", "warning"))
    return issues


def coverage_issues(playbooks: Sequence[Playbook], directory: Path) -> list[Issue]:
    covered = {p.on for p in playbooks}
    return [Issue(str(directory), None, None, "on", f"no playbook answers {kind!r} findings", "warning")
            for kind in FINDING_KINDS if kind not in covered]


def lint_playbooks(directory: Path | str, *, registry: Mapping[str, Any] | None = None) -> list[Issue]:
    """Every problem in the playbooks of `directory`, errors and warnings, in file order."""
    directory = Path(directory)
    playbooks, issues, marks = read_directory(directory)
    registry = registry if registry is not None else tool_registry()
    if registry is None:
        issues.append(Issue(str(directory), None, None, "steps", "tool registry not importable; tool names not checked",
                            "warning"))
    else:
        issues += tool_issues(playbooks, marks, registry=registry)
    issues += detail_issues(playbooks, marks)
    if playbooks:
        issues += coverage_issues(playbooks, directory)
    elif not issues and directory.is_dir() and not any(directory.glob("*.y*ml")):
        issues.append(Issue(str(directory), None, None, "playbooks",
                            "no playbook files here: the offline planner would do nothing for any finding "
                            "(is this the right folder? the repository ships playbooks/)", "warning"))
    return issues
