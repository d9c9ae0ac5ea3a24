"""Is the process that claimed an approval's execution still running it?

An approved call runs once: the claimant commits a claim record to the audit
chain before it runs the call. A second claimant that finds the claim with no
result must tell two cases apart: the first claimant is still running the call
(leave it alone), or it died mid-call (mark the request failed, never run it
again). This module answers that with an operating-system lock the claimant
holds for exactly as long as it runs the call: one byte, at offset = approval
id, of the file `<db>.claims` next to the database. The kernel drops the lock
when its process dies, whatever the host name, pid reuse or clock. Threads of
one process share its locks, so the claims a process holds are also kept in
memory here.

POSIX record locks belong to a process and are released when any descriptor
of the file closes, so each process opens the file once and keeps it open.
It decides nothing about approvals; the queue does. The agent takes the same
kind of lock for a run it is driving (opsagent/agent/runner.py), at offsets
past every approval id.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

_guard = threading.Lock()
_files: dict[Path, int] = {}
_held: set[tuple[Path, int]] = set()


def claims_path(db: Path) -> Path | None:
    """The lock file of a database, or None for an in-memory one (a single process)."""
    if str(db) in ("", ":memory:"):
        return None
    db = Path(db).resolve()  # one key per file: two descriptors of one file would undo each other's locks
    return db.with_name(db.name + ".claims")


def _fd(path: Path) -> int:
    fd = _files.get(path)
    if fd is None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        _files[path] = fd
    return fd


def _try_lock(fd: int, approval_id: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, approval_id)
    except OSError:
        return False
    return True


def hold(path: Path | None, approval_id: int) -> bool:
    """Take the run lock of one approval for this process; False when someone else holds it."""
    with _guard:
        if path is not None and (path, approval_id) in _held:
            return False
        if path is None:
            key = (Path(":memory:"), approval_id)
            if key in _held:
                return False
            _held.add(key)
            return True
        if not _try_lock(_fd(path), approval_id):
            return False
        _held.add((path, approval_id))
        return True


def release(path: Path | None, approval_id: int) -> None:
    """Let go of a run lock this process holds (after the result is committed)."""
    with _guard:
        key = (path if path is not None else Path(":memory:"), approval_id)
        if key not in _held:
            return
        _held.discard(key)
        if path is not None:
            fcntl.lockf(_fd(path), fcntl.LOCK_UN, 1, approval_id)


def running(path: Path | None, approval_id: int) -> bool:
    """True while some live process (this one included) holds the run lock of `approval_id`."""
    with _guard:
        key = (path if path is not None else Path(":memory:"), approval_id)
        if key in _held:
            return True
        if path is None:
            return False
        fd = _fd(path)
        if not _try_lock(fd, approval_id):
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, approval_id)
        return False
