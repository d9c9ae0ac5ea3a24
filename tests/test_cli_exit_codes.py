"""Exit codes tell the truth: 0 only when the command did what was asked.

- `ask`: not understood → 1; a free-form request that reaches no usable model
  (nothing listening, or a server that only errors) → 1 with the server named on
  stderr; the same model trouble on a request the grammar serves → 0; a model
  that answers → 0.
- `daemon`: a bounded run whose cycle failed → 1 (the failure logged in one line).
- `approvals approve --cluster`: the call denied by the policy in force → 1,
  with the approval still recorded.

Real parts throughout: the simulator, real SQLite files, a fake Ollama server
speaking Ollama's wire format on loopback, and a closed port for "unreachable".
"""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.approvals import ApprovalQueue
from opsagent.audit import AuditStore
from opsagent.cli import app
from opsagent.daemon import Daemon, DaemonOptions
from opsagent.demo import run_demo
from opsagent.evals.fake_ollama import FakeOllama, Reply

REPO = Path(__file__).resolve().parents[1]
FREE_FORM = "which workloads look idle to you, and what would you do about them?"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"   # nothing listens once the socket closes


def ask(tmp_path: Path, text: str, *extra: str):
    result = CliRunner().invoke(app, ["ask", text, "--as", "alice", "--db", str(tmp_path / "ops.db"),
                                      "--policies", str(REPO / "policies"), "--playbooks", str(REPO / "playbooks"),
                                      *extra])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPSAGENT_MODEL", "OPSAGENT_CLUSTER", "OPSAGENT_OUTPUT", "OPSAGENT_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSAGENT_CLUSTER", "sim:demo")   # these try bad input, not the choice of cluster


def test_ask_exits_1_when_the_message_is_not_understood(tmp_path: Path) -> None:
    r = ask(tmp_path, "blorp the flibbers")
    assert r.exit_code == 1
    assert "I did not understand that" in r.stdout and "not understood" in r.stderr


def test_ask_exits_0_when_a_grammar_command_is_answered(tmp_path: Path) -> None:
    r = ask(tmp_path, "show gpus")
    assert r.exit_code == 0 and "GPU(s)" in r.stdout and r.stderr == ""


def test_ask_names_an_unreachable_model_server_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url()
    monkeypatch.setenv("OLLAMA_HOST", url)
    r = ask(tmp_path, FREE_FORM, "--model", "qwen3:8b")
    assert r.exit_code == 1
    assert url in r.stderr and "cannot reach Ollama" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_ask_exits_1_when_the_model_server_only_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(default=Reply(mode="http_error", status=500)) as server:
        url = server.url
        monkeypatch.setenv("OLLAMA_HOST", url)
        r = ask(tmp_path, FREE_FORM, "--model", "qwen3:8b")
    assert r.exit_code == 1 and url in r.stderr and "500" in r.stderr


def test_model_trouble_does_not_fail_a_request_the_offline_path_covers(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    r = ask(tmp_path, "show gpus", "--model", "qwen3:8b")
    assert r.exit_code == 0 and r.stderr == ""


def test_ask_exits_0_when_the_model_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(default=Reply.text("Nothing looks idle right now.")) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        r = ask(tmp_path, FREE_FORM, "--model", "qwen3:8b")
        assert server.chat_requests
    assert r.exit_code == 0, r.output
    assert "Nothing looks idle" in r.stdout and r.stderr == ""


def test_a_once_run_whose_cycle_failed_exits_1_and_logs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken_hook(*_: object) -> None:
        raise RuntimeError("the run hook broke")

    options = DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                            interval=300, sim_speed=0, once=True)
    daemon = Daemon(options, on_run=broken_hook)
    with caplog.at_level(logging.INFO, logger="opsagent.daemon"):
        assert daemon.run(install_signals=False) == 1
    assert daemon.metrics.value("opsagent_cycles_total", result="error") == 1
    failures = [r for r in caplog.records if "cycle failed" in r.getMessage()]
    assert len(failures) == 1 and "the run hook broke" in failures[0].getMessage()
    assert failures[0].exc_info is None   # no traceback unless --log-level debug


