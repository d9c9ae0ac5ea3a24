"""deploy/ grants exactly what the adapter uses, and the manifests hang together.

Spec: every (group, resource, verb) in opsagent.cluster.kube.rbac.PERMISSIONS
is granted by the ClusterRole (cluster scope) or the leader-election Role
(own namespace), and those roles grant nothing beyond the table, with no
wildcards. The table itself is exactly what the adapter sends: driven against
the kmock emulator through a snapshot, every write (with and without dry run)
and the Lease, the set of (group, resource, verb) its requests need equals the
table, nothing more and nothing less. The Deployment runs the daemon command
the docs name, with probes, the SQLite volume and the policy/playbook ConfigMaps.
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


def granted(kind: str, name: str, namespace: str | None = None) -> dict[tuple[str, str], set[str]]:
    [role] = [d for d in docs() if d["kind"] == kind and d["metadata"]["name"] == name
              and d["metadata"].get("namespace") == namespace]
    return rules_of(role)


def rules_of(role: dict) -> dict[tuple[str, str], set[str]]:
    kind = role["kind"]
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource) and "*" not in rule["verbs"], f"wildcard in {kind}"
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_cluster_role_grants_exactly_the_table():
    assert granted("ClusterRole", "opsagent") == grouped(PERMISSIONS, scope="cluster")


def test_cluster_role_writes_only_cluster_scoped_kinds():
    """Writes to namespaced kinds (deployments, pods...) are never granted cluster-wide."""
    writes = {res for res, verbs in granted("ClusterRole", "opsagent").items() if verbs - {"list", "watch", "get"}}
    assert writes == {("", "nodes")}


def test_lease_role_grants_exactly_the_table():
    assert granted("Role", "opsagent-leader-election", "opsagent") == grouped(PERMISSIONS, scope="own-namespace") == {
        ("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def test_write_roles_sit_in_exactly_the_namespaces_the_policy_names():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render", DEPLOY.parent / "render_configmaps.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    exact, globs = render.governed_namespaces()
    roles = [d for d in docs() if d["kind"] == "Role" and d["metadata"]["name"] == "opsagent-write"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == exact == ["chat", "inference", "render", "training"]
    assert globs == ["* (default.yaml)"]
    for role in roles:
        assert rules_of(role) == grouped(PERMISSIONS, scope="governed")
    bindings = {d["metadata"]["namespace"]: d for d in docs() if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "opsagent-write"}
    assert sorted(bindings) == exact
    assert all(b["roleRef"]["name"] == "opsagent-write" for b in bindings.values())


def test_bindings_point_at_the_service_account():
    [sa] = [d["metadata"] for d in docs() if d["kind"] == "ServiceAccount"]
    bindings = [d for d in docs() if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert len(bindings) >= 3
    for binding in bindings:
        [subject] = binding["subjects"]
        assert (subject["name"], subject["namespace"]) == (sa["name"], sa["namespace"])


def test_deployment_runs_the_daemon_with_probes_and_volumes():
    [dep] = [d for d in docs() if d["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert dep["spec"]["replicas"] == 1
    assert container["args"] == ["daemon", "--cluster", "kube", "--policies", "/etc/opsagent/policies",
                                 "--playbooks", "/etc/opsagent/playbooks", "--db", "/var/lib/opsagent/opsagent.db",
                                 "--listen", "0.0.0.0:8080"]
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


# --- the table is exactly what the adapter sends --------------------------------------------------------------------
#
# The adapter is driven against the kmock emulator through a snapshot (with DRA served), every port write on a
# Deployment and on a StatefulSet (each with and without server-side dry run), and the leader-election Lease (create,
# then renew). Every request is mapped to the (group, resource[/subresource], verb) RBAC would check. Discovery
# (/apis) and /version are non-resource URLs that every authenticated user may read, so they are left out.

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def rbac_attributes(method: str, path: str, params: dict | None = None) -> tuple[str, str, str] | None:
    """(group, 'resource[/sub]', verb) for one API request, as the RBAC authorizer sees it; None for non-resource URLs."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "watch" if (params or {}).get("watch") == "true" else "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERBS[method]
    return group, f"{resource}/{sub}" if sub else resource, verb


