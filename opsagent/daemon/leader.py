"""One active daemon per cluster: a file lock locally, a Lease on a real cluster.

`Leader` is what the loop asks each cycle: `try_acquire()` (non-blocking; True
when this process leads now) and `release()`. `FileLeader` holds a `filelock`
next to the database's real file (`lock_path_for`): the path is resolved
first, so a symlink, a `dir/../ops.db` alias or a bind mount of the same
directory all reach the same lock; a database file with a second hard link is
refused (`check_single_name`), since nothing in its path would tell the two
names apart; `LeaseLeader` wraps opsagent.cluster.kube.lease (only
that package may import kubernetes). A standby keeps asking each cycle.

Once a `LeaseLeader` holds the Lease, a thread of its own renews it every
`lease_seconds / 3`, however long a cycle takes, so a standby never sees it
expire under a working leader. The first renewal that fails (another daemon
took the Lease, a conflict, an API error) drops leadership at once:
`still_leading()` turns False and `on_lost(reason)` is called, so the cycle in
progress stops acting before its next write; the loop's next `try_acquire()`
asks the API server again. A file lock cannot be lost while the process lives,
so `FileLeader` needs no thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable, Protocol

from filelock import FileLock, Timeout

from opsagent.cluster.port import ClusterError

log = logging.getLogger("opsagent.daemon")


class Leader(Protocol):
    identity: str
    where: str

    def try_acquire(self) -> bool: ...

    def still_leading(self) -> bool:
        """True while leadership taken by the last `try_acquire()` still holds (checked before each write)."""
        ...

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

    def still_leading(self) -> bool:
        return bool(self._lock.is_locked)

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def publish(self, annotations: dict[str, str]) -> None:
        return None  # the lock file is not a place anyone reads; /metrics and the log carry the head


class LeaseLeader:
    """Leader election through a coordination.k8s.io Lease (see opsagent.cluster.kube.lease), renewed on its own thread."""

    def __init__(self, lease: Any, *, renew_every: float | None = None,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self._lease = lease
        self.identity = lease.identity
        self.where = f"Lease {lease.namespace}/{lease.name}"
        self.renew_every = renew_every if renew_every is not None else lease.lease_seconds / 3
        self.on_lost: Callable[[str], None] = on_lost or (lambda reason: None)
        self.lost_reason = ""
        self._calls = threading.Lock()     # one Lease call at a time: the renewer and publish share a resourceVersion
        self._held = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        if self._held.is_set():
            return True                    # the renewer keeps it; losing it clears _held at once
        with self._calls:
            got = bool(self._lease.try_acquire())
        if got:
            self.lost_reason = ""
            self._held.set()
            self._start_renewing()
        return got

    def still_leading(self) -> bool:
        return self._held.is_set()

    def _start_renewing(self) -> None:
        if self._thread is not None:
            self._thread.join()            # a renewer that lost the Lease is on its way out
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="lease-renewer", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                with self._calls:
                    if self._stop.is_set():
                        return
                    kept = bool(self._lease.try_acquire())
                reason = "" if kept else f"lost the {self.where}: another daemon holds it or changed it first"
            except ClusterError as exc:
                kept, reason = False, f"lost the {self.where}: renewal failed: {exc.message}"
            except Exception as exc:  # boundary: any failure to renew means "not sure we lead", so stop acting
                kept, reason = False, f"lost the {self.where}: renewal failed: {type(exc).__name__}: {exc}"
            if not kept:
                self.lost_reason = reason
                self._held.clear()
                try:
                    self.on_lost(reason)
                except Exception:  # noqa: BLE001 - a bad callback must not hide the loss; _held is already clear
                    log.exception("leadership-lost callback failed")
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._held.clear()
        with self._calls:
            self._lease.release()

    def publish(self, annotations: dict[str, str]) -> None:
        with self._calls:
            self._lease.publish(annotations)
