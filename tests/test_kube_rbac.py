"""deploy/ grants exactly what the adapter uses, and the manifests hang together.

Spec: every (group, resource, verb) in opsagent.cluster.kube.rbac.PERMISSIONS
is granted by the ClusterRole (cluster scope) or the leader-election Role
(own namespace), and those roles grant nothing beyond the table, with no
wildcards. The Deployment runs the daemon command the docs name, with probes,
the SQLite volume and the policy/playbook ConfigMaps.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from opsagent.cluster.kube.rbac import PERMISSIONS, grouped

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "manifests"


def docs() -> list[dict]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        out.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return out


def granted(kind: str) -> dict[tuple[str, str], set[str]]:
    [role] = [d for d in docs() if d["kind"] == kind]
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource) and "*" not in rule["verbs"], f"wildcard in {kind}"
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_cluster_role_grants_exactly_the_table():
    assert granted("ClusterRole") == grouped(PERMISSIONS, scope="cluster")


def test_lease_role_grants_exactly_the_table():
    assert granted("Role") == grouped(PERMISSIONS, scope="own-namespace") == {
        ("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def test_bindings_point_at_the_service_account():
    by_kind = {d["kind"]: d for d in docs() if d["kind"] in ("ClusterRoleBinding", "RoleBinding", "ServiceAccount")}
    sa = by_kind["ServiceAccount"]["metadata"]
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        [subject] = by_kind[kind]["subjects"]
        assert (subject["name"], subject["namespace"]) == (sa["name"], sa["namespace"])


def test_deployment_runs_the_daemon_with_probes_and_volumes():
    [dep] = [d for d in docs() if d["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert dep["spec"]["replicas"] == 1
    assert container["args"] == ["daemon", "--cluster", "kube", "--policies", "/etc/opsagent/policies",
                                 "--playbooks", "/etc/opsagent/playbooks", "--db", "/var/lib/opsagent/opsagent.db"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 8080
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "persistentVolumeClaim" in volumes[mounts["/var/lib/opsagent"]]
    assert volumes[mounts["/etc/opsagent/policies"]]["configMap"]["name"] == "opsagent-policies"
    assert volumes[mounts["/etc/opsagent/playbooks"]]["configMap"]["name"] == "opsagent-playbooks"
    assert spec["serviceAccountName"] == "opsagent" and spec["securityContext"]["runAsNonRoot"]


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
