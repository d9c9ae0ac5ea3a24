"""Small pieces the gate uses: built-in decisions, and the formatting of errors and results for the audit log.

Nothing here decides whether a call may run; `opsagent.gate` does.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

from pydantic import ValidationError

from opsagent.cluster.port import ReadOnlyCluster  # noqa: F401 (imported from here before the port had it)
from opsagent.model import Decision, RuleRef

BUILTIN = "<builtin>"


def builtin(effect: str, name: str, reason: str) -> Decision:
    """A decision the gate makes itself (fail closed, guards no policy can loosen)."""
    return Decision(effect=effect, rule=RuleRef(file=BUILTIN, name=name), reason=reason)  # type: ignore[arg-type]


def target_key(target: Any) -> str | None:
    """What a write touches, for the blast radius: `namespace/name` or `node:NAME`."""
    if getattr(target, "workload", None) is not None:
        return str(target.workload)
    if getattr(target, "node", None):
        return f"node:{target.node}"
    return None


def format_validation_error(exc: ValidationError) -> str:
    """One line per field, naming the field and what was wrong, so a model can fix it."""
    parts = []
    for err in exc.errors()[:10]:
        field = ".".join(str(p) for p in err.get("loc", ())) or "(arguments)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (not allowed)"
        shown = ""
        if "input" in err and err.get("type") != "missing" and not isinstance(err["input"], dict):
            shown = f" (got {repr(err['input'])[:60]})"
        parts.append(f"{field}: {msg}{shown}")
    more = exc.error_count() - 10
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def small_data(data: dict[str, Any], *, read: bool) -> dict[str, Any]:
    """What of a tool's result goes into the audit log: counts for reads, the change for writes."""
    if read:
        return {k: data[k] for k in ("count", "truncated") if k in data}
    try:
        if len(json.dumps(data, default=str)) <= 4096:
            return dict(data)
    except (TypeError, ValueError):
        pass
    return {"_omitted": True, "keys": sorted(data)[:30]}


def counts_for(recorder: Any, *, known_tools: Iterable[str], run_workloads: Callable[[], Iterable[str]]) -> Any:
    """The policy's `Counts` over a recorder's recent results, plus this run's changed targets."""
    from opsagent.policy.limits import counts_from_recorder

    return counts_from_recorder(recorder, known_tools=known_tools, run_workloads=run_workloads)
