"""`wake-proxy` on a port already taken: one clean error line with a hint, and nothing after it (no
"Unclosed client session" from a proxy whose site never started, and no "listening on" first)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_port_in_use_is_one_clean_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}
        run = subprocess.run(
            [sys.executable, "-m", "opsagent", "wake-proxy", "--routes", str(ROOT / "deploy" / "wake-routes.yaml"),
             "--cluster", "sim:demo", "--policies", str(ROOT / "policies"), "--db", str(tmp_path / "w.db"),
             "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 2
    assert "cannot listen" in run.stderr and "address already in use" in run.stderr
    assert "Traceback" not in run.stderr
    assert "Unclosed" not in run.stderr, run.stderr
    assert "listening on" not in run.stdout   # never said of a port another process holds

