"""Identity from the cluster: who the kube credentials are is who acts.

Promises tried here, against the kmock Kubernetes emulator on loopback playing
an API server that knows two bearer tokens (alice, with groups
`oidc:platform-admins` and `system:authenticated`; bob, with none) and whom
each may impersonate:

- the SelfSubjectReview answer (the shape `kubectl auth whoami -o json`
  prints) is the actor: `opsagent ask` on `--cluster kube` acts and is
  audited as `alice@example.com`, whatever `OS user` runs it;
- the cluster's groups count in policy only through rules naming
  `cluster-group:NAME`: a rule for that cluster group lets alice scale; bob,
  with the same policy, is refused;
- `--as carol` works only when the cluster lets alice impersonate users
  "carol" (SelfSubjectAccessReview, verb impersonate): then the API server is
  asked as carol (Impersonate-User on every request, as kubectl does) and the
  actor is carol; `--as mallory` (not allowed), bob's `--as` and
  `--as DAEMON` are refused in one line before anything is written;
- `--as-group` needs the cluster's permission on `groups` too;
- approvals on a real cluster's database take the decider from the cluster:
  `--as` without `--cluster kube` is refused; with it, the decider is the
  cluster's user;
- `opsagent doctor` shows user, groups, source and whether --as may work;
- the identity reviews need no grant in deploy/'s roles (system:basic-user
  grants them to every authenticated user).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kube_harness import FIXTURES, Emulator
from opsagent.cli import app
from opsagent.cluster.kube import KubeCluster, api_client_for_url
from opsagent.identity import IdentityError, cluster_actor

ALICE, BOB = "alice@example.com", "bob@example.com"
TOKENS = {"alice-token": ALICE, "bob-token": BOB}
GROUPS = {ALICE: ["oidc:platform-admins", "system:authenticated"], BOB: ["system:authenticated"]}
# who may impersonate what, as RBAC rules with resourceNames would allow it
IMPERSONATE = {ALICE: {("users", "carol"), ("groups", "oidc:gpu-oncall")}}
REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
ACCESS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

POLICY = """
rules:
  - name: read
    risk: read
    effect: allow
  - name: platform-admins-scale
    tools: [scale_workload]
    actors: ["cluster-group:oidc:platform-admins", carol]
    effect: allow
