"""`opsagent slack` as a real process in HTTP mode, talking to a fake Slack Web API on loopback.

It reads its secrets from a token file, answers signed requests, refuses
unsigned ones, posts an approval request the daemon left in the database to
the approvals channel, and never writes a token to its output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from doubles.fakeslack import FakeSlack
from doubles.chat_fixtures import write_example_policy
from opsagent.chat.wiring import build_runtime
from opsagent.model import ToolCall
from slack_sdk.signature import SignatureVerifier

BOT_TOKEN = "xoxb-1111111111-2222222222-AbCdEfGhIjKlMnOpQrStUvWx"
SIGNING_SECRET = "0123456789abcdef0123456789abcdef"


def test_slack_http_mode_process(tmp_path):
    write_example_policy(tmp_path / "pol")
    (tmp_path / "users.yaml").write_text("users:\n  U04CAROL01: carol\ndefault: readonly\n")
    (tmp_path / "tokens").write_text(f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_SIGNING_SECRET={SIGNING_SECRET}\n")
    seeded = build_runtime(cluster="sim:demo", policies=tmp_path / "pol", db=tmp_path / "a.db")
    try:  # the daemon asked for an approval before the Slack app started
        pending = seeded.gate.submit(ToolCall(tool="scale_workload", actor="daemon", channel="daemon",
                                              args={"namespace": "inference", "name": "llm", "replicas": 2}))
        assert pending.status == "pending_approval"
    finally:
        seeded.close()
    with FakeSlack() as fake:
        cmd = [str(Path(sys.executable).parent / "opsagent"), "slack", "--mode", "http", "--host", "127.0.0.1", "--port", "0",
               "--token-file", str(tmp_path / "tokens"), "--users", str(tmp_path / "users.yaml"),
               "--api-url", fake.api_url, "--policies", str(tmp_path / "pol"), "--db", str(tmp_path / "a.db"),
               "--cluster", "sim:demo", "--playbooks", str(tmp_path / "none"),
               "--approvals-channel", "C0APPROVALS", "--poll-seconds", "0.1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        output = []
        try:
            port = None
            deadline = time.monotonic() + 60
            while port is None and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                output.append(line)
                m = re.search(r"HTTP mode on 127\.0\.0\.1:(\d+)", line)
                port = int(m.group(1)) if m else None
            assert port, "".join(output)
            url = f"http://127.0.0.1:{port}/slack/events"
            body = ("command=%2Fops&text=show+gpus&user_id=U04CAROL01&channel_id=C05K8R2LQ7M&team_id=T0123ABCDEF"
                    f"&response_url={fake.response_url()}&trigger_id=1.2.3")
            stamp = str(int(time.time()))
            sig = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
            form = {"content-type": "application/x-www-form-urlencoded"}
            ok = httpx.post(url, content=body, headers={**form, "x-slack-request-timestamp": stamp, "x-slack-signature": sig}, timeout=30)
            bad = httpx.post(url, content=body, headers=form, timeout=30)
            assert (ok.status_code, bad.status_code) == (200, 401)
            deadline = time.monotonic() + 30
            while "GPU(s)" not in "\n".join(fake.texts()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "GPU(s)" in "\n".join(fake.texts())
            while not any(p["channel"] == "C0APPROVALS" for p in fake.calls_to("chat.postMessage")) and time.monotonic() < deadline:
                time.sleep(0.05)
            to_approvers = [p for p in fake.calls_to("chat.postMessage") if p["channel"] == "C0APPROVALS"]
            assert len(to_approvers) == 1 and f"approval-{pending.approval_id}" in json.dumps(to_approvers[0]["blocks"])
        finally:
            proc.terminate()
            rest, _ = proc.communicate(timeout=30)
            output.append(rest or "")
    text = "".join(output)
    assert BOT_TOKEN not in text and SIGNING_SECRET not in text
    assert b"xoxb-" not in b"".join(p.read_bytes() for p in tmp_path.glob("a.db*"))


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slack_process(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "tokens").write_text(f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_SIGNING_SECRET={SIGNING_SECRET}\n")
    cmd = [str(Path(sys.executable).parent / "opsagent"), "slack", "--mode", "http", "--port", "0",
           "--token-file", str(tmp_path / "tokens"), "--db", str(tmp_path / "a.db"), "--cluster", "sim:demo",
           "--playbooks", str(tmp_path / "none"), *extra]
    workdir = tmp_path / "elsewhere"  # no policies/ folder here: nothing may be read relative to it
    workdir.mkdir(exist_ok=True)
    env = {**os.environ, "COLUMNS": "400"}  # one error per line, however long its path
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=120, env=env)


def test_slack_without_network_exits_with_a_short_error_and_hint_not_a_traceback(tmp_path):
    write_example_policy(tmp_path / "pol")
    (tmp_path / "pol" / "actors").mkdir()
    (tmp_path / "pol" / "actors" / "slack-users.yaml").write_text("users:\n  U04CAROL01: carol\n")
    done = _slack_process(tmp_path, "--policies", str(tmp_path / "pol"),
                          "--api-url", f"http://127.0.0.1:{_closed_port()}/api/")
    text = done.stdout + done.stderr
    assert done.returncode == 2, text
    assert "cannot reach the Slack Web API" in text and "auth.test" in text
    assert "hint:" in text and "Traceback" not in text and "URLError" not in text
    assert BOT_TOKEN not in text and SIGNING_SECRET not in text


def test_slack_users_file_defaults_to_the_policies_directory(tmp_path):
    write_example_policy(tmp_path / "pol")
    missing = _slack_process(tmp_path, "--policies", str(tmp_path / "pol"),
                             "--api-url", f"http://127.0.0.1:{_closed_port()}/api/")
    assert missing.returncode == 2
    assert f"{tmp_path / 'pol' / 'actors' / 'slack-users.yaml'}: cannot read the user mapping file" in missing.stderr
    (tmp_path / "pol" / "actors").mkdir()
    (tmp_path / "pol" / "actors" / "slack-users.yaml").write_text("users:\n  U04CAROL01: carol\n")
    found = _slack_process(tmp_path, "--policies", str(tmp_path / "pol"),
                           "--api-url", f"http://127.0.0.1:{_closed_port()}/api/")
    # The mapping file was found and read; start-up got as far as calling Slack.
    assert "user mapping" not in found.stderr and "cannot reach the Slack Web API" in found.stderr, found.stderr
