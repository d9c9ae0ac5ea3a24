"""The hash chain over audit rows: how a row's hash is made and how a log is verified.

Each row's hash is sha256(prev_hash + canonical JSON of the row's content), where
the content is every stored column except `id`, `prev_hash` and `hash`. The first
row's prev_hash is GENESIS. Pure functions over row dicts: no database access here.

The head (row count and the newest row's hash) is what to keep somewhere else:
a chain checked against a head noted earlier (`anchor`) also shows a deleted
tail or a history rewritten from the start, which the chain alone cannot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from opsagent.audit.schema import CONTENT_COLUMNS
from opsagent.model import canonical_json

GENESIS = "0" * 64


def content_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of a stored row, in a fixed key set."""
    return {name: row.get(name) for name in CONTENT_COLUMNS}


def row_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(dict(content))).encode()).hexdigest()


_ANCHOR = re.compile(r"^\s*([0-9]+)\s*:\s*([0-9a-fA-F]{64})\s*$", re.ASCII)


class AuditHead(BaseModel):
    """Where the chain ends: how many rows it holds and the newest row's hash (GENESIS when empty)."""

    model_config = ConfigDict(frozen=True)

    rows: int
    hash: str = GENESIS

    @property
    def anchor(self) -> str:
        """`ROWS:HASH`, the form `audit verify --expect-head` takes."""
        return f"{self.rows}:{self.hash}"


def parse_anchor(text: str) -> AuditHead:
    """`COUNT:HASH` (as `opsagent audit head` prints it) -> AuditHead; ValueError says what is wrong."""
    match = _ANCHOR.match(text or "")
    if match is None:
        raise ValueError(f"expected COUNT:HASH (a row count, a colon, 64 hex digits), got {text[:80]!r}")
    rows, digest = int(match.group(1)), match.group(2).lower()
    if rows == 0 and digest != GENESIS:
        raise ValueError(f"an empty log's head hash is {GENESIS[:8]}… (64 zeros); 0 rows cannot have another")
    return AuditHead(rows=rows, hash=digest)


class ChainReport(BaseModel):
    """The answer of `verify()`: intact or not, and if not, the first bad row and why."""

    ok: bool
    rows: int
    head_hash: str = GENESIS
    first_bad_id: int | None = None
    problem: str | None = None
    anchor: str | None = None           # the COUNT:HASH checked against, if any


def verify_rows(rows: Iterable[Mapping[str, Any]], *, anchor: AuditHead | None = None) -> ChainReport:
    """Walk rows in id order; stop at the first one that breaks the chain.

    An edited row fails its own hash. A deleted, inserted or reordered row shows
    as a row whose prev_hash is not the hash of the row stored before it. Removing
    the newest rows leaves a shorter chain that still verifies, and so does a
    chain rebuilt from scratch by someone holding the file: only `anchor` (a head
    noted earlier and kept elsewhere) shows those. With it, the log must hold at
    least `anchor.rows` rows and its row number `anchor.rows` must have that hash.
    """
    expected_prev, previous_id, count = GENESIS, None, 0
    at_anchor: str | None = None
    shown = anchor.anchor if anchor is not None else None
    for row in rows:
        count += 1
        rid = row["id"]
        if row["prev_hash"] != expected_prev:
            where = f"row {previous_id}" if previous_id is not None else "the start of the log"
            return ChainReport(
                ok=False, rows=count, head_hash=expected_prev, first_bad_id=rid,
                problem=(f"row {rid}: prev_hash does not match the hash of {where}; "
                         "a row was deleted, inserted or reordered here"),
            )
        if row_hash(row["prev_hash"], content_of(row)) != row["hash"]:
            return ChainReport(
                ok=False, rows=count, head_hash=expected_prev, first_bad_id=rid,
                problem=f"row {rid}: its content does not match its hash; the row was edited",
            )
        expected_prev, previous_id = row["hash"], rid
        if anchor is not None and count == anchor.rows:
            at_anchor = row["hash"]
    if anchor is not None and count < anchor.rows:
        return ChainReport(ok=False, rows=count, head_hash=expected_prev, anchor=shown,
                           problem=(f"the log holds {count} rows but the anchor {anchor.rows}:{anchor.hash[:16]}… expects "
                                    f"at least {anchor.rows}: rows were removed from its end, or the log was replaced"))
    if anchor is not None and anchor.rows > 0 and at_anchor != anchor.hash:
        return ChainReport(ok=False, rows=count, head_hash=expected_prev, anchor=shown,
                           problem=(f"row number {anchor.rows} has hash {str(at_anchor)[:16]}…, the anchor says "
                                    f"{anchor.hash[:16]}…: the history up to the anchor was rewritten"))
    return ChainReport(ok=True, rows=count, head_hash=expected_prev, anchor=shown)
