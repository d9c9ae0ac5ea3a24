"""The audit log: an append-only, hash-chained SQLite record of every proposal,
decision, approval and result. Import from here; `AuditStore` is the entry point.

This package stores and reads audit rows; it decides nothing and never touches a cluster.
"""

from opsagent.audit.chain import GENESIS, AuditHead, ChainReport, parse_anchor
from opsagent.audit.query import EXPORT_FORMATS, AuditFilter, AuditStats, RuleCount, Story, ToolCount
from opsagent.audit.records import AuditRecord
from opsagent.audit.store import AuditBusy, AuditError, AuditStore

__all__ = [
    "EXPORT_FORMATS", "GENESIS", "AuditBusy", "AuditError", "AuditFilter", "AuditHead", "AuditRecord", "AuditStats",
    "AuditStore", "ChainReport", "RuleCount", "Story", "ToolCount", "parse_anchor",
]
