"""One active daemon per cluster: a file lock locally, a Lease on a real cluster.

`Leader` is what the loop asks each cycle: `try_acquire()` (non-blocking; True
when this process leads now) and `release()`. `FileLeader` holds a `filelock`
next to the database's real file (`lock_path_for`): the path is resolved
first, so a symlink, a `dir/../ops.db` alias or a bind mount of the same
directory all reach the same lock; a database file with a second hard link is
refused (`check_single_name`), since nothing in its path would tell the two
names apart; `LeaseLeader` wraps opsagent.cluster.kube.lease (only
that package may import kubernetes). A standby keeps asking each cycle.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout


class Leader(Protocol):
    identity: str
    where: str

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def publish(self, annotations: dict[str, str]) -> None:
        """Note facts (the audit head) where other people can read them; a file lock has nowhere to."""
        ...


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def lock_path_for(db: Path) -> Path:
    """The lock file of a database: `<real path of opsagent.db>.lock`, next to the real file.

    Resolved (symlinks followed, `..` removed) so every alias of one database names one lock.
    """
    real = Path(os.path.realpath(db))
    return real.with_name(real.name + ".lock")


def check_single_name(db: Path) -> None:
    """Raise ValueError when the database file has more than one hard link: a second name in another
    directory would lock a different file, and two daemons would lead on one database."""
    try:
        st = os.stat(db)
    except FileNotFoundError:
        return
    if st.st_nlink > 1:
        raise ValueError(f"--db {db}: the database file (device {st.st_dev}, inode {st.st_ino}) has {st.st_nlink} "
                         "hard links; a leader lock cannot tell its names apart, so keep one name "
                         "(use a symlink for an alias)")


class FileLeader:
    def __init__(self, path: Path, *, identity: str | None = None) -> None:
        self.path = Path(path)
        self.identity = identity or default_identity()
        self.where = f"lock file {self.path}"
        self._lock = FileLock(str(self.path), thread_local=False)

    def try_acquire(self) -> bool:
        if self._lock.is_locked:
            return True
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def publish(self, annotations: dict[str, str]) -> None:
        return None  # the lock file is not a place anyone reads; /metrics and the log carry the head


class LeaseLeader:
    """Leader election through a coordination.k8s.io Lease (see opsagent.cluster.kube.lease)."""

    def __init__(self, lease: Any) -> None:
        self._lease = lease
        self.identity = lease.identity
        self.where = f"Lease {lease.namespace}/{lease.name}"

    def try_acquire(self) -> bool:
        return bool(self._lease.try_acquire())

    def release(self) -> None:
        self._lease.release()

    def publish(self, annotations: dict[str, str]) -> None:
        self._lease.publish(annotations)
