"""`opsagent doctor` against one fake loopback server playing the API server, Ollama and Slack.

Spec: every permission in the adapter's table is checked with a
SelfSubjectAccessReview (the Lease's in --lease-namespace, POD_NAMESPACE in a
pod); a refused one is `missing` with a fix naming verb and resource, and the
command exits 1; the Ollama model must be pulled; unconfigured parts are
`skipped` and do not fail.

Slack, when any of its secrets is set (environment or --slack-token-file): the
bot token must pass auth.test; in Socket Mode (asked for, or an app token set)
the app token must pass apps.connections.open; in HTTP mode
SLACK_SIGNING_SECRET must be set. No token ever appears in the output. Run
against the project's fake Slack Web API (tests/doubles/fakeslack.py), and for
refusals against this file's fake, which knows which tokens are good.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import typer
from typer.testing import CliRunner

from opsagent.cli import doctor
from opsagent.cluster.kube.rbac import PERMISSIONS


class FakeServices:
    def __init__(self, *, denied: set[tuple[str, str]] = frozenset(), slack_ok: bool = True,
                 reviews_forbidden: bool = False) -> None:
        self.reviews: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.startswith("/version"):
                    return self._send({"major": "1", "minor": "33", "gitVersion": "v1.33.1"})
                if self.path == "/api/tags":
                    return self._send({"models": [{"name": "qwen3:8b", "model": "qwen3:8b"}]})
                self._send({"kind": "Status", "code": 404}, 404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
                    if reviews_forbidden:   # the access review itself is refused: every permission check fails alike
                        return self._send({"kind": "Status", "code": 403, "reason": "Forbidden",
                                           "message": "selfsubjectaccessreviews is forbidden"}, 403)
                    attrs = body["spec"]["resourceAttributes"]
                    outer.reviews.append(attrs)
                    res = attrs["resource"] + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
                    allowed = (attrs["verb"], res) not in denied
                    return self._send({**body, "status": {"allowed": allowed, "reason": "" if allowed else "no RBAC policy matched"}}, 201)
                if self.path == "/api/auth.test":
                    ok = self.headers.get("Authorization") == "Bearer xoxb-good" and slack_ok
                    return self._send({"ok": True, "team": "ops", "user": "opsagent"} if ok else {"ok": False, "error": "invalid_auth"})
                if self.path == "/api/apps.connections.open":
                    auth = self.headers.get("Authorization") or ""
                    if auth == "Bearer xapp-good":
                        return self._send({"ok": True, "url": "wss://wss-primary.slack.com/link/?ticket=t&app_id=a"})
                    return self._send({"ok": False, "error": "not_allowed_token_type" if "xoxb-" in auth else "invalid_auth"})
                self._send({}, 404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True, kwargs={"poll_interval": 0.02}).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def kubeconfig(tmp_path, url: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))
    return str(path)


def run(args: list[str], env: dict[str, str]):
    app = typer.Typer()
    doctor.register(app)

    @app.callback()
    def _root() -> None:
        pass

    clean = {"OLLAMA_HOST": "", "OPSAGENT_MODEL": "", "OPSAGENT_PROMETHEUS": "", "SLACK_BOT_TOKEN": "",
             "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": "", "OPSAGENT_SLACK_TOKEN_FILE": "", "OPSAGENT_SLACK_MODE": "",
             "OPSAGENT_SLACK_API_URL": "", "SLACK_API_URL": "", "OPSAGENT_LEASE_NAMESPACE": "", "POD_NAMESPACE": "",
             "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""}
    return CliRunner().invoke(app, ["doctor", *args], env={**clean, **env})


@pytest.fixture()
def services():
    fake = FakeServices(denied={("patch", "nodes")})
    yield fake
    fake.close()


def test_all_configured_reports_missing_rbac_and_exits_1(tmp_path, services):
    result = run(["-o", "json"], {"KUBECONFIG": kubeconfig(tmp_path, services.url), "OLLAMA_HOST": services.url,
                                  "OPSAGENT_MODEL": "qwen3:8b", "SLACK_BOT_TOKEN": "xoxb-good",
                                  "SLACK_API_URL": services.url + "/api"})
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["cluster"]["status"] == "ok" and "v1.33.1" in by_name["cluster"]["detail"]
    assert by_name["rbac: patch nodes"]["status"] == "missing"
    assert "grant verb 'patch' on 'nodes'" in by_name["rbac: patch nodes"]["fix"]
    # writes to workloads are asked about in each namespace the shipped policy names, as deploy/ grants them
    governed = [p for p in PERMISSIONS if p.scope == "governed"]
    namespaces = ["chat", "inference", "render", "training"]
    for ns in namespaces:
        assert by_name[f"rbac: patch deployments/scale.apps in {ns}"]["status"] == "ok"
    assert len(services.reviews) == len(PERMISSIONS) - len(governed) + len(governed) * len(namespaces)
    assert {r["namespace"] for r in services.reviews if r["verb"] == "delete"} == set(namespaces)
    lease = [r for r in services.reviews if r["resource"] == "leases"]
    assert {r["verb"] for r in lease} == {"get", "create", "update"} and all(r["namespace"] == "opsagent" for r in lease)
    assert by_name["ollama"]["status"] == "ok" and by_name["slack"]["status"] == "ok"
    assert by_name["prometheus"]["status"] == "skipped" and report["ok"] is False


def test_missing_model_and_bad_slack_token(tmp_path):
    fake = FakeServices()
    try:
        result = run(["-o", "json"], {"KUBECONFIG": kubeconfig(tmp_path, fake.url), "OLLAMA_HOST": fake.url,
                                      "OPSAGENT_MODEL": "llama3.3:70b", "SLACK_BOT_TOKEN": "xoxb-revoked",
                                      "SLACK_API_URL": fake.url + "/api"})
    finally:
        fake.close()
    by_name = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert by_name["ollama"]["status"] == "missing" and by_name["ollama"]["fix"] == "ollama pull llama3.3:70b"
    assert by_name["slack"]["status"] == "failed" and "invalid_auth" in by_name["slack"]["detail"]
    assert result.exit_code == 1


def test_unconfigured_parts_are_skipped_and_pass(tmp_path):
    result = run(["--skip-cluster"], {})
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout and "All required checks pass." in result.stdout


def test_unreachable_cluster_fails_with_a_hint(tmp_path):
    result = run(["-o", "json", "--timeout", "1"], {"KUBECONFIG": kubeconfig(tmp_path, "http://127.0.0.1:9")})
    assert result.exit_code == 1
    [cluster] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "cluster"]
    assert cluster["status"] == "failed" and "KUBECONFIG" in cluster["fix"]


def test_help_ends_with_an_example():
    app = typer.Typer()
    doctor.register(app)

    @app.callback()
    def _root() -> None:
        pass

    result = CliRunner().invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0 and "Example: opsagent doctor" in result.stdout


def slack_checks(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"] if c["name"].startswith("slack")}


def test_socket_mode_checks_the_app_token_on_the_fake_slack_api():
    from doubles.fakeslack import FakeSlack

    with FakeSlack() as fake:
        result = run(["--skip-cluster", "-o", "json"], {"SLACK_BOT_TOKEN": "xoxb-1-secretbot", "SLACK_APP_TOKEN": "xapp-1-secretapp",
                                                       "OPSAGENT_SLACK_API_URL": fake.api_url})
        methods = [c.method for c in fake.calls]
    assert result.exit_code == 0, result.output
    checks = slack_checks(result)
    assert checks["slack"]["status"] == "ok" and checks["slack app token"]["status"] == "ok"
    assert methods == ["auth.test", "apps.connections.open"]
    assert "secretbot" not in result.output and "secretapp" not in result.output


def test_http_mode_needs_the_signing_secret():
    from doubles.fakeslack import FakeSlack

    with FakeSlack() as fake:
        missing = run(["--skip-cluster", "-o", "json"], {"SLACK_BOT_TOKEN": "xoxb-1-secretbot", "OPSAGENT_SLACK_API_URL": fake.api_url})
        present = run(["--skip-cluster", "-o", "json", "--slack-mode", "http"],
                      {"SLACK_BOT_TOKEN": "xoxb-1-secretbot", "SLACK_APP_TOKEN": "xapp-1-secretapp",
                       "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5", "OPSAGENT_SLACK_API_URL": fake.api_url})
        methods = [c.method for c in fake.calls]
    assert missing.exit_code == 1
    assert slack_checks(missing)["slack signing secret"]["status"] == "missing"
    assert "SLACK_SIGNING_SECRET" in slack_checks(missing)["slack signing secret"]["fix"]
    assert present.exit_code == 0, present.output
    assert slack_checks(present)["slack signing secret"]["status"] == "ok"
    assert "apps.connections.open" not in methods                 # http mode: the app token is not used
    assert "8f742231b10e" not in present.output


@pytest.mark.parametrize("app_token,error", [("xapp-revoked-secretapp", "invalid_auth"), ("xoxb-good", "not_allowed_token_type")])
def test_a_refused_app_token_fails(app_token, error):
    fake = FakeServices()
    try:
        result = run(["--skip-cluster", "-o", "json"], {"SLACK_BOT_TOKEN": "xoxb-good", "SLACK_APP_TOKEN": app_token,
                                                       "SLACK_API_URL": fake.url + "/api"})
    finally:
        fake.close()
    assert result.exit_code == 1
    checks = slack_checks(result)
    assert checks["slack"]["status"] == "ok"
    assert checks["slack app token"]["status"] == "failed" and error in checks["slack app token"]["detail"]
    assert "connections:write" in checks["slack app token"]["fix"] and "secretapp" not in result.output


def test_secrets_from_the_token_file(tmp_path):
    fake = FakeServices()
    token_file = tmp_path / "slack.env"
    token_file.write_text("# Slack\nSLACK_BOT_TOKEN=xoxb-good\nexport SLACK_APP_TOKEN='xapp-good'\n")
    try:
        result = run(["--skip-cluster", "-o", "json", "--slack-token-file", str(token_file)],
                     {"SLACK_API_URL": fake.url + "/api"})
    finally:
        fake.close()
    assert result.exit_code == 0, result.output
    assert {n: c["status"] for n, c in slack_checks(result).items()} == {"slack": "ok", "slack app token": "ok"}
    assert "xoxb-good" not in result.output and "xapp-good" not in result.output


def test_a_bad_token_file_names_file_and_line(tmp_path):
    token_file = tmp_path / "slack.env"
    token_file.write_text("SLACK_BOT_TOKEN=xoxb-good\nSLACK_TOKEN=xoxb-typo\n")
    result = run(["--skip-cluster", "--slack-token-file", str(token_file)], {})
    assert result.exit_code != 0
    assert f"{token_file}:2" in result.output and "xoxb-typo" not in result.output


def test_an_app_token_without_a_bot_token_is_missing():
    result = run(["--skip-cluster", "-o", "json"], {"SLACK_APP_TOKEN": "xapp-1-secretapp", "SLACK_API_URL": "http://127.0.0.1:9/api"})
    assert result.exit_code == 1
    assert slack_checks(result)["slack"]["status"] == "missing"


def test_lease_permissions_are_checked_in_the_pods_namespace(tmp_path, services):
    run(["-o", "json"], {"KUBECONFIG": kubeconfig(tmp_path, services.url), "POD_NAMESPACE": "ops-team"})
    lease = [r for r in services.reviews if r["resource"] == "leases"]
    assert lease and all(r["namespace"] == "ops-team" for r in lease)


def test_one_failure_behind_many_checks_prints_its_fix_once(tmp_path):
    fake = FakeServices(reviews_forbidden=True)
    try:
        result = run([], {"KUBECONFIG": kubeconfig(tmp_path, fake.url)})
    finally:
        fake.close()
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    rbac = [line for line in lines if "rbac:" in line and not line.startswith("fix")]
    fixes = [line.split(": ", 1)[1] for line in lines if line.startswith("fix (")]
    assert len(rbac) > 3 and all(line.startswith("failed") for line in rbac)
    assert fixes and len(fixes) == len(set(fixes))   # every piece of advice once
    assert any(line.startswith("fix (rbac: ") and " more): " in line for line in lines), lines   # naming what it fixes
