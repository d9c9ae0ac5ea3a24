"""Small text helpers a tool's chat rendering uses (`Tool.show`, `Tool.phrase`). Pure."""

from __future__ import annotations

from typing import Any

from opsagent.clock import format_duration
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


__all__ = ["MAX_ROWS", "ago", "more", "one_line", "pct", "plain", "quoted"]