def test_rbac_attributes_of_typical_requests():
    assert rbac_attributes("GET", "/apis/apps/v1/deployments") == ("apps", "deployments", "list")
    assert rbac_attributes("GET", "/apis/apps/v1/namespaces/a/deployments/b") == ("apps", "deployments", "get")
    assert rbac_attributes("PATCH", "/apis/apps/v1/namespaces/a/statefulsets/b/scale") == ("apps", "statefulsets/scale", "patch")
    assert rbac_attributes("PATCH", "/api/v1/nodes/n") == ("", "nodes", "patch")
    assert rbac_attributes("PUT", "/apis/coordination.k8s.io/v1/namespaces/o/leases/l") == ("coordination.k8s.io", "leases", "update")
    assert rbac_attributes("GET", "/apis") is None and rbac_attributes("GET", "/version/") is None
    assert rbac_attributes("GET", "/apis/apps/v1/deployments", {"watch": "true"}) == ("apps", "deployments", "watch")


def serve_lease_replace(emu, namespace: str, name: str) -> None:
    """kmock answers PUT with 404; store the body instead, as the API server would."""
    import json as _json

    def replace(request):
        body = _json.loads(request.data if isinstance(request.data, (bytes, str)) else _json.dumps(request.data))
        emu.handler.objects["coordination.k8s.io/v1/leases", namespace, name] = body
        return body

    emu.handler[f"put /apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"] << replace


def drive_everything(cluster, emu) -> None:
    from opsagent.cluster.kube.lease import KubeLease
    from opsagent.cluster.port import WorkloadSpec
    from opsagent.model import GpuRequirement, WorkloadRef

    cluster.snapshot()
    cluster.start_watching()   # the watched cache: one list per kind, then a watch per kind
    try:
        cluster.snapshot()
        for informer in cluster.cache.informers.values():   # each kind's watch has been opened
            with informer.changed:
                informer.changed.wait_for(lambda i=informer: i.generation > 1, 20)
    finally:
        cluster.stop_watching()
    deployment, statefulset = WorkloadRef(namespace="default", name="dice-roller"), \
        WorkloadRef(namespace="default", name="redis", kind="StatefulSet")
    for dry_run in (True, False):
        for ref in (deployment, statefulset):
            cluster.scale(ref=ref, replicas=1, dry_run=dry_run)
            cluster.restart_rollout(ref=ref, dry_run=dry_run)
            cluster.set_template(ref=ref, gpu_requirement=GpuRequirement(min_link_width=16), dry_run=dry_run)
            cluster.annotate(ref=ref, annotations={"opsagent.dev/note": "x"}, dry_run=dry_run)
            cluster.set_image(ref=ref, image=f"registry.internal/{ref.name}:v{int(dry_run) + 7}", dry_run=dry_run)
        cluster.undo_rollout(ref=deployment, to_revision=1, dry_run=dry_run)
        cluster.cordon(node="nori", dry_run=dry_run)
        cluster.create_workload(spec=WorkloadSpec(ref=WorkloadRef(namespace="llm", name=f"qwen-{dry_run}".lower()),
                                                  image="vllm/vllm-openai:v0.8.2", replicas=1), dry_run=dry_run)
    cluster.pause_autoscaler(kind="ScaledObject", namespace="inference", name="llm", replicas=0, dry_run=True)
    cluster.set_autoscaler_bounds(kind="HorizontalPodAutoscaler", namespace="inference", name="embedder",
                                  min_replicas=1, max_replicas=4, dry_run=True)
    serve_eviction(emu, "argocd", "my-pod")
    cluster.evict_pod(namespace="argocd", name="my-pod", dry_run=True)
    cluster.delete_pod(namespace="argocd", name="my-pod", dry_run=True)
    cluster.delete_workload(ref=statefulset, dry_run=True)
    cluster.delete_workload(ref=deployment, dry_run=True)
    serve_lease_replace(emu, "opsagent", "opsagent-daemon")
    lease = KubeLease.for_cluster(cluster, namespace="opsagent", name="opsagent-daemon", identity="a")
    assert lease.try_acquire() and lease.try_acquire()   # created, then renewed
    assert lease.publish({"opsagent.dev/audit-head": "1:" + "0" * 64})   # the daemon's audit head on the Lease


def serve_eviction(emu, namespace: str, name: str) -> None:
    """kmock does not know the eviction subresource; answer as the API server does when the eviction is allowed."""
    emu.handler[f"post /api/v1/namespaces/{namespace}/pods/{name}/eviction"] << (
        lambda request: {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201})


