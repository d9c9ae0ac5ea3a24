"""The `kube` adapter: the Cluster port over the official kubernetes client.

Only this package imports `kubernetes` (an import-linter contract says so).
"""

from opsagent.cluster.kube.adapter import KubeCluster
from opsagent.cluster.kube.annotations import AnnotationError, intents_from_annotations
from opsagent.cluster.kube.client import Chokepoint, ConfigError, api_client_for_url, build_api_client
from opsagent.cluster.kube.rbac import PERMISSIONS, Permission

__all__ = [
    "AnnotationError", "Chokepoint", "ConfigError", "KubeCluster", "PERMISSIONS", "Permission",
    "api_client_for_url", "build_api_client", "intents_from_annotations",
]
