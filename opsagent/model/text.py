"""Text from outside shown to people: the one sanitiser for the terminal and for Slack. Pure.

Cluster text (annotations, event and termination messages, image and workload
names) and a model's words reach a person's terminal and Slack channel. Shown
raw they could

- drive the terminal: ANSI escape sequences recolour, move the cursor, clear
  the screen or set the window title; other control characters overwrite what
  was printed;
- forge lines: a line break inside a message starts a line that reads like one
  of opsagent's own (`done: ...`, `waiting for approval #3 ...`); a
  right-to-left override redraws the rest of a line, a zero-width character
  hides a difference;
- speak in Slack: `<!channel>` and `<!here>` notify everyone, `<@U123>` pings
  a person, `<http://evil|the runbook>` is a link that reads as something
  else, and backticks end opsagent's code spans.

`one_line` makes untrusted text one inert line (used for every value inside a
line opsagent writes); `safe_line` does the same to a line opsagent composed
(its own backticks stay); `safe_lines` to a block of them; `quoted` wraps
untrusted text in quotes, so it reads as a quotation, not as opsagent's words;
`slack_escape` turns Slack's control characters into the entities Slack shows
as the characters themselves.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-character escapes, and the 8-bit CSI (U+009B).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")


def _clean(text: str) -> str:
    """Escape sequences dropped, format characters (bidi overrides, zero-width) dropped, other control characters
    and line or paragraph separators as spaces."""
    text = _ESCAPES.sub("", text)
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text
                   if unicodedata.category(c) != "Cf")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(value: Any, limit: int = 120) -> str:
    """Untrusted text as one inert line: no escape sequences, control or format characters, no line breaks, no
    backticks (they would close opsagent's code spans), whitespace runs as one space, cut to `limit`."""
    return _cut(" ".join(_clean(str(value)).replace("`", "'").split()), limit)


def quoted(value: Any, limit: int = 200) -> str:
    """`one_line(value)` in double quotes: a message from the cluster reads as a quotation, never as opsagent's."""
    return '"' + one_line(value, limit).replace('"', "'") + '"'


def safe_line(line: Any, limit: int = 2000) -> str:
    """A line opsagent composed, made inert the same way but keeping its own backticks and spacing."""
    return _cut(_clean(str(line)).rstrip(), limit)


def safe_lines(text: str) -> str:
    """A block of lines opsagent composed, each line through `safe_line` (its line breaks are its own)."""
    return "\n".join(safe_line(line) for line in str(text).split("\n"))


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn with `&`, `<` and `>` as the entities Slack shows as those characters, so no
    `<!channel>`, `<@U…>` or `<url|label>` inside it is acted on. A `>` that starts a line stays: it is
    opsagent's own block quote (untrusted text never starts a line)."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;")
    return "\n".join(line[:1] + line[1:].replace(">", "&gt;") if line.startswith(">") else line.replace(">", "&gt;")
                     for line in text.split("\n"))


__all__ = ["one_line", "quoted", "safe_line", "safe_lines", "slack_escape"]
