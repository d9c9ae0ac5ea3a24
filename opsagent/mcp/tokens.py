"""The MCP token map: which bearer token authenticates which actor.

The file (`POLICIES/actors/mcp-tokens.yaml`) holds only SHA-256 hashes of
tokens, never the tokens:

    tokens:
      - actor: alice
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        groups: [oncall]          # optional

Every actor name passes `normalize_actor`, so a machine actor's name (or a
look-alike) can never be mapped; nor can `unauthenticated` (the actor of
refused requests in the audit log), nor two names that read alike (`carol`
and `cаrol` with a Cyrillic a), which the audit log would show as one
person. Lookups compare hashes in constant time.

Whoever can write the file can make a token for any name, so a file (or
its directory) that every local user may write is refused. A symlink is
followed (Kubernetes mounts ConfigMaps and Secrets through them) and the
file it ends at is checked.
Errors are `TokenFileError`: one line naming the file and the entry.
"""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsagent.model.actor import Actor, ActorNameError, normalize_actor, normalize_name, same_person

FILE_NAME = "mcp-tokens.yaml"
UNAUTHENTICATED = "unauthenticated"   # the actor of MCP audit rows for requests refused before anyone was known
RESERVED = frozenset({UNAUTHENTICATED})


def reserved_refusal(name: str) -> str | None:
    """Why `name` cannot be an MCP caller (it reads as a name MCP gives to nobody), or None."""
    if any(same_person(name, reserved) for reserved in RESERVED):
        return f"{name!r} is the name refused requests are audited under; it cannot be a caller"
    return None


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
        path = Path(path)
        try:
            _check_writers(path)
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
            if reserved_refusal(name):
                raise TokenFileError(f"{path}: tokens.{index}.actor: {entry.actor!r} is the name refused requests are "
                                     "audited under; map the token to a person")
            twin = next((other.name for _, other in entries if other.name != name and same_person(other.name, name)), None)
            if twin is not None:
                raise TokenFileError(f"{path}: tokens.{index}.actor: {entry.actor!r} reads like {twin!r} listed above; "
                                     "the audit log could not tell them apart")
            entries.append((entry.sha256, Actor(name=name, groups=groups, source=f"MCP bearer token ({path.name})")))
        return cls(entries)


def _check_writers(path: Path) -> None:
    """Refuse a token file that any local user could rewrite (the file a symlink ends at, or its directory)."""
    real = path.resolve(strict=True)
    mode = real.stat().st_mode
    if mode & stat.S_IWOTH:
        shown = path if real == path.absolute() else f"{path} (-> {real})"
        raise TokenFileError(f"{shown}: every local user may write it (mode {stat.filemode(mode)}), and so make a "
                             "token for any name; chmod o-w it")
    folder = real.parent.stat().st_mode
    if folder & stat.S_IWOTH and not folder & stat.S_ISVTX:
        raise TokenFileError(f"{path}: its directory {real.parent} lets every local user replace it "
                             f"(mode {stat.filemode(folder)}); chmod o-w the directory")


__all__ = ["FILE_NAME", "UNAUTHENTICATED", "reserved_refusal", "TokenEntry", "TokenFileError", "TokenMap", "default_path", "token_hash"]
