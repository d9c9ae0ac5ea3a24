"""Small text helpers a tool's chat rendering uses (`Tool.show`, `Tool.phrase`). Pure.

A write's `show` is built with `shows(Model, describe)`: `describe` turns the typed result into the
object it changed and the change in words; `changed` makes the line (the object plain, in backticks,
and "dry run" said when nothing changed). A tool's `phrase` is built with `phrased(...)`, which gets the
call's subject (`call_subject`: NS/NAME, the node, or the namespace, already plain) and its raw arguments.
Anything from the cluster or a model goes through `plain` (a name) or `quoted` (a message) first.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Self, TypeVar

from pydantic import ValidationError

from opsagent.clock import format_duration
from opsagent.model import ToolResult
from opsagent.model.text import one_line, quoted

MAX_ROWS = 20


def pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}%"


def ago(seconds: Any) -> str:
    if seconds is None:
        return "-"
    return format_duration(float(seconds), parts=2)


def more(rows: list[Any], count: int | None) -> list[str]:
    total = count if isinstance(count, int) else len(rows)
    return [f"  … and {total - MAX_ROWS} more"] if total > MAX_ROWS else []


def plain(value: Any, limit: int = 120) -> str:
    """Untrusted text (a model's words, its arguments, cluster text) as one inert line: see
    `opsagent.model.text.one_line` (no escape sequences, control or format characters, line breaks or backticks)."""
    return one_line(value, limit)


def arrow(before: Any, after: Any, limit: int = 60) -> str:
    """`before → after` as plain text, or just `after (unchanged)` when they are the same."""
    if before == after:
        return f"{plain(after, limit)} (unchanged)"
    return f"{plain('none' if before is None else before, limit)} → {plain('none' if after is None else after, limit)}"


# --- what an ok write shows in chat -----------------------------------------------------------


class _Typed(Protocol):
    @classmethod
    def of(cls, result: ToolResult) -> Self: ...


Data = TypeVar("Data", bound=_Typed)


def changed(subject: Any, change: str, *, dry_run: bool = False) -> str:
    """One line naming the object (made plain, in backticks) and its change; a dry run says nothing changed."""
    head = "dry run, nothing changed: " if dry_run else ""
    return f"{head}`{plain(subject, 253)}`: {change}"


def shows(model: type[Data], describe: Callable[[Data], tuple[Any, str] | tuple[Any, str, str]]) -> Callable[[ToolResult], list[str]]:
    """A `Tool.show` from the tool's result model: `describe(data)` gives (object, change[, a second line])."""
    def show(result: ToolResult) -> list[str]:
        try:
            data = model.of(result)
        except ValidationError:  # an ok result that carries no data of the tool's (replayed, recovered after a crash)
            return [result.message or f"{result.tool}: {result.status}"]
        subject, change, *rest = describe(data)
        return [changed(subject, change, dry_run=bool(getattr(data, "dry_run", False))), *(f"  {line}" for line in rest)]
    return show


# --- how a pending call reads in an approval request -------------------------------------------


def call_subject(args: dict[str, Any]) -> str:
    """What a call names, made plain: NS/NAME, else the node, else the namespace; "" when it names none."""
    if args.get("namespace") and args.get("name"):
        return f"{plain(args['namespace'], 63)}/{plain(args['name'], 253)}"
    for key, limit in (("node", 253), ("namespace", 63)):
        if args.get(key):
            return plain(args[key], limit)
    return ""


def phrased(verb: str, *, where: str = "", details: Callable[[dict[str, Any]], str] | None = None,
            alone: str = "") -> Callable[[str, dict[str, Any]], str]:
    """A `Tool.phrase`: "VERB `subject`" (or "VERB WHERE `subject`" for a read that narrows), then `details(args)`.
    `alone` is what the call reads as when it names no subject (a read over the whole cluster)."""
    def phrase(subject: str, args: dict[str, Any]) -> str:
        head = f"{verb}{where} `{subject}`" if subject else (alone or verb)
        extra = details(args) if details is not None else ""
        return f"{head}{extra}"
    return phrase


def given(args: dict[str, Any], *keys: str, limit: int = 40) -> str:
    """The named arguments the call gives, as "k v, k v" (plain); "" when it gives none of them."""
    return ", ".join(f"{k} {plain(args[k], limit)}" for k in keys if args.get(k) is not None)


__all__ = ["MAX_ROWS", "ago", "arrow", "call_subject", "changed", "given", "more", "one_line", "pct", "phrased", "plain",
           "quoted", "shows"]
