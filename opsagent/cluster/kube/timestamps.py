"""Kubernetes timestamps (RFC 3339, usually with a `Z`) as aware datetimes; anything unreadable is None.

One without a time zone (the API always sends one; a proxy or a hand-made object may not) is read as UTC, so no
reader compares it with an aware time and fails."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        found = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=timezone.utc)
