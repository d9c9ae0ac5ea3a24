"""Text from outside (the cluster, a model) made fit to show a person: one line, nothing hidden. Pure."""

from __future__ import annotations

import unicodedata
from typing import Any


def one_line(value: Any, limit: int) -> str:
    """`value` as one line: control characters and line or paragraph separators become spaces, format characters
    go (a right-to-left override would redraw the rest of the line, a zero-width one hide a difference), runs of
    spaces become one, and it is cut to `limit` with an ellipsis. So it cannot pass for a line of its own."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(value)
                   if unicodedata.category(c) != "Cf")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