"""


def _header(request: Any, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


class ApiServerAuth:
    """The emulator's authentication (bearer tokens, impersonation) and authorization (impersonate only)."""

    def __init__(self, emu: Emulator) -> None:
        import kmock

        self.kmock = kmock
        self.template = json.loads((FIXTURES / "selfsubjectreview-assembled.json").read_text())
        self.emu = emu
        emu.handler[f"post {REVIEWS}"] << self.review
        emu.handler[f"post {ACCESS}"] << self.access
        emu.handler["get /version/"] << {"major": "1", "minor": "33", "gitVersion": "v1.33.1"}

    def forget_reviews(self) -> None:
        """An API server answers reviews and stores none; the emulator stores each create (and refuses a second)."""
        for key in [k for k in list(self.emu.handler.objects.keys()) if "review" in str(k[0])]:
            del self.emu.handler.objects[key]

    def caller(self, request: Any) -> str | None:
        token = (_header(request, "Authorization") or "").removeprefix("Bearer ").strip()
        return TOKENS.get(token)

    def review(self, request: Any) -> Any:
        self.forget_reviews()
        user = self.caller(request)
        if user is None:
            return self.kmock.Response(status=401, payload={"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                             "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        groups = list(GROUPS[user])
        as_user, as_group = _header(request, "Impersonate-User"), _header(request, "Impersonate-Group")
        if as_user:
            wanted = {("users", as_user)} | ({("groups", as_group)} if as_group else set())
            if not wanted <= IMPERSONATE.get(user, set()):
                return self.kmock.Response(status=403, payload={
                    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                    "message": f'users "{as_user}" is forbidden: User "{user}" cannot impersonate resource "users" '
                               'in API group "" at the cluster scope'})
            user, groups = as_user, ([as_group] if as_group else []) + ["system:authenticated"]
        body = json.loads(json.dumps(self.template))
        body["status"]["userInfo"].update(username=user, groups=groups, uid=f"uid-{user}")
        return body

    def access(self, request: Any) -> Any:
        self.forget_reviews()
        body = json.loads(request.body)
        attrs = body["spec"]["resourceAttributes"]
        user = self.caller(request)
        if attrs["verb"] != "impersonate":
            allowed = True
        else:
            allowed = (attrs["resource"], attrs.get("name", "")) in IMPERSONATE.get(user, set())
        body["status"] = {"allowed": allowed, **({} if allowed else {"reason": "no RBAC policy matched"})}
        return body


@pytest.fixture()
def emu():
    from test_kube_read import seed_cluster

    with Emulator() as emulator:
        seed_cluster(emulator)
        emulator.auth = ApiServerAuth(emulator)
        yield emulator


def kubeconfig(tmp_path: Path, url: str, token: str) -> Path:
    path = tmp_path / f"kubeconfig-{token}"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emu",
        "clusters": [{"name": "emu", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u"}}],
    }))
    return path


runner = CliRunner()


def ask(tmp_path: Path, emu: Emulator, text: str, *extra: str, token: str = "alice-token", env: dict | None = None):
    (tmp_path / "pol").mkdir(exist_ok=True)
    (tmp_path / "pol" / "p.yaml").write_text(POLICY)
    environment = {"KUBECONFIG": str(kubeconfig(tmp_path, emu.url, token)), "COLUMNS": "300",
                   "KUBERNETES_SERVICE_HOST": None, "OPSAGENT_ACTOR": None, **(env or {})}
    return runner.invoke(app, ["ask", text, "--cluster", "kube", "-o", "json", "--db", str(tmp_path / "ops.db"),
                               "--policies", str(tmp_path / "pol"), "--playbooks", str(tmp_path / "none"), *extra],
                         env=environment)


def scale_patches(emu: Emulator) -> list[dict]:
    return [r for r in emu.requests() if r["method"] == "PATCH" and r["path"].endswith("/dice-roller/scale")]


def impersonated_users(emu: Emulator) -> set[str | None]:
    return {_header(r, "Impersonate-User") for r in list(emu.handler) if r.url.path.endswith("/scale")}


# --- the actor is the SelfSubjectReview's user ------------------------------------------------------------------------


def test_the_self_subject_review_user_is_the_actor_with_its_groups(emu):
    cluster = KubeCluster(api_client_for_url(emu.url, token="alice-token"))
    actor = cluster_actor(cluster)
    assert (actor.name, actor.groups) == (ALICE, ("oidc:platform-admins", "system:authenticated"))
    assert "SelfSubjectReview" in actor.source
    assert [r["body"] for r in emu.requests() if r["path"] == REVIEWS] == [
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}]


def test_ask_on_kube_acts_and_is_audited_as_the_cluster_user(tmp_path, emu):
    from opsagent.audit import AuditStore

    out = ask(tmp_path, emu, "scale default/dice-roller to 1")
    assert out.exit_code == 0, out.output
    reply = json.loads(out.stdout)
    assert reply["actor"] == ALICE and reply["done"], reply
    assert len(scale_patches(emu)) == 1
    rows = [r for r in AuditStore(tmp_path / "ops.db").list() if r.tool == "scale_workload" and r.kind == "result"]
    assert [(r.actor, r.outcome) for r in rows] == [(ALICE, "ok")]


def test_a_cluster_group_counts_only_for_rules_naming_it(tmp_path, emu):
    out = ask(tmp_path, emu, "scale default/dice-roller to 1", token="bob-token")
    reply = json.loads(out.stdout)
    assert out.exit_code == 1 and reply["actor"] == BOB and reply["refused"], out.output
    assert scale_patches(emu) == []


# --- --as is impersonation the cluster must allow ----------------------------------------------------------------------


def test_as_works_where_the_cluster_allows_impersonation(tmp_path, emu):
    out = ask(tmp_path, emu, "scale default/dice-roller to 1", "--as", "carol")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["actor"] == "carol"
    access = [r["body"]["spec"]["resourceAttributes"] for r in emu.requests() if r["path"] == ACCESS]
    assert {"verb": "impersonate", "group": "", "resource": "users", "name": "carol"} in access
    assert impersonated_users(emu) == {"carol"}        # the write itself went to the API server as carol


@pytest.mark.parametrize("who,token", [("mallory", "alice-token"), ("carol", "bob-token")])
def test_as_is_refused_in_one_line_without_the_clusters_permission(tmp_path, emu, who, token):
    out = ask(tmp_path, emu, "scale default/dice-roller to 1", "--as", who, token=token)
    assert out.exit_code == 2
    assert f'may not impersonate users "{who}"' in out.output and "Traceback" not in out.output
    assert scale_patches(emu) == []


