"""One output module for every data command: `-o name`, `-o wide` and `--no-headers` on the audit and
approvals lists as on `get`, and what an `-o` value a command does not offer does.

Decided: `-o name` (or any value) given on the command line to a command that does not offer it is a
one-line usage error naming the values it does offer; the same value from OPSAGENT_OUTPUT, a preference
for the whole shell, falls back to `table` on commands without it, so `export OPSAGENT_OUTPUT=name` for
`get` does not break `doctor` or `policy lint`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_get import BOX, run


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("demo")
    out = run("demo", "--db", str(where / "demo.db"), cwd=where)
    assert out.returncode == 0, out.stderr
    return where / "demo.db"


def test_audit_list_name_wide_and_no_headers(demo_db: Path, tmp_path: Path) -> None:
    names = run("audit", "list", "--db", str(demo_db), "--limit", "3", "-o", "name", cwd=tmp_path)
    assert names.returncode == 0, names.stderr
    ids = [int(line.removeprefix("audit/")) for line in names.stdout.splitlines()]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    table = run("audit", "list", "--db", str(demo_db), "--limit", "3", cwd=tmp_path).stdout.splitlines()
    wide = run("audit", "list", "--db", str(demo_db), "--limit", "3", "-o", "wide", cwd=tmp_path).stdout.splitlines()
    assert not BOX & set("".join(table + wide))
    assert "HASH" not in table[0].split() and {"CHANNEL", "RUN", "HASH"} <= set(wide[0].split())
    records = json.loads(run("audit", "list", "--db", str(demo_db), "--limit", "3", "-o", "json", cwd=tmp_path).stdout)
    assert records[0]["hash"][:12] in wide[1].split()
    bare = run("audit", "list", "--db", str(demo_db), "--limit", "3", "--no-headers", cwd=tmp_path).stdout.splitlines()
    assert [int(line.split()[0]) for line in bare] == ids
    found = run("audit", "search", "scale", "--db", str(demo_db), "--limit", "2", "-o", "name", cwd=tmp_path)
    assert found.returncode == 0 and all(line.startswith("audit/") for line in found.stdout.splitlines())


def test_approvals_list_wide_adds_args_and_expiry(demo_db: Path, tmp_path: Path) -> None:
    table = run("approvals", "list", "--db", str(demo_db), cwd=tmp_path).stdout.splitlines()
    wide = run("approvals", "list", "--db", str(demo_db), "-o", "wide", cwd=tmp_path).stdout.splitlines()
    assert table[0].split()[:2] == ["ID", "STATE"] and "ARGS" not in table[0]
    assert {"ARGS", "EXPIRES", "RULE"} <= set(wide[0].split())
    assert "namespace=inference" in wide[1]
    names = run("approvals", "list", "--db", str(demo_db), "-o", "name", cwd=tmp_path).stdout.splitlines()
    assert names and all(n.startswith("approval/") for n in names)
    assert len(names) == len(table) - 1
    bare = run("approvals", "list", "--db", str(demo_db), "--no-headers", cwd=tmp_path).stdout.splitlines()
    assert [line.split() for line in bare] == [line.split() for line in table[1:]]


def test_unsupported_output_from_the_flag_is_one_line_naming_the_choices(tmp_path: Path) -> None:
    out = run("policy", "lint", str(Path(__file__).resolve().parents[1] / "policies"), "-o", "name", cwd=tmp_path)
    assert out.returncode == 2
    said = " ".join(out.stderr.replace("│", " ").split())
    assert "'name' is not offered here; use one of: table, wide, json, yaml" in said


def test_unsupported_output_from_the_environment_falls_back_to_table(tmp_path: Path) -> None:
    policies = str(Path(__file__).resolve().parents[1] / "policies")
    plain = run("policy", "lint", policies, cwd=tmp_path)
    named = run("policy", "lint", policies, cwd=tmp_path, env={"OPSAGENT_OUTPUT": "name"})
    assert named.returncode == plain.returncode == 0, named.stderr
    assert named.stdout == plain.stdout
    as_json = run("policy", "lint", policies, cwd=tmp_path, env={"OPSAGENT_OUTPUT": "json"})
    assert json.loads(as_json.stdout)["ok"] is True


def test_an_output_no_command_offers_is_an_error_even_from_the_environment(tmp_path: Path) -> None:
    """OPSAGENT_OUTPUT=xml is a typo, not a preference another command serves: it must not become a table."""
    out = run("get", "workloads", "--cluster", "sim:demo", cwd=tmp_path, env={"OPSAGENT_OUTPUT": "xml"})
    assert out.returncode == 2 and out.stdout == ""
    said = " ".join(out.stderr.replace("│", " ").split())
    assert "OPSAGENT_OUTPUT" in said and "'xml' is not offered here" in said


def test_columns_stay_aligned_and_yaml_readable_with_names_in_any_script() -> None:
    import io

    import yaml

    from opsagent.cli.output import Column, Format, emit, table_lines
    from rich.cells import cell_len

    rows = [{"name": "rendér-ü界", "n": 1}, {"name": "llm", "n": 2}]
    columns = [Column("name", lambda r: r["name"]), Column("n", lambda r: r["n"])]
    lines = table_lines(rows, columns, wide=False, headers=True)
    # the second column starts at the same terminal column on every line (界 takes two)
    starts = {cell_len(line[: len(line) - len(line.split()[-1])]) for line in lines}
    assert len(starts) == 1, lines
    out = io.StringIO()
    emit(rows, columns, Format.yaml, kind="x", name_of=lambda r: r["name"], out=out)
    assert "rendér-ü界" in out.getvalue() and yaml.safe_load(out.getvalue())[0]["name"] == "rendér-ü界"
