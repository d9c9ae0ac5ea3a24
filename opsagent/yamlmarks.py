"""Read one YAML document and remember where each value was written (line, column).

Policies, playbooks and route files are written by people; when one is wrong
the message must point at the exact place. `load_with_marks(text)` returns the
plain Python value and a map from a path (a tuple of keys and list indexes) to
its 1-based (line, column). `locate(marks, loc)` finds the place of a pydantic
error location or of its nearest written ancestor.

- Mapping keys are kept as written: an unquoted `on:` stays the string 'on'
  instead of YAML 1.1's boolean.
- A key written twice is an error (YAML would silently keep the last one).
- A value's place is where its text starts: inside quotes, or on the first
  line of a `|` / `>` block. A key's own place is kept under `path + (key, KEY)`
  for "unknown field" errors.

Pure: takes text, never opens files.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import yaml

Path = tuple[Any, ...]
Marks = dict[Path, tuple[int, int]]
KEY = "<key>"


class YamlProblem(ValueError):
    """Bad YAML syntax, a non-scalar key or a duplicate key, with its place."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def load_with_marks(text: str) -> tuple[Any, Marks]:
    """Parse `text`; raise YamlProblem (with line and column) on bad YAML or duplicate keys.

    The same text read again (the policies and playbooks every eval session opens) is parsed once;
    each caller gets its own copy of the value and of the marks."""
    value, marks = _parsed(text)
    return copy.deepcopy(value), dict(marks)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[Any, Marks]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        raise YamlProblem(f"invalid YAML: {message}", mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", None, None) from None
    marks: Marks = {}
    if root is None:
        return None, marks
    return _build(root, (), marks, yaml.SafeLoader("")), marks


def locate(marks: Marks, loc: Path, *, key: bool = False) -> tuple[int | None, int | None]:
    """The place of `loc` (of its key when `key`), or of its nearest ancestor present in the file."""
    path = tuple(loc)
    if key and path + (KEY,) in marks:
        return marks[path + (KEY,)]
    while path:
        if path in marks:
            return marks[path]
        path = path[:-1]
    return marks.get((), (None, None))


def _build(node: yaml.Node, path: Path, marks: Marks, constructor: yaml.SafeLoader) -> Any:
    marks[path] = _content_start(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem("mapping keys must be plain names", *where)
            name = key_node.value
            if name in out:
                first = marks[path + (name, KEY)][0]
                raise YamlProblem(f"duplicate key {name!r} (first written at line {first})", *where)
            marks[path + (name, KEY)] = where
            out[name] = _build(value_node, path + (name,), marks, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), marks, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def _content_start(node: yaml.Node) -> tuple[int, int]:
    mark = node.start_mark
    line, column = mark.line + 1, mark.column + 1
    style = getattr(node, "style", None) if isinstance(node, yaml.ScalarNode) else None
    if style in ('"', "'"):
        return line, column + 1
    if style in ("|", ">") and isinstance(mark.buffer, str):
        end = mark.buffer.find("\n", mark.pointer)
        if end >= 0:
            rest = mark.buffer[end + 1:]
            return line + 1, len(rest) - len(rest.lstrip(" ")) + 1
    return line, column