def test_as_from_the_environment_is_impersonation_too(tmp_path, emu):
    out = ask(tmp_path, emu, "show gpus", env={"OPSAGENT_ACTOR": "mallory"})
    assert out.exit_code == 2 and "may not impersonate" in out.output


@pytest.mark.parametrize("name", ["DAEMON", "daemon\u200b", "wаke-proxy", "ｄａｅｍｏｎ"])
def test_as_a_machine_look_alike_is_refused_even_where_impersonation_is_allowed(tmp_path, emu, name):
    IMPERSONATE[ALICE].add(("users", name))
    try:
        out = ask(tmp_path, emu, "scale default/dice-roller to 1", "--as", name)
    finally:
        IMPERSONATE[ALICE].discard(("users", name))
    assert out.exit_code == 2 and ("machine actor" in out.output or "invisible" in out.output), out.output
    assert scale_patches(emu) == []
    assert [r for r in emu.requests() if r["path"] in (REVIEWS, ACCESS)][1:] == []   # refused before asking the cluster


def test_as_group_needs_the_clusters_permission_on_groups(emu):
    allowed = KubeCluster(api_client_for_url(emu.url, token="alice-token"))
    actor = cluster_actor(allowed, as_user="carol", as_groups=("oidc:gpu-oncall",))
    assert (actor.name, actor.groups) == ("carol", ("oidc:gpu-oncall", "system:authenticated"))
    refused = KubeCluster(api_client_for_url(emu.url, token="alice-token"))
    with pytest.raises(IdentityError, match='may not impersonate groups "system:masters"'):
        cluster_actor(refused, as_user="carol", as_groups=("system:masters",))


# --- approvals on a real cluster's database -------------------------------------------------------------------------


@pytest.fixture()
def real_db(tmp_path):
    from opsagent.approvals import ApprovalQueue
    from opsagent.clock import RealClock
    from opsagent.model import Decision, RuleRef, ToolCall

    db = tmp_path / "real.db"
    queue = ApprovalQueue(db, clock=RealClock())
    call = ToolCall(tool="set_resources", args={"namespace": "default", "name": "dice-roller", "gpus_per_replica": 2},
                    actor="daemon")
    approval = queue.request(call=call, decision=Decision(
        effect="require_approval", rule=RuleRef(file="p.yaml", name="arch"), reason="architecture",
        approvers=("cluster-group:oidc:platform-admins",)))
    queue.close()
    (tmp_path / "pol").mkdir(exist_ok=True)
    (tmp_path / "pol" / "p.yaml").write_text(POLICY)
    return db, approval.id


def test_approvals_on_a_real_database_refuse_an_unverified_name(tmp_path, real_db):
    db, approval_id = real_db
    out = runner.invoke(app, ["approvals", "approve", str(approval_id), "--as", "alice@example.com", "--db", str(db),
                              "--policies", str(tmp_path / "pol")])
    assert out.exit_code == 2 and "records a real cluster's actions" in out.output


def test_the_simulator_cannot_open_a_real_clusters_database_to_mint_demo_identities(tmp_path, real_db):
    db, approval_id = real_db
    out = runner.invoke(app, ["ask", f"approve {approval_id}", "--cluster", "sim:demo", "--as", "alice",
                              "--db", str(db), "--policies", str(tmp_path / "pol")])
    assert out.exit_code == 2 and "holds the records of a real cluster" in " ".join(out.output.split())
    out = runner.invoke(app, ["approvals", "approve", str(approval_id), "--cluster", "sim:demo", "--as", "alice",
                              "--db", str(db), "--policies", str(tmp_path / "pol")])
    assert out.exit_code == 2 and "real cluster" in " ".join(out.output.split())
    shown = json.loads(runner.invoke(app, ["approvals", "show", str(approval_id), "-o", "json", "--db", str(db)]).stdout)
    assert shown["state"] == "pending"


