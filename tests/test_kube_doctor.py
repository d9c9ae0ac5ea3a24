"""`opsagent doctor` against one fake loopback server playing the API server, Ollama and Slack.

Spec: every permission in the adapter's table is checked with a
SelfSubjectAccessReview; a refused one is `missing` with a fix naming verb and
resource, and the command exits 1; the Ollama model must be pulled; the Slack
token must pass auth.test; unconfigured parts are `skipped` and do not fail.
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
    def __init__(self, *, denied: set[tuple[str, str]] = frozenset(), slack_ok: bool = True) -> None:
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
                    attrs = body["spec"]["resourceAttributes"]
                    outer.reviews.append(attrs)
                    res = attrs["resource"] + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
                    allowed = (attrs["verb"], res) not in denied
                    return self._send({**body, "status": {"allowed": allowed, "reason": "" if allowed else "no RBAC policy matched"}}, 201)
                if self.path == "/api/auth.test":
                    ok = self.headers.get("Authorization") == "Bearer xoxb-good" and slack_ok
                    return self._send({"ok": True, "team": "ops", "user": "opsagent"} if ok else {"ok": False, "error": "invalid_auth"})
                self._send({}, 404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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
    assert by_name["rbac: patch deployments/scale.apps"]["status"] == "ok"
    assert len(services.reviews) == len(PERMISSIONS)
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
