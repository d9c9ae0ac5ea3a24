"""The domain types of opsagent (pydantic v2, no I/O). Import them from here."""

from opsagent.model.actions import (
    FINDING_KINDS,
    MAX_ARGS_BYTES,
    Approval,
    ApprovalState,
    Channel,
    Decision,
    Effect,
    Finding,
    FindingKind,
    ResultStatus,
    Risk,
    RuleRef,
    ToolCall,
    ToolResult,
    args_size,
    bounded_json,
    canonical_json,
    is_stand_in,
)
from opsagent.model.resources import ConfigKind, ConfigObject, Service, ServicePort, VolumeClaim
from opsagent.model.audit import AuditEntry, EntryKind, Outcome
from opsagent.model.cluster import (
    PAUSED_REPLICAS,
    ReplicaWrite,
    Autoscaler,
    AutoscalerKind,
    DisruptionBudget,
    Event,
    Frozen,
    GpuDevice,
    GpuRequirement,
    Job,
    JobState,
    Node,
    NodeCondition,
    Pod,
    PodPhase,
    Revision,
    RolloutState,
    RolloutStatus,
    Snapshot,
    Workload,
    WorkloadRef,
)

__all__ = [
    "AuditEntry", "EntryKind", "Outcome", "PAUSED_REPLICAS", "ReplicaWrite", "Autoscaler", "AutoscalerKind", "DisruptionBudget",
    "FINDING_KINDS", "Approval", "ApprovalState", "Channel", "Decision", "Effect", "Event",
    "Finding", "FindingKind", "Frozen", "GpuDevice", "GpuRequirement", "Job", "JobState", "Node", "NodeCondition",
    "Pod", "PodPhase", "ResultStatus", "Revision", "Risk", "RolloutState", "RolloutStatus",
    "RuleRef", "Snapshot", "ToolCall", "ToolResult", "Workload", "WorkloadRef", "canonical_json",
    "MAX_ARGS_BYTES", "args_size", "bounded_json", "is_stand_in",
    "ConfigKind", "ConfigObject", "Service", "ServicePort", "VolumeClaim",
]
