"""The audit log: an append-only, hash-chained SQLite record of every proposal,
decision, approval and result. Import from here; `AuditStore` is the entry point.

This package stores and reads audit rows; it decides nothing and never touches a cluster.
"""

from opsagent.audit.chain import GENESIS, ChainReport
from opsagent.audit.query import EXPORT_FORMATS, AuditFilter, AuditStats, RuleCount, Story, ToolCount
from opsagent.audit.records import AuditRecord
from opsagent.audit.database import DatabaseCorrupt, DatabaseLocked, DatabaseMissing, NotAnOpsagentDatabase
from opsagent.audit.store import AuditBusy, AuditError, AuditStore

__all__ = [
    "EXPORT_FORMATS", "GENESIS", "AuditBusy", "AuditError", "AuditFilter", "AuditRecord", "AuditStats",
    "AuditStore", "ChainReport", "DatabaseCorrupt", "DatabaseLocked", "DatabaseMissing", "NotAnOpsagentDatabase",
    "RuleCount", "Story", "ToolCount",
]
