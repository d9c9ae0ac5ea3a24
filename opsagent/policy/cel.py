"""CEL expressions for policy conditions and playbook checks: compiled once, evaluated many times.

CEL is the expression language Kubernetes uses in ValidatingAdmissionPolicy and
DRA device selectors, so operators can reuse what they know. This module wraps
the Rust-backed `cel` package behind two names (`compile_expr`, `Expr`) and
turns its errors into `CelError` with the place (file, field), line and column.

It must stay pure: no I/O, no clock. Evaluation errors never escape `Expr.test`:
a condition that cannot be evaluated does not match, and says why.
"""

from __future__ import annotations

import re
from typing import Any

import cel as _cel

_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


class CelError(ValueError):
    """A CEL expression that does not compile, or names a variable that does not exist."""

    def __init__(self, message: str, *, where: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.where = where
        self.line = line
        self.column = column
        position = f":{line}:{column}" if line is not None else ""
        super().__init__(f"{where}{position}: {message}")


def fields_read(source: str, variable: str) -> frozenset[str] | None:
    """The first-level fields of `variable` the expression reads (`target.idle_minutes` -> idle_minutes).

    None when the variable is ever used other than as `variable.field` (passed
    whole, indexed, shadowed by a macro): then the whole value is needed. The
    answer may name too many fields (a string literal that looks like an
    access), never too few.
    """
    fields = set()
    for match in re.finditer(rf"\b{re.escape(variable)}\b", source):
        field = _FIELD.match(source, match.end())
        if field is None:
            return None
        fields.add(field.group(1))
    return frozenset(fields)


_FIELD = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


class Expr:
    """A compiled CEL expression. Thread-safe to evaluate; holds no context.

    The runtime converts every value it is handed, so a map variable is handed
    over with only the fields the expression reads (see `fields_read`): the
    result is the same, the conversion is smaller.
    """

    __slots__ = ("_narrow", "_program", "source", "variables", "where")

    def __init__(self, source: str, where: str, program: Any, variables: frozenset[str]) -> None:
        self.source = source
        self.where = where
        self.variables = variables
        self._program = program
        self._narrow = tuple(
            (name, fields) for name in sorted(variables) if (fields := fields_read(source, name)) is not None
        )

    def activation(self, context: dict[str, Any]) -> dict[str, Any]:
        """`context` with each map variable cut down to the fields the expression reads."""
        if not self._narrow:
            return context
        out = dict(context)
        for name, fields in self._narrow:
            value = out.get(name)
            if isinstance(value, dict):
                out[name] = {k: value[k] for k in fields if k in value}
        return out

    def evaluate(self, context: dict[str, Any]) -> Any:
        """The expression's value. Raises CelEvalError when it cannot be evaluated."""
        try:
            return self._program.execute(self.activation(context))
        except Exception as exc:  # the cel runtime raises several builtin types
            raise CelEvalError(f"{self.where}: {type(exc).__name__}: {exc}") from exc

    def check(self, context: dict[str, Any]) -> tuple[bool, str | None]:
        """(matched, error): matched only when the expression evaluates to boolean true.

        A missing field, a type error or a non-boolean result does not match,
        and `error` says why (for fail-closed rules and `policy explain`). The
        error travels with the value: nothing is kept on the expression, so
        threads deciding at once never see each other's errors.
        """
        try:
            value = self._program.execute(self.activation(context))
        except Exception as exc:  # see evaluate()
            return False, f"{type(exc).__name__}: {exc}"
        if not isinstance(value, bool):
            return False, f"expected a boolean, got {type(value).__name__} {value!r}"
        return value, None

    def test(self, context: dict[str, Any]) -> bool:
        """True only when the expression evaluates to boolean true (see `check` for the reason when not)."""
        return self.check(context)[0]

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"


class CelEvalError(RuntimeError):
    """A compiled expression failed at run time (missing key, type mismatch)."""


def compile_expr(source: str, *, where: str, variables: set[str] | frozenset[str] | None = None) -> Expr:
    """Compile `source`; `where` names its place (e.g. 'policies/gpu.yaml:rules[2].when').

    When `variables` is given, referring to any other top-level name is an
    error at compile time (a typo such as `arg.replicas` fails lint, not
    silently at 3 a.m.).
    """
    if not isinstance(source, str) or not source.strip():
        raise CelError("empty expression", where=where)
    try:
        program = _cel.compile(source)
    except ValueError as exc:
        text = str(exc)
        match = _POSITION.search(text)
        if match:
            detail = match.group(3).split("\n")[0]
            raise CelError(detail, where=where, line=int(match.group(1)), column=int(match.group(2))) from None
        raise CelError(text, where=where) from None
    used = frozenset(program.variables())
    if variables is not None:
        unknown = sorted(used - set(variables))
        if unknown:
            raise CelError(
                f"unknown variable(s) {', '.join(unknown)}; available: {', '.join(sorted(variables))}",
                where=where,
                line=1,
                column=_first_column(source, unknown[0]),
            )
    return Expr(source, where, program, used)


def _first_column(source: str, name: str) -> int:
    match = re.search(rf"\b{re.escape(name)}\b", source)
    return (match.start() + 1) if match else 1
