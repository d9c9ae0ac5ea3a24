"""The `Cluster` port and its adapters (`sim`, `kube`)."""

from opsagent.cluster.port import (
    Cluster,
    ClusterError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unavailable,
    WorkloadSpec,
    WriteResult,
)

__all__ = [
    "Cluster", "ClusterError", "Conflict", "Forbidden", "Invalid", "NotFound",
    "Unavailable", "WorkloadSpec", "WriteResult",
]
