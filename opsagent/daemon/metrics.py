"""Counters and gauges of the daemon, rendered in the Prometheus text format.

A small thread-safe registry (no client library): the reconcile loop updates
it, the HTTP thread renders it. It must not read the cluster or the audit log.
"""

from __future__ import annotations

import threading
from typing import Iterable

_HELP = {
    "opsagent_findings_open": ("gauge", "Findings open after the last cycle, by kind."),
    "opsagent_actions_total": ("counter", "Tool calls the agent ran or asked for, by tool and outcome."),
    "opsagent_approvals_pending": ("gauge", "Approvals waiting for a person."),
    "opsagent_llm_calls_total": ("counter", "Calls to the language model."),
    "opsagent_llm_tokens_total": ("counter", "Prompt and completion tokens, by kind."),
    "opsagent_llm_fallbacks_total": ("counter", "Runs that fell back to the offline planner."),
    "opsagent_model_calls_last_day": ("gauge", "The daemon's model calls in the last 24 hours, from the audit log "
                                          "(what its spend cap counts)."),
    "opsagent_model_tokens_last_day": ("gauge", "The daemon's prompt + completion tokens in the last 24 hours, from the audit log."),
    "opsagent_model_budget_remaining": ("gauge", "What the daemon's daily spend cap still allows, by unit "
                                                 "(calls, tokens); no series for a unit without a cap."),
    "opsagent_escalations_total": ("counter", "Findings handed to a person: retries used up, a long rate-limit wait, "
                                              "or temporary cluster errors that keep coming back."),
    "opsagent_cycles_total": ("counter", "Reconcile cycles, by result."),
    "opsagent_cycle_duration_seconds": ("gauge", "Wall time of the last reconcile cycle."),
    "opsagent_gpus_allocated": ("gauge", "GPUs held by pods or jobs in the last snapshot."),
    "opsagent_gpus_idle": ("gauge", "GPUs held by workloads the last cycle found idle."),
    "opsagent_leader": ("gauge", "1 when this process holds the leader lock."),
    "opsagent_audit_head_rows": ("gauge", "Rows in the audit chain after the last cycle (the head's row count)."),
    "opsagent_audit_head_info": ("gauge", "Always 1; the hash label is the newest audit row's hash (the head)."),
}

_LABELLED = {"opsagent_findings_open", "opsagent_actions_total", "opsagent_llm_tokens_total", "opsagent_cycles_total",
             "opsagent_model_budget_remaining", "opsagent_audit_head_info"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {name: {} for name in _HELP}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = float(value)

    def replace(self, name: str, values: Iterable[tuple[dict[str, str], float]]) -> None:
        """Set a labelled gauge to exactly these series (kinds that went away drop out)."""
        with self._lock:
            self._values[name] = {tuple(sorted(labels.items())): float(v) for labels, v in values}

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def total(self, name: str) -> float:
        with self._lock:
            return sum(self._values[name].values())

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in _HELP.items():
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                series = self._values[name] or ({} if name in _LABELLED else {(): 0.0})
                for key, value in sorted(series.items()):
                    label = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                    number = repr(float(value)) if value != int(value) else str(int(value))
                    lines.append(f"{name}{{{label}}} {number}" if label else f"{name} {number}")
        return "\n".join(lines) + "\n"
