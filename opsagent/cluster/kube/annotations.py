"""Intents from `opsagent.dev/*` workload annotations, as the kube adapter reads them.

The parsing is pure and lives in the policy package (`opsagent.policy.annotations`
reads the values, `opsagent.policy.intents` validates them and decides which
intent applies); this module keeps the names the adapter has always exported.
"""

from opsagent.policy.annotations import PREFIX, AnnotationError
from opsagent.policy.intents import annotation_problem, intents_from_annotations

__all__ = ["PREFIX", "AnnotationError", "annotation_problem", "intents_from_annotations"]
