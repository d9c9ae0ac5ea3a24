"""The hash chain over audit rows: how a row's hash is made and how a log is verified.

Each row's hash is sha256(prev_hash + canonical JSON of the row's content), where
the content is every stored column except `id`, `prev_hash` and `hash`. The first
row's prev_hash is GENESIS. Pure functions over row dicts: no database access here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from opsagent.audit.schema import CONTENT_COLUMNS
from opsagent.model import canonical_json

GENESIS = "0" * 64


def content_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of a stored row, in a fixed key set."""
    return {name: row.get(name) for name in CONTENT_COLUMNS}


def row_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(dict(content))).encode()).hexdigest()


class ChainReport(BaseModel):
    """The answer of `verify()`: intact or not, and if not, the first bad row and why."""

    ok: bool
    rows: int
    head_hash: str = GENESIS
    first_bad_id: int | None = None
    problem: str | None = None


def verify_rows(rows: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Walk rows in id order; stop at the first one that breaks the chain.

    An edited row fails its own hash. A deleted, inserted or reordered row shows
    as a row whose prev_hash is not the hash of the row stored before it. Removing
    the newest rows leaves a shorter chain that still verifies: keep the reported
    head hash somewhere else (an export, a ticket) to detect that.
    """
    expected_prev, previous_id, count = GENESIS, None, 0
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
    return ChainReport(ok=True, rows=count, head_hash=expected_prev)
