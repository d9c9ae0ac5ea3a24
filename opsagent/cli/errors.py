"""The command's last line of defence: errors a command did not map become one clean line.

Each command maps the errors it expects to `fail(...)` itself. What reaches
here is mapped once for all of them: an `AuditError` (its message names the
database file) or an SQLite error met mid-command (a damaged page, a lock held
too long). A closed pipe (`| head`) ends the command quietly with 141, as
SIGPIPE would; Ctrl-C mid-command is one line and exit code 130, as a shell
reports it (servers stop cleanly on it themselves). Anything else is a bug; it is reported in one line, with the
traceback only when `OPSAGENT_DEBUG=1`, and exit code 1. No traceback reaches a
user otherwise. It decides nothing, and imports the audit package only once an
error has reached it, so commands that never open a database start fast.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from opsagent.cli.common import DB_META, current_context, fail

DEBUG_ENV = "OPSAGENT_DEBUG"
SIGPIPE_EXIT = 141   # what a shell reports for a writer ended by SIGPIPE
SIGINT_EXIT = 130    # what a shell reports for a command ended by Ctrl-C


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):   # no real file descriptor (a test runner's buffer): nothing to flush
        pass


def database_failed(exc: Any) -> NoReturn:
    """Print a database error (an AuditError) and what to do about it (exit 2: the --db file cannot be used now)."""
    from opsagent.runtime import database_hint

    hint = database_hint(exc)
    ctx = current_context()
    given = Path(ctx.meta.get(DB_META) or "") if ctx is not None else None
    if given is not None and str(given) and given.is_dir():   # `daemon --db DIR` keeps DIR/opsagent.db
        inside = given / "opsagent.db"
        hint = (f"the daemon's --db {given} keeps its records in {inside}: pass --db {inside}" if inside.is_file()
                else f"name a file: --db {inside} (a new one starts there)")
    fail(str(exc), hint=hint)


_OS_HINTS = {
    errno.EADDRINUSE: "another process listens on that port: stop it or choose another --listen",
    errno.EADDRNOTAVAIL: "that address is not on this machine: use 127.0.0.1 or 0.0.0.0 in --listen",
    errno.EACCES: "no permission: ports below 1024 need privileges, files need read/write access",
    errno.EPERM: "not permitted for this user",
    errno.ENOSPC: "the disk is full",
}


class CommandGroup(TyperGroup):
    """The root command group: runs the subcommand and maps what escaped it."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors: typer prints them
            raise
        except BrokenPipeError:   # the reader went away (`| head`): stop quietly, as a pipe's writer does
            _silence_stdout()
            raise typer.Exit(SIGPIPE_EXIT) from None
        except KeyboardInterrupt:   # Ctrl-C: say so in one line (typer would exit 130 without a word)
            fail("interrupted (Ctrl-C) before the command finished", code=SIGINT_EXIT,
                 hint="what already ran is in the audit log (opsagent audit list); run the command again to finish")
        except Exception as exc:
            _map(ctx, exc)


def _map(ctx: Any, exc: Exception) -> NoReturn:
    from opsagent.audit import AuditError
    from opsagent.audit.database import classify

    if isinstance(exc, AuditError):
        database_failed(exc)
    if isinstance(exc, sqlite3.Error):   # met outside the store's own translation: name the --db it came from
        database_failed(classify(Path(ctx.meta.get(DB_META) or "--db"), exc))
    if isinstance(exc, OSError) and exc.errno in _OS_HINTS:   # met by a server or a file the command opens
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}", hint=_OS_HINTS[exc.errno], code=1)
    # Anything else is a bug: it must still end in one line, not a traceback.
    if os.environ.get(DEBUG_ENV) == "1":
        raise exc
    fail(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0],
         hint=f"this is a bug in opsagent; run again with {DEBUG_ENV}=1 for the traceback", code=1)
