"""Read one YAML document and remember where each value sits (line, column).

`load_with_marks(text)` returns the plain Python value and a map from a path
(a tuple of keys and list indexes) to its 1-based (line, column). The loader
uses it to point pydantic errors and CEL errors at the exact place in a file.
Duplicate mapping keys are errors (YAML silently keeps the last one).
Pure: takes text, never opens files.
"""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[Any, ...]
Marks = dict[Path, tuple[int, int]]


class YamlProblem(ValueError):
    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def load_with_marks(text: str) -> tuple[Any, Marks]:
    """Parse `text`; raise YamlProblem (with line and column) on bad YAML or duplicate keys."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            value = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlProblem(message or str(exc), mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(str(exc), None, None) from None
    marks: Marks = {}
    if node is not None:
        _walk(node, (), marks)
    return value, marks


def _walk(node: yaml.Node, path: Path, marks: Marks) -> None:
    marks[path] = _content_start(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            if key in seen:
                raise YamlProblem(
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
            seen[key] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), marks)
            # the key's own place: used for "unknown field" errors
            marks[path + (key, "<key>")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), marks)


def locate(marks: Marks, loc: Path, *, key: bool = False) -> tuple[int | None, int | None]:
    """The place of `loc`, or of its nearest ancestor present in the file."""
    path = tuple(loc)
    if key and path + ("<key>",) in marks:
        return marks[path + ("<key>",)]
    while path:
        if path in marks:
            return marks[path]
        path = path[:-1]
    return marks.get((), (None, None))


def _content_start(node: yaml.Node) -> tuple[int, int]:
    """Where a value's text begins: inside quotes, or on the line after a `|` / `>` indicator."""
    mark = node.start_mark
    line, column = mark.line + 1, mark.column + 1
    style = getattr(node, "style", None) if isinstance(node, yaml.ScalarNode) else None
    if style in ('"', "'"):
        return line, column + 1
    if style in ("|", ">") and isinstance(mark.buffer, str):
        end = mark.buffer.find("\n", mark.pointer)
        if end >= 0:
            rest = mark.buffer[end + 1:]
            stripped = rest.lstrip(" ")
            return line + 1, len(rest) - len(stripped) + 1
    return line, column
