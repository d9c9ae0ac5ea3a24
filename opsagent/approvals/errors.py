"""Why an approval transition was refused. Each refusal is also written to the audit log."""

from __future__ import annotations


class ApprovalError(Exception):
    """Base: the approval queue refused a transition. `approval_id` names the request."""

    def __init__(self, message: str, *, approval_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.approval_id = approval_id


class ApprovalNotFound(ApprovalError):
    """No approval request has this id."""


class SelfApproval(ApprovalError):
    """The person who asked for the call cannot approve it."""


class NotAuthorized(ApprovalError):
    """The actor is not one of the approvers the policy named for this call."""


class ApprovalExpired(ApprovalError):
    """The request expired before anyone decided it; propose the call again."""


class AlreadyDecided(ApprovalError):
    """The request was already approved, rejected, expired or executed."""


class NotApproved(ApprovalError):
    """Only an approved request can be executed."""


class ExecutionInterrupted(ApprovalError):
    """A previous attempt started executing this approval and left no result; it is
    not run again (at most once). Check the cluster, then propose the call again."""


class AlreadyRunning(ApprovalError):
    """Another live process claimed this approval and is running the call now; it runs once, there."""


class ApprovalTampered(ApprovalError):
    """The approvals table disagrees with the hash-chained record of the request; nothing is approved or run."""