def test_a_once_run_whose_cycle_worked_exits_0(tmp_path: Path) -> None:
    options = DaemonOptions(policies=REPO / "policies", playbooks=REPO / "playbooks", db=tmp_path / "ops.db",
                            interval=300, sim_speed=0, once=True)
    assert Daemon(options).run(install_signals=False) == 0


FREEZE = """\
  - name: placement-frozen
    tools: [set_gpu_placement]
    effect: deny
    reason: placement changes are frozen this week
"""


def test_approve_with_cluster_exits_1_when_the_policy_in_force_denies_the_call(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    db = tmp_path / "demo.db"
    summary = run_demo(hours=1, step_minutes=5, db=db)
    [request] = [p for p in summary.approvals_pending if p.tool == "set_gpu_placement"]
    frozen = tmp_path / "policies"
    shutil.copytree(REPO / "policies", frozen)
    default = frozen / "default.yaml"
    default.write_text(default.read_text().replace("rules:\n", "rules:\n" + FREEZE, 1))
    r = CliRunner().invoke(app, ["approvals", "approve", str(request.id), "--as", "alice", "--db", str(db),
                                 "--policies", str(frozen), "--cluster", "sim:demo"])
    assert "Traceback" not in r.output
    assert r.exit_code == 1, r.output
    assert "denied" in " ".join(r.output.split())
    with AuditStore(db) as store:
        assert ApprovalQueue(store, clock=None).get(request.id).state == "failed"


def test_approve_with_a_cluster_that_cannot_be_opened_exits_1_and_keeps_the_approval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    db = tmp_path / "demo.db"
    summary = run_demo(hours=1, step_minutes=5, db=db)
    [request] = [p for p in summary.approvals_pending if p.tool == "set_gpu_placement"]
    r = CliRunner().invoke(app, ["approvals", "approve", str(request.id), "--as", "alice", "--db", str(db),
                                 "--policies", str(REPO / "policies"), "--cluster", "nowhere"])
    assert "Traceback" not in r.output
    assert r.exit_code == 1 and "not run here" in r.output
    with AuditStore(db) as store:
        assert ApprovalQueue(store, clock=None).get(request.id).state == "approved"   # the daemon runs it later


def test_chat_says_when_the_model_could_not_serve_a_message_and_carries_on(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url()
    monkeypatch.setenv("OLLAMA_HOST", url)
    r = CliRunner().invoke(app, ["chat", "--as", "alice", "--model", "qwen3:8b", "--db", str(tmp_path / "ops.db"),
                                 "--policies", str(REPO / "policies"), "--playbooks", str(REPO / "playbooks")],
                           input=f"{FREE_FORM}\nshow gpus\n")
    assert "Traceback" not in r.output
    assert r.exit_code == 0 and "GPU(s)" in r.stdout
    assert r.stderr.count(url) == 1 and "cannot reach Ollama" in r.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    import subprocess
    import sys
    from datetime import datetime, timezone

    from opsagent.model import AuditEntry

    db = tmp_path / "big.db"
    with AuditStore(db) as store:
        store.record_many([AuditEntry(time=datetime(2026, 1, 5, tzinfo=timezone.utc), kind="run", actor="daemon",
                                      summary="x" * 200) for _ in range(5000)])
    proc = subprocess.Popen([sys.executable, "-m", "opsagent", "audit", "list", "--db", str(db), "--limit", "5000",
                             "-o", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"{")
    proc.stdout.close()   # like `| head -1`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and b"Traceback" not in err and err == b""


def test_a_port_in_use_is_one_line_with_a_hint_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["daemon", "--once", "--sim-speed", "0", "--db", str(tmp_path / "d.db"),
                                          "--listen", f"127.0.0.1:{port}"])
    # the --listen given cannot be used: a bad argument (2), named, as the wake proxy says it
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert lines[0] == f"error: --listen 127.0.0.1:{port}: cannot listen: Address already in use"
    assert "--listen" in lines[1]
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_ctrl_c_mid_command_is_one_line_and_exit_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while a command works: said in one line with a hint, the shell's 130, no traceback, no silence."""
    import opsagent.cli.audit as audit_cli

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(audit_cli, "open_store", interrupted)
    r = CliRunner().invoke(app, ["audit", "list", "--db", str(tmp_path / "ops.db")])
    assert r.exit_code == 130
    assert "interrupted (Ctrl-C)" in r.stderr and "hint:" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 2
