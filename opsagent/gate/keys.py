"""The one key scheme and status map of "at most once".

Every row the gate writes for a call carries an idempotency key
`{run}:{call}:{hash12}:{kind}` (kind: proposal, decision, result; the agent's
`claim` just before it submits). A call a person approved keeps one result key
per approval, `approval:{id}:executed`. The gate, the agent's ledger and the
approval queue build keys only here, so a lookup always asks for the key that
was written.
"""

from __future__ import annotations

from opsagent.model import ToolCall, ResultStatus

# audit outcome -> ToolResult status, and back
STATUS: dict[str, ResultStatus] = {"ok": "ok", "error": "error", "denied": "denied", "pending": "pending_approval", "invalid": "invalid"}
OUTCOME: dict[str, str] = {"ok": "ok", "no_data": "ok", "error": "error", "denied": "denied", "pending_approval": "pending",
                           "invalid": "invalid"}

FINISHED = ":run:finished"   # the idempotency-key suffix of the `run` entry a run's finish node writes (run_key(r, "finished"))


def status_of(outcome: str | None) -> ResultStatus:
    """The ToolResult status a recorded outcome stands for (unknown: error)."""
    return STATUS.get(outcome or "", "error")


def args_hash(call: ToolCall) -> str:
    """The call's arguments hash, or a marker when the arguments cannot be encoded (too deep, odd types)."""
    try:
        return call.args_hash()
    except (ValueError, TypeError, RecursionError):
        return "unencodable"


def call_id(step: int, index: int) -> str:
    """The id the agent gives the index-th call of a step: the same after a restart."""
    return f"s{step}c{index}"


def step_key(run_id: str | None, call_ref: str, call: ToolCall) -> str:
    """The stem of every key of one call: `{run}:{call}:{hash12}` (add `:kind`)."""
    return f"{run_id or 'adhoc'}:{call_ref}:{args_hash(call)[:12]}"


def kind_key(stem: str, kind: str) -> str:
    """The key of one of a call's rows (`proposal`, `decision`, `result`, `claim`) from its `step_key` stem."""
    return f"{stem}:{kind}"


def approval_run_id(approval_id: int) -> str:
    """The run id the keys of an approved call's rows start with (`step_key(approval_run_id(id), ...)`)."""
    return f"approval:{approval_id}"


def result_key(run_id: str, call: ToolCall) -> str:
    """The key the gate stores a replayable call's `result` entry under."""
    return kind_key(step_key(run_id, call.id or "", call), "result")


def claim_key(key: str) -> str:
    """The key of the `run` entry written just before a call is submitted (from its result key)."""
    return kind_key(key.rsplit(":", 1)[0], "claim")


def result_of_claim(key: str) -> str | None:
    """The result key a `claim` key stands for (its inverse of `claim_key`); None when `key` is not a claim."""
    stem, _, kind = key.rpartition(":")
    return kind_key(stem, "result") if stem and kind == "claim" else None


def executed_key(approval_id: int) -> str:
    """The key of the result entry of an approved call that ran: one per approval."""
    return f"{approval_run_id(approval_id)}:executed"


def execution_claim_key(approval_id: int) -> str:
    """The key of the approval queue's claim on running an approved call (written before the gate runs it)."""
    return f"{approval_run_id(approval_id)}:run"


def approval_done_key(approval_id: int) -> str:
    """The key of the approval queue's row saying how an approved call's execution ended."""
    return f"{approval_run_id(approval_id)}:done"


def run_key(run_id: str | None, name: str) -> str:
    """The key of a run's own `run` entry (`started`, `finished`, `llm3`, ...): `{run}:run:{name}`."""
    return f"{run_id}:run:{name}"
