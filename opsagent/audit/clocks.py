"""Which clock an audit database runs on, and a clock that reads its time back.

A database written against the simulator carries virtual times (the demo
scenario starts on 5 January 2026); one written against a real cluster carries
wall-clock times. Anything that later judges time against those records
(approval expiry, `--since 2h`, GPU-hours freed up to now) must use the clock
the records were made on, or a simulated day looks long expired (or not yet begun).

A live runtime notes its clock kind in the database (`ApprovalQueue` does so
when it is opened with a `VirtualClock` or a `RealClock`). Commands that act on
the database afterwards take `database_clock(store)`: the wall clock for a real
database (or one that never noted a kind), and for a virtual one a
`RecordedClock`, whose now is the newest time recorded in the audit log: the
simulated moment the run stopped. This module reads and notes; it never appends
audit rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from opsagent.clock import Clock, RealClock, VirtualClock

if TYPE_CHECKING:
    from opsagent.audit.store import AuditStore

ClockKind = Literal["virtual", "real"]
CLOCK_KINDS: tuple[ClockKind, ...] = ("virtual", "real")


def clock_kind_of(clock: object) -> ClockKind | None:
    """'virtual' or 'real' for the two clocks a runtime runs on; None for anything else
    (a `RecordedClock`, a test double), which then notes nothing."""
    if isinstance(clock, VirtualClock):
        return "virtual"
    if isinstance(clock, RealClock):
        return "real"
    return None


class RecordedClock:
    """The time a virtual-clock database stopped at: the newest time in its audit log.

    It never moves by itself (`sleep` waits for nothing) and reads the log on every
    `now()`, so rows appended meanwhile count. An empty log falls back to the wall clock.
    """

    def __init__(self, store: "AuditStore") -> None:
        self._store = store

    def now(self) -> datetime:
        latest = self._store.latest_time()
        return latest if latest is not None else RealClock().now()

    def sleep(self, seconds: float) -> None:
        return None

    def monotonic(self) -> float:
        return self.now().timestamp()


def database_clock(store: "AuditStore") -> Clock:
    """The clock to judge this database's records by (see the module docstring)."""
    return RecordedClock(store) if store.clock_kind() == "virtual" else RealClock()
