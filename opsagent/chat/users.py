"""Who a chat user is: the Slack user → actor mapping file, and `Actor`.

The mapping file is YAML:

    users:
      U0123ABC: alice
      U0456DEF: bob
    default: readonly     # or: none (unmapped users get no answers at all)

A mapped user acts as that actor (the name policy rules and approver lists
use), normalised like every actor name (`opsagent.model.actor`): a name that is
not a plain name, or that reads as one of opsagent's machine actors, makes the
whole file an error naming its line. An unmapped user gets read-only answers as actor `slack:<USER_ID>`, so the
audit log still says who asked. This module only reads the file; it does not
decide what an actor may do (the policy does) and it never talks to Slack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsagent.model import Frozen
from opsagent.model.actor import Actor, ActorNameError, normalize_actor
from opsagent.yamlfile import unreadable

__all__ = ["Actor", "UserMap", "UserMapError", "load_user_map"]


class UserMapError(ValueError):
    """The mapping file is unreadable or malformed; the message names file, line and field."""


class _MapFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: dict[str, str] = Field(default_factory=dict)
    default: Literal["readonly", "none"] = "readonly"


class UserMap(Frozen):
    users: dict[str, str] = Field(default_factory=dict)
    default: Literal["readonly", "none"] = "readonly"
    path: str | None = None

    def resolve(self, user_id: str) -> Actor | None:
        """The actor for a Slack user id; None when unmapped users get nothing."""
        name = self.users.get(user_id)
        if name:
            return Actor(name=name, source=f"slack:{user_id}")
        if self.default == "none":
            return None
        return Actor(name=f"slack:{user_id}", read_only=True, source=f"slack:{user_id}")


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(f"{key}:") or line.strip().startswith(f"'{key}':") or line.strip().startswith(f'"{key}":'):
            return number
    return None


def load_user_map(path: Path) -> UserMap:
    """Read a mapping file; raise `UserMapError` naming file, line and field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserMapError(f"{path}: cannot read the user mapping file ({unreadable(exc)})") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserMapError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(raw, dict):
        raise UserMapError(f"{path}:1: expected a mapping with 'users' and 'default'")
    try:
        parsed = _MapFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        line = _line_of(text, loc[-1]) or _line_of(text, loc[0]) or 1
        raise UserMapError(f"{path}:{line}: field '{'.'.join(loc)}': {err['msg']}") from exc
    users: dict[str, str] = {}
    for user_id, actor in parsed.users.items():
        line = _line_of(text, user_id) or 1
        if actor.strip().casefold().startswith("slack:"):
            raise UserMapError(f"{path}:{line}: field 'users.{user_id}': actor name must be a plain name, got {actor!r}")
        try:
            users[user_id] = normalize_actor(actor)
        except ActorNameError as exc:
            raise UserMapError(f"{path}:{line}: field 'users.{user_id}': {exc}; map people to their own names") from None
    return UserMap(users=users, default=parsed.default, path=str(path))
