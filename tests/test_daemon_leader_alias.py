"""One leader per database, whatever name the database is given.

Promise tried here: the daemon's file lock is keyed by the database's real
file, not by the path string on the command line. While one holder has the
lock for `ops.db`, a second daemon started on `alias.db` (a symlink to it) or
on `sub/../ops.db` does not lead (`daemon --once` exits 3 and changes nothing),
and a lock held by another process through the alias stops this one. A
database file with a second hard link is refused with a one-line message, since
no path could tell its two names apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opsagent.audit import AuditStore
from opsagent.daemon.leader import FileLeader, lock_path_for

REPO = Path(__file__).resolve().parents[1]
OPSAGENT = str(Path(sys.executable).parent / "opsagent")


def daemon_once(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([OPSAGENT, "daemon", "--once", "--cluster", "sim:demo", "--db", str(db),
                           "--policies", str(REPO / "policies"), "--playbooks", str(REPO / "playbooks")],
                          capture_output=True, text=True, timeout=300, cwd=db.parent,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_every_alias_of_the_database_names_the_same_lock(tmp_path):
    db = tmp_path / "ops.db"
    AuditStore(db).close()  # a real opsagent database (an empty file is refused)
    (tmp_path / "alias.db").symlink_to(db)
    (tmp_path / "sub").mkdir()
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(tmp_path, target_is_directory=True)
    names = [tmp_path / "alias.db", tmp_path / "sub" / ".." / "ops.db", linked_dir / "ops.db", Path(os.path.relpath(db))]
    assert {lock_path_for(n) for n in names} == {lock_path_for(db)}


def test_a_symlinked_database_cannot_lead_while_the_real_one_is_held(tmp_path):
    db = tmp_path / "ops.db"
    AuditStore(db).close()  # a real opsagent database (an empty file is refused)
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)
    (tmp_path / "sub").mkdir()
    holder = FileLeader(lock_path_for(db), identity="first")
    assert holder.try_acquire()
    try:
        for name in (alias, tmp_path / "sub" / ".." / "ops.db"):
            out = daemon_once(name)
            assert out.returncode == 3, out.stderr[-2000:]
            assert "not the leader" in out.stderr
    finally:
        holder.release()
    assert not [p for p in tmp_path.iterdir() if p.name == "alias.db.lock"]


def test_a_lock_held_by_another_process_through_the_alias_stops_this_one(tmp_path):
    db = tmp_path / "ops.db"
    AuditStore(db).close()  # a real opsagent database (an empty file is refused)
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)
    script = ("import sys\nfrom pathlib import Path\nfrom opsagent.daemon.leader import FileLeader, lock_path_for\n"
              "leader = FileLeader(lock_path_for(Path(sys.argv[1])), identity='other')\n"
              "print(leader.try_acquire(), flush=True)\nsys.stdin.read()\n")
    other = subprocess.Popen([sys.executable, "-c", script, str(alias)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert other.stdout.readline().strip() == "True"
        mine = FileLeader(lock_path_for(db), identity="mine")
        assert mine.try_acquire() is False
    finally:
        other.stdin.close()
        other.wait(timeout=30)
    assert mine.try_acquire() is True   # the other process is gone, so its lock is too
    mine.release()


@pytest.mark.skipif(not hasattr(os, "link"), reason="no hard links here")
def test_a_hard_linked_database_is_refused_in_one_line(tmp_path):
    db = tmp_path / "ops.db"
    AuditStore(db).close()  # a real opsagent database (an empty file is refused)
    (tmp_path / "elsewhere").mkdir()
    os.link(db, tmp_path / "elsewhere" / "ops.db")
    out = daemon_once(tmp_path / "elsewhere" / "ops.db")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "hard links" in out.stderr and "Traceback" not in out.stderr