def seed_autoscalers(emu) -> None:
    from test_kube_autoscalers import HPA, SCALED_OBJECT

    emu.handler.resources["keda.sh/v1alpha1/scaledobjects"] = {"kind": "ScaledObject", "namespaced": True}
    emu.handler.resources["http.keda.sh/v1alpha1/httpscaledobjects"] = {"kind": "HTTPScaledObject", "namespaced": True}
    emu.seed(HPA)
    emu.seed(SCALED_OBJECT)


def statefulset() -> dict:
    from test_kube_read import dice_roller

    sts = dice_roller()
    sts.update(kind="StatefulSet")
    sts["metadata"].update(name="redis", uid="0f0e0d0c-0b0a-4009-8807-060504030201", annotations={})
    sts["spec"].pop("strategy", None)
    sts["spec"]["serviceName"] = "redis"
    return sts


def test_the_adapter_uses_exactly_the_permission_table():
    from datetime import datetime, timezone

    from kube_harness import Emulator
    from test_kube_read import seed_cluster

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    with Emulator() as emu:
        seed_cluster(emu)
        emu.seed(statefulset())
        seed_autoscalers(emu)
        cluster = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc)))
        drive_everything(cluster, emu)
        sent = emu.requests()
    used = {attrs for r in sent if (attrs := rbac_attributes(r["method"], r["path"], r["params"])) is not None}
    table = {(p.group, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, p.verb) for p in PERMISSIONS}
    assert used - table == set(), "the adapter sends requests no permission grants"
    assert table - used == set(), "the table grants permissions the adapter never uses"
    assert {r["params"].get("dryRun") for r in sent if r["method"] in ("PATCH", "POST", "DELETE")} == {"All", None}


def _namespaced(path: str) -> bool:
    return "/namespaces/" in path


def test_each_permission_sits_where_its_requests_go():
    """A write to a namespaced object is granted by a namespace's Role, a cluster-wide request by the ClusterRole:
    the scope in the table matches the paths the adapter really sends."""
    from datetime import datetime, timezone

    from kube_harness import Emulator
    from test_kube_read import seed_cluster

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    with Emulator() as emu:
        seed_cluster(emu)
        emu.seed(statefulset())
        seed_autoscalers(emu)
        cluster = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc)))
        drive_everything(cluster, emu)
        sent = emu.requests()
    scope_of = {(p.group, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, p.verb): p.scope
                for p in PERMISSIONS}
    for request in sent:
        attrs = rbac_attributes(request["method"], request["path"], request["params"])
        if attrs is None:
            continue
        scope = scope_of[attrs]
        if _namespaced(request["path"]) and attrs[2] not in ("list", "watch"):
            assert scope in ("governed", "own-namespace"), (attrs, request["path"])
        elif _namespaced(request["path"]):
            assert scope in ("cluster", "governed", "own-namespace"), (attrs, request["path"])   # a cluster-wide read covers it
        else:
            assert scope == "cluster", (attrs, request["path"])


def test_the_wake_proxy_account_grants_exactly_what_a_snapshot_reads():
    from datetime import datetime, timezone

    from kube_harness import Emulator
    from test_kube_read import seed_cluster

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url
    from opsagent.cluster.kube.rbac import reads

    with Emulator() as emu:
        seed_cluster(emu)
        cluster = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc)))
        cluster.reads_config = False   # as `wake-proxy --wake-via` sets it
        cluster.snapshot()
        sent = emu.requests()
    used = {attrs for r in sent if (attrs := rbac_attributes(r["method"], r["path"], r["params"])) is not None}
    wanted = {(p.group, p.resource, p.verb) for p in reads()}
    assert not {("", "secrets"), ("", "configmaps")} & {(a[0], a[1]) for a in used | wanted}
    assert used <= wanted and {a for a in wanted if a[2] == "list"} - used <= {
        (p.group, p.resource, "list") for p in reads() if p.optional}
    proxy_docs = list(yaml.safe_load_all((DEPLOY.parent / "components" / "wake-proxy" / "rbac.yaml").read_text()))
    [role] = [d for d in proxy_docs if d["kind"] == "ClusterRole"]
    assert rules_of(role) == grouped(reads(), scope="cluster")
    assert all(verbs <= {"list", "watch"} for verbs in rules_of(role).values())
