"""The MCP token map: which bearer token authenticates which actor.

The file (`POLICIES/actors/mcp-tokens.yaml`) holds only SHA-256 hashes of
tokens, never the tokens:

    tokens:
      - actor: alice
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        groups: [oncall]          # optional

Every actor name passes `normalize_actor`, so a machine actor's name (or a
look-alike) can never be mapped. Lookups compare hashes in constant time.
Errors are `TokenFileError`: one line naming the file and the entry.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsagent.model.actor import Actor, ActorNameError, normalize_actor, normalize_name

FILE_NAME = "mcp-tokens.yaml"


class TokenFileError(Exception):
    """The token file cannot be used; the message names the file and the entry."""


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the bearer token")
    groups: tuple[str, ...] = ()


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry] = Field(default_factory=list)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def default_path(policies: Path) -> Path:
    return Path(policies) / "actors" / FILE_NAME


class TokenMap:
    """Bearer token -> `Actor`, from hashes only."""

    def __init__(self, entries: list[tuple[str, Actor]]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def actor_for(self, token: str | None) -> Actor | None:
        """The actor a presented token belongs to, or None (missing, empty or unknown)."""
        if not token:
            return None
        digest = token_hash(token)
        found = None
        for known, actor in self._entries:  # no early exit: every entry is compared
            if hmac.compare_digest(known, digest):
                found = actor
        return found

    @classmethod
    def load(cls, path: Path) -> "TokenMap":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise TokenFileError(f"{path}: no such token file") from None
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{path}: cannot read it: {str(exc).splitlines()[0]}") from None
        try:
            parsed = TokenFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise TokenFileError(f"{path}: {where}: {first['msg']}") from None
        entries: list[tuple[str, Actor]] = []
        seen: set[str] = set()
        for index, entry in enumerate(parsed.tokens):
            if entry.sha256 in seen:
                raise TokenFileError(f"{path}: tokens.{index}: the same token hash is listed twice")
            seen.add(entry.sha256)
            try:
                name = normalize_actor(entry.actor)
                groups = tuple(normalize_name(g, what="group") for g in entry.groups)
            except ActorNameError as exc:
                raise TokenFileError(f"{path}: tokens.{index}.actor: {exc}") from None
            entries.append((entry.sha256, Actor(name=name, groups=groups, source=f"MCP bearer token ({path.name})")))
        return cls(entries)


__all__ = ["FILE_NAME", "TokenEntry", "TokenFileError", "TokenMap", "default_path", "token_hash"]
