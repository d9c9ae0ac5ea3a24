"""Problems found in policy files, and the error that carries them.

A `Problem` names the file, line, column and field of one mistake, with a
hint on how to fix it. `PolicyError` lists every error found in one load, so
an operator fixes them all in one pass. Pure: no I/O, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: int | None
    message: str
    hint: str | None = None
    field: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        text = f"{place}: {self.severity}: "
        if self.field:
            text += f"{self.field}: "
        text += self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file, "line": self.line, "column": self.column, "field": self.field,
            "severity": self.severity, "message": self.message, "hint": self.hint,
        }


class PolicyError(ValueError):
    """One or more errors in a policy directory; `problems` lists each with its place."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in policy:\n{lines}")
