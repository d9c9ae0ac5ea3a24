"""Matching tool names against a rule's names and globs, over a risk table it is handed.

The policy layer must not import the tools package (it stays pure and below
it), yet the loader must refuse a rule that would allow an architectural
tool. So it keeps no list of tools: whoever loads the policy hands it the
tool catalogue's table (`tools.risk_table()`, name -> risk class). Pure.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable, Mapping

# Tools whose `namespace` and `name` arguments name a pod: their CEL `target.pod` holds that pod's facts.
POD_TOOLS = frozenset({"describe_pod", "delete_pod"})


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    return any(p == name or (is_glob(p) and fnmatchcase(name, p)) for p in patterns)


def tools_matched(patterns: Iterable[str], tool_risks: Mapping[str, str]) -> list[str]:
    """The known tools a list of names/globs covers."""
    pats = tuple(patterns)
    return [name for name in tool_risks if matches_any(name, pats)]