def test_approvals_take_the_decider_and_groups_from_the_cluster(tmp_path, emu, real_db):
    db, approval_id = real_db
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, emu.url, "bob-token"))}
    base = ["--db", str(db), "--policies", str(tmp_path / "pol"), "--cluster", "kube"]
    out = runner.invoke(app, ["approvals", "reject", str(approval_id), "--reason", "no", *base], env=env)
    assert out.exit_code == 1 and "not an approver" in out.output    # bob is not in the cluster group
    env["KUBECONFIG"] = str(kubeconfig(tmp_path, emu.url, "alice-token"))
    out = runner.invoke(app, ["approvals", "reject", str(approval_id), "--reason", "use fewer GPUs", *base], env=env)
    assert out.exit_code == 0, out.output
    shown = json.loads(runner.invoke(app, ["approvals", "show", str(approval_id), "-o", "json", "--db", str(db)]).stdout)
    assert (shown["state"], shown["decided_by"]) == ("rejected", ALICE)


# --- doctor, RBAC --------------------------------------------------------------------------------------------------------


def test_doctor_shows_who_you_are_and_whether_you_may_impersonate(tmp_path, emu):
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, emu.url, "alice-token")), "COLUMNS": "300"}
    out = runner.invoke(app, ["doctor", "-o", "json", "--skip-slack", "--as", "mallory"], env=env)
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["identity"]["status"] == "ok"
    assert ALICE in checks["identity"]["detail"] and "oidc:platform-admins" in checks["identity"]["detail"]
    assert "SelfSubjectReview" in checks["identity"]["detail"]
    assert checks["impersonate"]["status"] == "missing" and 'users "mallory"' in checks["impersonate"]["detail"]
    out = runner.invoke(app, ["doctor", "-o", "json", "--skip-slack", "--as", "carol"], env=env)
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["impersonate"]["status"] == "ok" and "allowed" in checks["impersonate"]["detail"]


def test_identity_reviews_need_no_grant_beyond_system_basic_user(emu):
    from test_kube_rbac import rbac_attributes

    from opsagent.cluster.kube.rbac import PERMISSIONS

    cluster = KubeCluster(api_client_for_url(emu.url, token="alice-token"))
    cluster_actor(KubeCluster(api_client_for_url(emu.url, token="alice-token")), as_user="carol")
    cluster.whoami()
    used = {rbac_attributes(r["method"], r["path"]) for r in emu.requests() if r["path"] in (REVIEWS, ACCESS)}
    # exactly what the built-in system:basic-user ClusterRole grants every authenticated user
    assert used == {("authentication.k8s.io", "selfsubjectreviews", "create"),
                    ("authorization.k8s.io", "selfsubjectaccessreviews", "create")}
    assert not {(p.group, p.resource) for p in PERMISSIONS} & {(g, r) for g, r, _ in used}


# --- a real cluster, when one is configured ------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a real cluster: set KUBECONFIG")
def test_against_a_real_cluster_the_actor_is_kubectl_auth_whoami():
    import shutil
    import subprocess

    from opsagent.identity import actor_from

    cluster = KubeCluster.from_config()
    me = cluster.whoami()
    assert me.username
    actor = cluster_actor(cluster)
    assert actor == actor_from(me.username, me.groups, source=actor.source)
    if shutil.which("kubectl"):
        whoami = json.loads(subprocess.run(["kubectl", "auth", "whoami", "-o", "json"], capture_output=True, text=True,
                                           check=True).stdout)
        assert whoami["status"]["userInfo"]["username"] == me.username


def test_approve_on_kube_records_the_clusters_user_as_the_decider(tmp_path, emu, real_db):
    db, approval_id = real_db
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, emu.url, "alice-token")), "OPSAGENT_ACTOR": None, "COLUMNS": "300"}
    base = ["--db", str(db), "--policies", str(tmp_path / "pol"), "--cluster", "kube"]
    out = runner.invoke(app, ["approvals", "approve", str(approval_id), "--as", "mallory", *base], env=env)
    assert out.exit_code == 2 and 'may not impersonate users "mallory"' in " ".join(out.output.split())
    out = runner.invoke(app, ["approvals", "approve", str(approval_id), *base], env=env)
    # 1: approved, but the call did not succeed on this cluster (its policy denies it); the decision stays recorded
    assert out.exit_code in (0, 1) and f"approval {approval_id} " in out.output, out.output
    shown = json.loads(runner.invoke(app, ["approvals", "show", str(approval_id), "-o", "json", "--db", str(db)]).stdout)
    assert shown["decided_by"] == ALICE and shown["state"] in ("approved", "executed", "failed")
