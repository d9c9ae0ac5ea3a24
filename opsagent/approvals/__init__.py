"""Approval requests: calls the policy sent to people, bound to the exact arguments hash.

`ApprovalQueue` stores requests in the audit database and appends every transition
to the audit log. It decides who may approve; it never runs a tool itself (the
gate does, through `ApprovalQueue.execute`).
"""

from opsagent.approvals.errors import (
    AlreadyDecided,
    AlreadyRunning,
    ApprovalError,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalTampered,
    ExecutionInterrupted,
    NotApproved,
    NotAuthorized,
    SelfApproval,
)
from opsagent.approvals.queue import MACHINE_ACTORS, ApprovalMismatch, ApprovalQueue, verify_approvals, verify_call

__all__ = [
    "MACHINE_ACTORS", "AlreadyDecided", "AlreadyRunning", "ApprovalError", "ApprovalExpired", "ApprovalMismatch",
    "ApprovalNotFound", "ApprovalQueue", "ApprovalTampered", "ExecutionInterrupted", "NotApproved", "NotAuthorized",
    "SelfApproval", "verify_approvals", "verify_call",
]
