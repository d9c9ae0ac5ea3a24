"""Small text helpers a tool's chat rendering uses (`Tool.show`, `Tool.phrase`). Pure."""

from __future__ import annotations

from typing import Any

from opsagent.clock import format_duration
from opsagent.model.text import one_line

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
    """Untrusted text (a model's words, its arguments) as one line: no control characters, no line breaks,
    no backticks, no format characters (a right-to-left override would redraw the rest of the line, a zero-width
    one hide a difference), cut to `limit`, so it cannot pass for a line of the reply or break its formatting."""
    return one_line(str(value).replace("`", "'"), limit)
