"""Cluster and database resolution for commands that write (ask, chat, daemon, slack, wake-proxy).

Promises tried here: with no kubeconfig, `ask` stops with a one-line hint to try
the simulator instead of choosing it silently; with `--cluster sim:demo` it works
and leaves no file in the current directory or the state directory; a database
keeps the clock kind it was created with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSAGENT_", "XDG_")) and k != "KUBECONFIG"}
    env.update({"HOME": str(cwd), "PYTHONPATH": str(REPO)})
    return subprocess.run([sys.executable, "-c", "from opsagent.cli import main; main()", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("command", [["ask", "show gpus"], ["daemon", "--once"]])
def test_no_cluster_configured_is_a_one_line_hint_not_the_simulator(tmp_path: Path, command: list[str]) -> None:
    out = run(*command, cwd=tmp_path)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors[0].startswith("error: no cluster to talk to")
    assert "--cluster sim:demo" in errors[1]
    assert "Traceback" not in out.stderr
    assert files_under(tmp_path) == []


def test_simulator_without_db_writes_nothing_that_stays(tmp_path: Path) -> None:
    out = run("ask", "scale inference/llm to 2", "--as", "carol", "--cluster", "sim:demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("done:")
    assert "database: temporary" in out.stderr
    assert files_under(tmp_path) == []   # neither ./opsagent.db nor ~/.local/state/opsagent/opsagent.db


def test_a_real_clock_database_is_refused_by_the_simulator(tmp_path: Path) -> None:
    from opsagent.audit.store import AuditStore

    db = tmp_path / "kube.db"
    store = AuditStore(db)
    store.note_clock("real")
    store.close()
    out = run("ask", "scale inference/llm to 2", "--as", "carol", "--cluster", "sim:demo", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 2
    assert "holds the records of a real cluster" in out.stderr
    check = AuditStore(db)
    assert check.clock_kind() == "real" and check.latest_time() is None
    check.close()


def test_a_virtual_clock_database_is_refused_by_a_real_cluster(tmp_path: Path) -> None:
    from opsagent.audit.store import AuditStore
    from opsagent.runtime import RuntimeError_, open_runtime

    db = tmp_path / "sim.db"
    store = AuditStore(db)
    store.note_clock("virtual")
    store.close()
    class NotSim:  # a cluster object that is not the simulator, on the real clock
        pass

    with pytest.raises(RuntimeError_, match="simulated cluster"):
        open_runtime(cluster="kube", policies=REPO / "policies", db=db, cluster_obj=NotSim())


def test_mcp_on_the_simulator_leaves_the_real_clusters_default_database_alone(tmp_path: Path) -> None:
    """`mcp --cluster sim:demo` without --db wrote simulated records (a virtual clock) into
    ~/.local/state/opsagent/opsagent.db when that folder existed, and every later real-cluster command refused it."""
    state = tmp_path / ".local" / "state" / "opsagent"
    state.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSAGENT_", "XDG_")) and k != "KUBECONFIG"}
    env.update({"HOME": str(tmp_path), "PYTHONPATH": str(REPO)})
    out = subprocess.run([sys.executable, "-c", "from opsagent.cli import main; main()", "mcp", "--cluster", "sim:demo"],
                         cwd=tmp_path, env=env, input="", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "database: temporary" in out.stderr
    assert files_under(tmp_path) == []
