"""The daemon's metrics, served on `/metrics` through prometheus-client.

The reconcile loop updates them, the HTTP thread renders them. They must not
read the cluster or the audit log. Each `Metrics` has its own registry (so two
daemons in one process, as in tests, do not share counts) holding:

- the names below, unchanged since the metrics were hand-rendered; counters
  keep their `_total` names (prometheus-client adds no `_created` series here);
- `opsagent_cycle_seconds`, a histogram of reconcile cycle wall time, beside
  the `opsagent_cycle_duration_seconds` gauge of the last cycle;
- the standard `process_*` (CPU, memory, open files) and `python_*` series.

Values may be any float: inf and nan render as `+Inf` and `NaN`.
"""

from __future__ import annotations

import threading
from typing import Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

prometheus_client.disable_created_metrics()

# name -> (kind, help, label names)
_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "opsagent_findings_open": ("gauge", "Findings open after the last cycle, by kind.", ("kind",)),
    "opsagent_actions_total": ("counter", "Tool calls the agent ran or asked for, by tool and outcome.", ("outcome", "tool")),
    "opsagent_approvals_pending": ("gauge", "Approvals waiting for a person.", ()),
    "opsagent_llm_calls_total": ("counter", "Calls to the language model.", ()),
    "opsagent_llm_tokens_total": ("counter", "Prompt and completion tokens, by kind.", ("kind",)),
    "opsagent_llm_fallbacks_total": ("counter", "Runs that fell back to the offline planner.", ()),
    "opsagent_model_calls_last_day": ("gauge", "The daemon's model calls in the last 24 hours, from the audit log "
                                               "(what its spend cap counts).", ()),
    "opsagent_model_tokens_last_day": ("gauge", "The daemon's prompt + completion tokens in the last 24 hours, "
                                                "from the audit log.", ()),
    "opsagent_model_budget_remaining": ("gauge", "What the daemon's daily spend cap still allows, by unit "
                                                 "(calls, tokens); no series for a unit without a cap.", ("unit",)),
    "opsagent_escalations_total": ("counter", "Findings handed to a person: retries used up, a long rate-limit wait, "
                                              "or temporary cluster errors that keep coming back.", ()),
    "opsagent_cycles_total": ("counter", "Reconcile cycles, by result.", ("result",)),
    "opsagent_cycle_duration_seconds": ("gauge", "Wall time of the last reconcile cycle.", ()),
    "opsagent_gpus_allocated": ("gauge", "GPUs held by pods or jobs in the last snapshot.", ()),
    "opsagent_gpus_idle": ("gauge", "GPUs held by workloads the last cycle found idle.", ()),
    "opsagent_leader": ("gauge", "1 when this process holds the leader lock.", ()),
    "opsagent_audit_head_rows": ("gauge", "Rows in the audit chain after the last cycle (the head's row count).", ()),
    "opsagent_audit_head_info": ("gauge", "Always 1; the hash label is the newest audit row's hash (the head).", ("hash",)),
    "opsagent_slack_up": ("gauge", "1 while `opsagent slack` serves (its health port only).", ()),
}
CYCLE_HISTOGRAM = "opsagent_cycle_seconds"
CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))


class Metrics:
    """The daemon's metrics: `inc` counters, `set`/`replace` gauges, `observe_cycle`, `render` for /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()   # `replace` clears then refills: a scrape must not see it half done
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Gauge] = {}
        for name, (kind, help_text, labels) in _SPECS.items():
            cls = Counter if kind == "counter" else Gauge
            self._metrics[name] = cls(name, help_text, labels, registry=self.registry)
        self._cycles = Histogram(CYCLE_HISTOGRAM, "Wall time of reconcile cycles.", buckets=CYCLE_BUCKETS,
                                 registry=self.registry)
        prometheus_client.ProcessCollector(registry=self.registry)
        prometheus_client.PlatformCollector(registry=self.registry)
        prometheus_client.GCCollector(registry=self.registry)

    def _series(self, name: str, labels: dict[str, str]) -> Counter | Gauge:
        metric = self._metrics[name]
        return metric.labels(**labels) if labels else metric

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._series(name, labels).inc(amount)

    def set(self, name: str, value: float, **labels: str) -> None:
        series = self._series(name, labels)
        if not isinstance(series, Gauge):
            raise TypeError(f"{name} is a counter: use inc")
        with self._lock:
            series.set(float(value))

    def observe_cycle(self, seconds: float) -> None:
        """One reconcile cycle took `seconds`: the histogram and the last-cycle gauge."""
        with self._lock:
            self._cycles.observe(seconds)
            self._metrics["opsagent_cycle_duration_seconds"].set(seconds)  # type: ignore[union-attr]

    def replace(self, name: str, values: Iterable[tuple[dict[str, str], float]]) -> None:
        """Set a labelled gauge to exactly these series (kinds that went away drop out)."""
        gauge = self._metrics[name]
        assert isinstance(gauge, Gauge)
        with self._lock:
            gauge.clear()
            for labels, value in values:
                gauge.labels(**labels).set(float(value))

    def _samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        wanted = {name, name.removesuffix("_total") + "_total"}
        return [(s.labels, s.value) for family in self._metrics[name].collect() for s in family.samples if s.name in wanted]

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return next((v for found, v in self._samples(name) if found == labels), 0.0)

    def total(self, name: str) -> float:
        with self._lock:
            return sum(v for _, v in self._samples(name))

    def render(self) -> str:
        with self._lock:
            return generate_latest(self.registry).decode("utf-8")
