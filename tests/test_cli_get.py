"""`opsagent get`: kubectl-style reads of what opsagent sees, safe in pipes, writing nothing.

Promises tried here: plain columns with no box drawing or wrapped headers when
piped; json, yaml and name output for scripts; the policy's scope limits what
is shown; no cluster configured is a one-line error with a hint, never a
silent simulator; a missing NAME exits 1; nothing is written (no audit row,
no file in the current directory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BOX = set("─│┌┐└┘├┤┬┴┼━┃┏┓┗┛╭╮╯╰═║")


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_") and k != "KUBECONFIG"}
    base.update({"HOME": str(cwd), "COLUMNS": "60", "PYTHONPATH": str(REPO)})
    return subprocess.run([sys.executable, "-c", "from opsagent.cli import main; main()", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=120)


def test_piped_table_is_plain_columns_one_line_per_row(tmp_path: Path) -> None:
    out = run("get", "workloads", "--cluster", "sim:demo", "-o", "wide", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert not BOX & set(out.stdout)
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]  # headers whole, though COLUMNS=60
    assert any(line.split()[:2] == ["inference", "llm"] and "registry.internal/inference/vllm-llama:0.9.2" in line for line in lines)
    assert len(lines) == 1 + 4
    bare = run("get", "nodes", "--cluster", "sim:demo", "--no-headers", cwd=tmp_path)
    assert [line.split()[0] for line in bare.stdout.splitlines()] == ["gpu-a", "gpu-b"]


def test_json_yaml_and_name_output(tmp_path: Path) -> None:
    as_json = json.loads(run("get", "workloads", "-n", "inference", "--cluster", "sim:demo", "-o", "json", cwd=tmp_path).stdout)
    assert sorted(w["ref"]["name"] for w in as_json) == ["embedder", "llm"]
    one = yaml.safe_load(run("get", "workloads", "inference/llm", "--cluster", "sim:demo", "-o", "yaml", cwd=tmp_path).stdout)
    assert one["ref"] == {"namespace": "inference", "name": "llm", "kind": "Deployment"} and one["replicas"] == 1
    names = run("get", "gpus", "gpu-b", "--cluster", "sim:demo", "-o", "name", cwd=tmp_path).stdout.split()
    assert names and all(n.startswith("gpu/gpu-b/") for n in names)


def test_the_policy_scope_limits_what_is_shown(tmp_path: Path) -> None:
    policies = tmp_path / "narrow"
    policies.mkdir()
    (policies / "p.yaml").write_text("scope: {namespaces: [render]}\nrules:\n  - {name: reads, risk: read, effect: allow}\n")
    out = run("get", "workloads", "--cluster", "sim:demo", "--policies", str(policies), "-o", "name", cwd=tmp_path)
    assert out.stdout.split() == ["workload/render/render-ui"]
    assert out.stderr == ""  # the folder given is used without comment


def test_no_cluster_is_an_error_with_a_hint_and_no_simulator(tmp_path: Path) -> None:
    out = run("get", "workloads", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert "no cluster to talk to" in out.stderr and "--cluster sim:demo" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 2


def test_bad_kind_and_missing_name(tmp_path: Path) -> None:
    bad = run("get", "pods", "--cluster", "sim:demo", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown kind 'pods'" in bad.stderr
    missing = run("get", "workloads", "nope/x", "--cluster", "sim:demo", cwd=tmp_path)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_reads_write_nothing(tmp_path: Path) -> None:
    from opsagent.audit import AuditStore

    db = tmp_path / "ops.db"
    AuditStore(db).close()
    before = sorted(p.name for p in tmp_path.iterdir())
    rows = subprocess.run([sys.executable, "-c", f"import sqlite3; print(sqlite3.connect({str(db)!r}).execute('select count(*) from audit').fetchone()[0])"],
                          capture_output=True, text=True).stdout
    for args in (["get", "workloads", "--cluster", "sim:demo"], ["get", "findings", "--cluster", "sim:demo"],
                 ["get", "approvals", "--db", str(db)], ["get", "runs", "--db", str(db)]):
        out = run(*args, cwd=tmp_path)
        assert out.returncode == 0, (args, out.stderr)
    after = subprocess.run([sys.executable, "-c", f"import sqlite3; print(sqlite3.connect({str(db)!r}).execute('select count(*) from audit').fetchone()[0])"],
                           capture_output=True, text=True).stdout
    assert rows == after
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("ops.db")) == \
        sorted(n for n in before if not n.startswith("ops.db"))


def test_findings_are_what_the_detectors_see(tmp_path: Path) -> None:
    out = run("get", "findings", "--cluster", "sim:demo", "-o", "json", cwd=tmp_path)
    found = json.loads(out.stdout)
    assert "topology_mismatch:inference/llm" in [f["id"] for f in found]


def test_a_missing_policy_folder_is_one_error(tmp_path: Path) -> None:
    out = run("get", "workloads", "--cluster", "sim:demo", cwd=tmp_path, env={"OPSAGENT_POLICIES": str(tmp_path / "nope")})
    assert out.returncode == 2 and out.stdout == ""
    assert "--policies (from OPSAGENT_POLICIES)" in out.stderr and "no such policy directory" in out.stderr
    assert "cannot read the cluster" not in out.stderr and out.stderr.count("error:") == 1


def test_selectors_read_as_kubectl_reads_them() -> None:
    from opsagent.cli.get import selector

    labels = {"app": "llm", "team": "platform", "example.com/tier": "gpu"}
    for text, matches in [("app=llm", True), ("app==llm", True), ("app!=llm", False), ("app in (llm, web)", True),
                          ("app notin (llm,web),team=platform", False), ("!nope", True), ("!app", False),
                          ("example.com/tier=gpu", True), ("app=llm,team in (platform)", True), ("nope", False)]:
        assert selector(text)(labels) is matches, text


def test_a_selector_that_is_not_one_is_refused_not_an_empty_list(tmp_path: Path) -> None:
    for bad in ("=llm", "app=a=b", "env in (a", "a b"):
        out = run("get", "workloads", "--cluster", "sim:demo", "-l", bad, cwd=tmp_path)
        assert out.returncode == 2 and out.stdout == "", bad
        assert "cannot read" in out.stderr and len(out.stderr.strip().splitlines()) == 2, bad
    unlabelled = run("get", "gpus", "--cluster", "sim:demo", "-l", "app=llm", cwd=tmp_path)
    assert unlabelled.returncode == 2 and unlabelled.stdout == "" and "gpus have no labels" in unlabelled.stderr
