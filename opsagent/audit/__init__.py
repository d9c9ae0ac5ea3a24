"""The audit log: an append-only, hash-chained SQLite record of every proposal,
decision, approval and result. Import from here; `AuditStore` is the entry point.

This package stores and reads audit rows; it decides nothing and never touches a cluster.
"""

from opsagent.audit._sqlite_utils import import_without_optional_types

import_without_optional_types()

from opsagent.audit.chain import GENESIS, AuditHead, ChainReport, parse_anchor  # noqa: E402
from opsagent.audit.query import EXPORT_FORMATS, AuditFilter, AuditStats, RuleCount, Story, ToolCount  # noqa: E402
from opsagent.audit.records import AuditRecord  # noqa: E402
from opsagent.audit.database import DatabaseCorrupt, DatabaseLocked, DatabaseMissing, NotAnOpsagentDatabase  # noqa: E402
from opsagent.audit.store import AuditBusy, AuditError, AuditStore  # noqa: E402

__all__ = [
    "EXPORT_FORMATS", "GENESIS", "AuditBusy", "AuditError", "AuditFilter", "AuditHead", "AuditRecord", "AuditStats",
    "AuditStore", "ChainReport", "DatabaseCorrupt", "DatabaseLocked", "DatabaseMissing", "NotAnOpsagentDatabase",
    "RuleCount", "Story", "ToolCount", "parse_anchor",
]
