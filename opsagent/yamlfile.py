"""Read a human-written YAML file into a pydantic model, with errors that point at file:line:column.

Policies, playbooks, scenarios and route files are written by people; when one
is wrong, the message must name the file, the line and the field, and say what
was expected. This module keeps the YAML node positions (via `yaml.compose`)
so a pydantic error location such as ('rules', 2, 'effect') maps back to the
line where that value was written.

No I/O beyond reading the file it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class FileError(ValueError):
    """One or more problems in one file. `str()` lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Located:
    """YAML data plus a way to find where any part of it was written."""

    def __init__(self, file: str, node: yaml.Node | None) -> None:
        self.file = file
        self.node = node

    def position(self, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
        """1-based (line, column) of the deepest node on the path `loc`."""
        node = self.node
        if node is None:
            return None, None
        best = node
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node = best = child
        return best.start_mark.line + 1, best.start_mark.column + 1


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


def read_yaml(path: str | Path) -> tuple[Any, Located]:
    """Parse a YAML file; syntax errors become a FileError with the position."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FileError([Problem(file, None, None, "", f"cannot read file: {exc.strerror or exc}")]) from None
    return parse_yaml(text, file=file)


def parse_yaml(text: str, *, file: str) -> tuple[Any, Located]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise FileError([Problem(file, line, column, "", f"invalid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise FileError([Problem(file, None, None, "", f"invalid YAML: {exc}")]) from None
    return data, Located(file, node)


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems_from(error: ValidationError, located: Located, *, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = prefix + tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        line, column = located.position(loc)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the docs for the fields this section takes)"
        problems.append(Problem(located.file, line, column, field_path(loc), message))
    return problems


def validate_yaml(model: type[M], data: Any, located: Located) -> M:
    """Validate parsed YAML against `model`; errors name file:line:column and the field."""
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FileError(problems_from(exc, located)) from None


def load_model(model: type[M], path: str | Path) -> M:
    data, located = read_yaml(path)
    return validate_yaml(model, data, located)
