"""The playbook step templating: `{{ path.to.value }}` lookups and nothing else.

A string that is exactly one placeholder renders to the looked-up value with
its type (an int stays an int); placeholders inside longer text render as
text. Only dotted names (and list indexes such as `details.pods.0`) are
allowed: no filters, no calls, no arithmetic, so a playbook cannot run code.

Pure: no I/O. `check` validates a template at load time; `render` fills it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

ROOTS = frozenset({"finding", "target", "details", "item"})
_OPEN, _CLOSE = "{{", "}}"
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


class TemplateError(ValueError):
    """A template that is not a plain lookup, or a lookup that finds nothing."""


def paths_in(text: str) -> list[str]:
    """The lookup paths in `text`; raises TemplateError on anything but a lookup."""
    found = []
    for match in _PLACEHOLDER.finditer(text):
        path = match.group(1).strip()
        if not _PATH.match(path):
            raise TemplateError(f"only lookups such as {{{{ target.name }}}} are allowed, got {match.group(0)!r}")
        found.append(path)
    rest = _PLACEHOLDER.sub("", text)
    if _OPEN in rest or _CLOSE in rest:
        raise TemplateError(f"unbalanced '{{{{' or '}}}}' in {text!r}")
    return found


def check(value: Any, *, roots: frozenset[str] = ROOTS) -> list[str]:
    """Every lookup path in a (nested) template value; raises TemplateError for bad ones."""
    paths: list[str] = []
    if isinstance(value, str):
        for path in paths_in(value):
            root = path.split(".", 1)[0]
            if root not in roots:
                raise TemplateError(f"unknown name {root!r} in {{{{ {path} }}}}; use one of {', '.join(sorted(roots))}")
            paths.append(path)
    elif isinstance(value, Mapping):
        for item in value.values():
            paths.extend(check(item, roots=roots))
    elif isinstance(value, (list, tuple)):
        for item in value:
            paths.extend(check(item, roots=roots))
    return paths


def lookup(path: str, context: Mapping[str, Any]) -> Any:
    current: Any = context
    walked = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, (list, tuple)) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise TemplateError(f"{{{{ {path} }}}}: nothing at {'.'.join(walked)!r}")
    return current


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Fill every placeholder in a (nested) value from `context`."""
    if isinstance(value, str):
        paths = paths_in(value)
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole and len(paths) == 1:
            return lookup(paths[0], context)

        def text(match: re.Match[str]) -> str:
            found = lookup(match.group(1).strip(), context)
            return found if isinstance(found, str) else json.dumps(found, default=str)

        return _PLACEHOLDER.sub(text, value)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item, context) for item in value]
    return value
