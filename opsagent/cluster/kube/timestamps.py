"""Kubernetes timestamps (RFC 3339, usually with a `Z`) as aware datetimes; anything unreadable is None."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
