"""Import sqlite-utils without its optional numpy and pandas support.

sqlite-utils imports numpy and pandas when they are installed, only to map
their scalar types to SQLite column types. The audit log stores JSON-native
values and never passes numpy or pandas objects, yet that import costs most
of the start-up time of every CLI command that opens the database. So the
first import of sqlite-utils happens here, with both hidden; nothing else in
the process is affected, and numpy imports normally afterwards.
"""

from __future__ import annotations

import sys


def import_without_optional_types() -> None:
    if "sqlite_utils" in sys.modules:
        return
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import numpy` raise ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]
