"""Where the files opsagent ships with are: policies, playbooks and eval scenarios.

In a source checkout (and an editable install) they are the repository's own
top-level folders. In an installed wheel they are package data under
`opsagent/defaults/`, laid out the same way (`policies/`, `playbooks/`,
`evals/scenarios/`), copied there when the wheel is built (see setup.py).
Everything that needs a shipped file asks `root()`; nothing else guesses
paths relative to the source tree.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED = _PACKAGE / "defaults"
_CHECKOUT = _PACKAGE.parent


def root() -> Path:
    """The folder holding `policies/`, `playbooks/` and `evals/scenarios/` as shipped."""
    return _INSTALLED if (_INSTALLED / "policies").is_dir() else _CHECKOUT


def path(*parts: str) -> Path:
    """A shipped file or folder, e.g. `path("policies")` or `path("evals", "scenarios")`."""
    return root().joinpath(*parts)
