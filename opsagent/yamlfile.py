"""Read a human-written YAML file into a pydantic model, with errors that point at file:line:column.

Policies, playbooks, scenarios and route files are written by people; when one
is wrong, the message must name the file, the line and the field, and say what
was expected. Positions come from `opsagent.yamlmarks`, so a pydantic error location such
as ('routes', 2, 'upstream') maps back to where that value was written.

No I/O beyond reading the file it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from opsagent.yamlmarks import Marks, YamlProblem, load_with_marks, locate

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


def unreadable(exc: OSError | UnicodeDecodeError) -> str:
    """Why a text file could not be read, in words: the OS reason, or where it stops being UTF-8 text."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); is it a binary file?"
    return exc.strerror or str(exc)


def read_yaml(path: str | Path) -> tuple[Any, "Located"]:
    """Parse a YAML file; syntax errors become a FileError with the position."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError([Problem(file, None, None, "", f"cannot read file: {unreadable(exc)}")]) from None
    return parse_yaml(text, file=file)


def parse_yaml(text: str, *, file: str) -> tuple[Any, "Located"]:
    try:
        data, marks = load_with_marks(text)
    except YamlProblem as exc:
        raise FileError([Problem(file, exc.line, exc.column, "", exc.message)]) from None
    return data, Located(file, marks)


@dataclass(frozen=True)
class Located:
    """Which file the data came from, and where each part was written."""

    file: str
    marks: Marks

    def position(self, loc: tuple[Any, ...], *, key: bool = False) -> tuple[int | None, int | None]:
        return locate(self.marks, loc, key=key)


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems_from(error: ValidationError, located: Located, *, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = prefix + tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        unknown = item["type"] == "extra_forbidden"
        line, column = located.position(loc, key=unknown)
        message = item["msg"]
        if unknown:
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
