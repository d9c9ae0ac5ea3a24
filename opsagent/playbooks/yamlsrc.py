"""Read a YAML file keeping where every value was written (line and column).

`load_with_marks(text)` returns plain data plus a map from a path such as
('playbooks', 2, 'steps', 0, 'tool') to its 1-based (line, column), so schema
errors can name the exact place. Mapping keys are kept as written (`on` stays
the string 'on', not YAML 1.1's boolean), and a key written twice is an error
instead of a silent overwrite. No I/O beyond the text handed in.
"""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[Any, ...]


class YamlError(ValueError):
    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        self.message, self.line, self.column = message, line, column
        super().__init__(message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_with_marks(text: str) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlError(f"YAML syntax: {exc.problem or exc}", line=line, column=column) from None
    marks: dict[Path_, tuple[int, int]] = {}
    if root is None:
        return None, marks
    constructor = yaml.SafeLoader("")
    return _build(root, (), marks, constructor), marks


def _build(node: yaml.Node, path: Path_, marks: dict, constructor: yaml.SafeLoader) -> Any:
    marks.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError("mapping keys must be plain names", line=_mark(key_node)[0], column=_mark(key_node)[1])
            key = key_node.value
            if key in out:
                line, column = _mark(key_node)
                raise YamlError(f"key {key!r} is written twice", line=line, column=column)
            marks[path + (key,)] = _mark(key_node)
            out[key] = _build(value_node, path + (key,), marks, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), marks, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def mark_for(marks: dict[Path_, tuple[int, int]], path: Path_) -> tuple[int | None, int | None]:
    """The mark of `path`, or of its nearest written ancestor."""
    path = tuple(path)
    while path:
        if path in marks:
            return marks[path]
        path = path[:-1]
    return marks.get((), (None, None))
