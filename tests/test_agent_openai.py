"""The agent against an OpenAI-compatible model server (vLLM, llama.cpp, LM Studio, LiteLLM), over real HTTP.

Spec: `openai:NAME` with a base URL plans through ChatOpenAI against a server
speaking Chat Completions, streaming (SSE with tool-call deltas) or not, and
runs exactly like the Ollama path: the same tools bound, token counts from the
server's `usage` recorded per call, malformed tool arguments counted as
failures, an unreachable server falling back to the offline planner at once.
A bare model name still means Ollama. The API key goes to the server as a
bearer token and nowhere else: not into the audit log, the checkpoints, a
repr or an error message. `opsagent doctor` checks either kind of server:
reachable, model listed, model able to call tools.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from opsagent.agent import AgentConfig
from opsagent.agent.config import split_model
from opsagent.agent.playbook_view import render_steps
from opsagent.cli import doctor
from doubles.agent_world import idle_findings, sim_world, tiny_world
from doubles.fake_openai import FakeOpenAI, Reply

MODEL = "Qwen/Qwen3-8B"
KEY = "sk-test-7f3a9c2e-do-not-log"


@pytest.fixture
def world(tmp_path):
    w = tiny_world(tmp_path)
    yield w
    w.close()


def _config(server: FakeOpenAI, **kw) -> AgentConfig:
    return AgentConfig(model=f"openai:{MODEL}", base_url=server.url, api_key=KEY, request_timeout_seconds=5.0, **kw)


@pytest.mark.parametrize("spec,provider,name", [
    ("qwen3:8b", "ollama", "qwen3:8b"),                 # a bare name is Ollama, colons and all
    ("ollama:qwen3:8b", "ollama", "qwen3:8b"),
    ("openai:Qwen/Qwen3-8B", "openai", "Qwen/Qwen3-8B"),
    ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("openaix:foo", "ollama", "openaix:foo"),           # a look-alike prefix is just an Ollama name
])
def test_model_names_say_which_server(spec, provider, name):
    assert split_model(spec) == (provider, name)


def test_settings_from_the_environment_and_the_key_stays_hidden():
    cfg = AgentConfig.from_env({"OPSAGENT_MODEL": f"openai:{MODEL}", "OPSAGENT_BASE_URL": "http://gpu-box:8000/v1/",
                                "OPENAI_API_KEY": KEY, "OPSAGENT_AGENT_STREAM": "true"})
    assert (cfg.provider, cfg.model_name, cfg.server_url, cfg.stream) == ("openai", MODEL, "http://gpu-box:8000/v1", True)
    assert KEY not in repr(cfg) and KEY not in str(cfg.model_dump()) and cfg.api_key.get_secret_value() == KEY
    with pytest.raises(ValueError, match="needs its server's URL: set --base-url or OPSAGENT_BASE_URL"):
        AgentConfig.from_env({"OPSAGENT_MODEL": f"openai:{MODEL}", "OPENAI_API_KEY": KEY})
    with pytest.raises(ValueError) as bad:
        AgentConfig.from_env({"OPSAGENT_MODEL": "openai:", "OPSAGENT_BASE_URL": "http://x/v1", "OPENAI_API_KEY": KEY})
    assert "OPSAGENT_MODEL" in str(bad.value) and KEY not in str(bad.value)
    with pytest.raises(ValueError, match="OPSAGENT_BASE_URL: .*must start with http"):
        AgentConfig.from_env({"OPSAGENT_MODEL": f"openai:{MODEL}", "OPSAGENT_BASE_URL": "file:///etc/passwd"})


@pytest.mark.parametrize("stream", [False, True])
def test_a_finding_run_over_chat_completions(world, stream):
    with FakeOpenAI([Reply.call("get_workload", namespace="ml", name="llm"),
                     Reply.call("sleep_workload", namespace="ml", name="llm"),
                     Reply.text("Slept ml/llm: it held a GPU with no traffic.")],
                    api_key=KEY, models=(MODEL,)) as server:
        agent = world.agent("llm", config=_config(server, stream=stream))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
        requests = server.chat_requests
        headers = server.headers
    assert report.status == "done" and report.resolved is True and not report.fell_back
    assert [(a.tool, a.status) for a in report.actions] == [("get_workload", "ok"), ("sleep_workload", "ok")]
    assert world.tiny.workloads["ml/llm"].replicas == 0
    assert report.planner == f"llm:openai:{MODEL}"
    # the same tools as the Ollama path, offered in OpenAI's function format; streaming asks for usage
    names = {t["function"]["name"] for t in requests[0]["tools"]}
    assert {"sleep_workload", "get_workload"} <= names and all(t["type"] == "function" for t in requests[0]["tools"])
    assert all(bool(r.get("stream")) is stream for r in requests)
    if stream:
        assert requests[0]["stream_options"] == {"include_usage": True}
    # the tool result goes back as a role=tool message bound to the call id the server chose
    tool_msgs = [m for m in requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[0]["tool_call_id"] == "call_0000"
    # token counts come from the server's usage, per call and per run
    assert (report.llm_calls, report.prompt_tokens, report.completion_tokens) == (len(requests), 120 * len(requests), 12 * len(requests))
    llm_rows = [r for r in world.store.list(limit=1000) if r.kind == "run" and (r.summary or "").startswith("llm call")]
    assert len(llm_rows) == len(requests) and all(r.model == f"openai:{MODEL}" for r in llm_rows)
    assert all(r.prompt_tokens == 120 and r.completion_tokens == 12 for r in llm_rows)
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in headers)
    # the key is in no stored byte: audit rows and checkpoints share this file
    agent.close()
    for path in world.tmp.iterdir():
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_arguments_that_are_not_json_count_as_failures_and_fall_back(world):
    with FakeOpenAI(default=Reply(tool_calls=[("sleep_workload", {"namespace": "ml", "name": "llm"})], mode="bad_json_args"),
                    api_key=KEY, models=(MODEL,)) as server:
        agent = world.agent("llm", config=_config(server))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
        assert len(server.chat_requests) == 3
    assert report.fell_back and report.planner == "offline" and report.resolved is True
    failures = [r.summary for r in world.store.list(limit=1000) if (r.summary or "").startswith("llm call")]
    assert len(failures) == 3 and all("malformed tool call 'sleep_workload'" in s for s in failures)


def test_an_unreachable_server_falls_back_at_once(world):
    server = FakeOpenAI(models=(MODEL,)).start()
    url = server.url
    server.stop()  # nothing listens there now
    agent = world.agent("llm", config=AgentConfig(model=f"openai:{MODEL}", base_url=url, api_key=KEY,
                                                  llm_cooldown_seconds=300))
    [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
    report = agent.handle_finding(finding)
    assert report.fell_back and report.llm_calls == 1 and report.resolved is True
    [row] = [r for r in world.store.list(limit=1000) if (r.summary or "").startswith("llm call")]
    assert "cannot reach the model server" in row.summary and "Connection refused" in row.summary
    fallback = next(r for r in world.store.list(limit=1000) if "falling back" in (r.summary or ""))
    assert fallback.data["unreachable"] is True


def test_a_wrong_key_is_a_failure_that_names_no_key(world):
    with FakeOpenAI(api_key=KEY, models=(MODEL,)) as server:
        agent = world.agent("llm", config=AgentConfig(model=f"openai:{MODEL}", base_url=server.url, api_key="sk-wrong-one"))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
    assert report.fell_back
    summaries = [r.summary or "" for r in world.store.list(limit=1000)]
    assert any("refused the API key (401)" in s for s in summaries)
    assert not any("sk-wrong-one" in s for s in summaries)


def _playbook_follower(world):
    def respond(body):
        messages = body["messages"]
        match = re.search(r"Finding (\S+) \(severity", messages[1]["content"])
        snapshot = world.sim.snapshot()
        finding = next((f for f in world.detect(snapshot) if match and f.id == match.group(1)), None)
        done = sum(1 for m in messages if m["role"] == "assistant" and m.get("tool_calls"))
        if finding is None:
            return Reply.text("The finding is resolved.")
        playbook = world.playbooks.for_finding(finding, snapshot)
        steps = render_steps(playbook, finding, snapshot) if playbook else []
        if done >= len(steps):
            return Reply.text("All playbook steps are done.")
        tool, args = steps[done]
        return Reply.call(tool, **args)

    return respond


def test_the_demo_day_on_the_simulator_with_a_streaming_openai_server(tmp_path):
    world = sim_world(tmp_path)
    try:
        with FakeOpenAI(responder=_playbook_follower(world), models=(MODEL,)) as server:
            agent = world.agent("llm", config=AgentConfig(model=f"openai:{MODEL}", base_url=server.url, stream=True))
            reports = world.run(agent, hours=8)
            requests = len(server.chat_requests)
        assert any(r.resolved for r in reports) and not any(r.fell_back for r in reports)
        assert requests > 0 and sum(r.llm_calls for r in reports) >= requests
        assert world.store.verify().ok
    finally:
        world.close()


# --- doctor -------------------------------------------------------------------------


def _doctor(env: dict[str, str], *args: str):
    import typer

    app = typer.Typer()
    doctor.register(app)

    @app.callback()
    def _root() -> None:
        pass

    clean = {"OLLAMA_HOST": "", "OPSAGENT_MODEL": "", "OPSAGENT_BASE_URL": "", "OPENAI_API_KEY": "",
             "OPSAGENT_PROMETHEUS": "", "SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": "",
             "OPSAGENT_SLACK_TOKEN_FILE": "", "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""}
    result = CliRunner().invoke(app, ["doctor", "--skip-cluster", "--skip-slack", "-o", "json", *args], env={**clean, **env})
    report = json.loads(result.stdout)
    return result, {c["name"]: c for c in report["checks"]}


def test_doctor_checks_an_openai_compatible_server():
    with FakeOpenAI(default=Reply.call("ping", ok=True), api_key=KEY, models=(MODEL, "other")) as server:
        env = {"OPSAGENT_MODEL": f"openai:{MODEL}", "OPSAGENT_BASE_URL": server.url, "OPENAI_API_KEY": KEY}
        result, checks = _doctor(env)
        probe = server.chat_requests[-1]
        missing, checks_missing = _doctor({**env, "OPSAGENT_MODEL": "openai:llama-70b"})
        wrong, checks_wrong = _doctor({**env, "OPENAI_API_KEY": "sk-wrong"})
    assert result.exit_code == 0, result.output
    assert checks["openai-compatible server"]["status"] == "ok" and MODEL in checks["openai-compatible server"]["detail"]
    assert checks["model tool calls"]["status"] == "ok"
    assert probe["tool_choice"]["function"]["name"] == "ping" and probe["max_tokens"] <= 16
    assert missing.exit_code == 1 and checks_missing["openai-compatible server"]["status"] == "missing"
    assert "Qwen/Qwen3-8B" in checks_missing["openai-compatible server"]["detail"]
    assert wrong.exit_code == 1 and checks_wrong["openai-compatible server"]["status"] == "failed"
    assert "401" in checks_wrong["openai-compatible server"]["detail"] and "sk-wrong" not in wrong.output


def test_doctor_says_when_an_openai_model_answers_tool_requests_with_text():
    with FakeOpenAI(default=Reply.call("ping", ok=True), models=(MODEL,), tools_supported=False) as server:
        result, checks = _doctor({"OPSAGENT_MODEL": f"openai:{MODEL}", "OPSAGENT_BASE_URL": server.url})
    assert result.exit_code == 1
    assert checks["model tool calls"]["status"] == "missing" and "plain text" in checks["model tool calls"]["detail"]


def test_doctor_needs_a_url_for_openai_models():
    result, checks = _doctor({"OPSAGENT_MODEL": f"openai:{MODEL}"})
    assert result.exit_code == 1 and checks["openai-compatible server"]["status"] == "failed"
    assert "OPSAGENT_BASE_URL" in checks["openai-compatible server"]["detail"]


class _Ollama(BaseHTTPRequestHandler):
    """Just enough of Ollama for doctor: /api/tags and /api/show with capabilities."""

    capabilities = {"qwen3:8b": ["completion", "tools"], "gemma2:2b": ["completion"]}

    def log_message(self, *args):
        return

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._json({"models": [{"name": n} for n in self.capabilities]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._json({"capabilities": self.capabilities[body["model"]], "details": {}})


def test_doctor_reads_ollama_capabilities():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ollama)
    threading.Thread(target=server.serve_forever, daemon=True, kwargs={"poll_interval": 0.02}).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        ok, checks_ok = _doctor({"OLLAMA_HOST": url, "OPSAGENT_MODEL": "qwen3:8b"})
        no, checks_no = _doctor({"OLLAMA_HOST": url, "OPSAGENT_MODEL": "ollama:gemma2:2b"})
    finally:
        server.shutdown()
    assert ok.exit_code == 0 and checks_ok["ollama"]["status"] == "ok" and checks_ok["model tool calls"]["status"] == "ok"
    assert no.exit_code == 1 and checks_no["model tool calls"]["status"] == "missing"
    assert "completion, not tools" in checks_no["model tool calls"]["detail"]


def test_reasons_and_doctor_output_never_carry_the_key_or_url_credentials():
    import httpx
    import openai

    from opsagent.agent.models import classifier_for

    config = AgentConfig(model=f"openai:{MODEL}", base_url="http://ops:hunter2pw@127.0.0.1:9/v1", api_key=KEY)
    echoed = openai.APIStatusError(f"bad gateway for key {KEY} at http://ops:hunter2pw@127.0.0.1:9/v1",
                                   response=httpx.Response(502, request=httpx.Request("POST", "http://127.0.0.1:9/v1")),
                                   body=None)
    reason = classifier_for(config)(echoed)
    assert reason.startswith("model server error 502") and KEY not in reason and "hunter2pw" not in reason
    result, checks = _doctor({"OPSAGENT_MODEL": f"openai:{MODEL}", "OPSAGENT_BASE_URL": "http://ops:hunter2pw@127.0.0.1:9/v1",
                              "OPENAI_API_KEY": KEY})
    assert result.exit_code == 1 and checks["openai-compatible server"]["status"] == "failed"
    assert "hunter2pw" not in result.output and KEY not in result.output and "***@127.0.0.1:9" in result.output


def test_a_negative_token_count_from_the_server_counts_as_zero(world):
    with FakeOpenAI(default=Reply(content="ok", prompt_tokens=-100_000, completion_tokens=-5), models=(MODEL,)) as server:
        agent = world.agent("llm", config=_config(server))
        [finding] = [f for f in idle_findings(world.cluster.snapshot()) if f.subject == "ml/llm"]
        report = agent.handle_finding(finding)
    assert (report.llm_calls, report.prompt_tokens, report.completion_tokens) == (1, 0, 0)


def test_opsagent_ask_answers_free_text_through_an_openai_compatible_server(tmp_path):
    from doubles.chat_fixtures import write_example_policy
    from opsagent.cli import app

    write_example_policy(tmp_path / "pol")
    args = ["ask", "which workloads hold GPUs right now?", "--as", "carol", "-o", "json", "--policies", str(tmp_path / "pol"),
            "--db", str(tmp_path / "a.db"), "--playbooks", str(tmp_path / "none"),
            "--model", f"openai:{MODEL}"]
    with FakeOpenAI([Reply.call("list_workloads", only_gpu=True), Reply.text("inference/llm and render/render-ui.")],
                    api_key=KEY, models=(MODEL,)) as server:
        result = CliRunner().invoke(app, [*args, "--base-url", server.url],
                                    env={"OPSAGENT_CLUSTER": "sim:demo", "OPENAI_API_KEY": KEY})
        requests = server.chat_requests
    assert result.exit_code == 0, result.output
    assert "inference/llm and render/render-ui." in result.stdout and KEY not in result.output
    assert len(requests) == 2 and requests[0]["model"] == MODEL
    assert any(m["role"] == "tool" for m in requests[1]["messages"])
