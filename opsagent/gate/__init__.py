"""The gate: the one place a tool call is executed, and the owner of "at most once".

- `core`: `Gate`, which validates, decides (policy, guards, approvals), runs and audits each call,
  and the Protocols it needs (`Recorder`, `ApprovalSink`, `GatePolicy`).
- `keys`: the one idempotency-key scheme and outcome/status map every part uses.
- `ledger`: what the agent reads back before submitting a call, and which runs a restart must recover.
- `recovery`: what the cluster shows of a call whose process died at the gate.
- `support`: built-in decisions, the read-only cluster view, formatting for the audit log.
"""

from opsagent.gate.core import MAX_ARGS_BYTES, ApprovalSink, Gate, GatePolicy, Recorder

__all__ = ["ApprovalSink", "Gate", "GatePolicy", "Recorder", "MAX_ARGS_BYTES"]
