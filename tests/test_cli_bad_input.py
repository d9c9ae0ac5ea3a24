"""Bad input, command by command: one clear line, a non-zero exit, never a traceback.

A table of arguments a person could mistype or a script could get wrong:
numbers that are huge, negative, zero, NaN or infinite; empty strings; bad
durations; bad NAMESPACE/NAME targets; and files of every wrong kind (missing,
a directory, binary, YAML that is not a mapping, broken JSON where YAML is
expected, an empty or text file given as the database, a missing directory).
Each row names a word the message must contain: the argument or the file.

Every row runs through the real `opsagent` command (typer's runner). The
command must exit non-zero, print no traceback, let no exception escape, and
must not fall back to the "internal error" line (that line is the safety net
for bugs; none of these inputs is a bug).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.audit import AuditStore
from opsagent.cli import app
from opsagent.model import AuditEntry

REPO = Path(__file__).resolve().parents[1]
BIG = "99999999999999999999999"
HUGE = "1e300"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    (d / "dir").mkdir()
    (d / "text.db").write_text("this is a note, not a database\n")
    (d / "empty.db").write_bytes(b"")
    (d / "bin.yaml").write_bytes(bytes(range(256)) * 8)
    (d / "list.yaml").write_text("- one\n- two\n")
    (d / "scalar.yaml").write_text("just a sentence\n")
    (d / "json.yaml").write_text('{"name": "x", "nodes": [1, 2}\n')
    (d / "pol").mkdir()
    (d / "pol" / "p.yaml").write_text("- not\n- a mapping\n")
    (d / "books").mkdir()
    (d / "books" / "b.yaml").write_bytes(b"\xff\xfe\x00 binary")
    with sqlite3.connect(d / "foreign.db") as conn:
        conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT)")
    with AuditStore(d / "ops.db") as store:
        store.record(AuditEntry(time=datetime(2026, 1, 5, tzinfo=timezone.utc), kind="run", actor="daemon", summary="x"))
    return {"d": str(d), "db": str(d / "ops.db"), "P": str(REPO / "policies"), "PB": str(REPO / "playbooks"),
            "nodir": str(d / "no" / "such" / "dir" / "x.db"), "missing": str(d / "missing.yaml"),
            **{k: str(d / f) for k, f in [("dir", "dir"), ("text", "text.db"), ("empty", "empty.db"),
                                           ("bin", "bin.yaml"), ("list", "list.yaml"), ("scalar", "scalar.yaml"),
                                           ("json", "json.yaml"), ("pol", "pol"), ("books", "books"),
                                           ("foreign", "foreign.db")]}}


# (arguments, a word the message must contain). {name} is replaced from `files`.
CASES: list[tuple[str, str]] = [
    # ids: huge, negative, zero, not a number
    (f"approvals show {BIG} --db {{db}}", "approval_id"),
    ("approvals show 0 --db {db}", "approval_id"),
    ("approvals show abc --db {db}", "approval_id"),
    ("approvals show 1.5 --db {db}", "approval_id"),
    (f"approvals approve {BIG} --as alice --policies {{P}} --db {{db}}", "approval_id"),
    ("approvals approve 0 --as alice --policies {P} --db {db}", "approval_id"),
    (f"approvals reject {BIG} --reason no --as alice --policies {{P}} --db {{db}}", "approval_id"),
    ("approvals reject 1 --reason '' --as alice --policies {P} --db {db}", "--reason"),
    (f"audit show {BIG} --db {{db}}", "audit_id"),
    ("audit show 0 --db {db}", "audit_id"),
    ("audit show nan --db {db}", "audit_id"),
    # limits and counts
    (f"audit list --limit {BIG} --db {{db}}", "--limit"),
    ("audit list --limit 0 --db {db}", "--limit"),
    ("audit list --limit -3 --db {db}", "--limit"),
    ("audit list --limit nan --db {db}", "--limit"),
    ("audit list --limit inf --db {db}", "--limit"),
    ("audit list --limit '' --db {db}", "--limit"),
    (f"audit search idle --limit {BIG} --db {{db}}", "--limit"),
    ("audit search '' --db {db}", "search text"),
    ("audit search '   ' --db {db}", "search text"),
    # times and durations
    ("audit list --since 99999999999d --db {db}", "--since"),
    ("audit list --since nan --db {db}", "--since"),
    ("audit list --since inf --db {db}", "--since"),
    ("audit list --since -5h --db {db}", "--since"),
    ("audit list --since '' --db {db}", "--since"),
    ("audit list --since 1.2.3h --db {db}", "--since"),
    ("audit list --until 2026-13-45 --db {db}", "--until"),
    ("audit list --until yesterday --db {db}", "--until"),
    ("audit stats --since 1e30d --db {db}", "--since"),
    ("audit export --since 99999999999999h --db {db}", "--since"),
    ("audit list --outcome maybe --db {db}", "--outcome"),
    ("audit list --kind '' --db {db}", "--kind"),
    ("audit list -o xml --db {db}", "--output"),
    ("audit export --format xml --db {db}", "--format"),
    ("audit export --out {dir} --db {db}", "--out"),
    ("audit export --out {nodir} --db {db}", "--out"),
    ("audit export --out /dev/full --db {db}", "--out"),
    ("approvals list --state maybe --db {db}", "--state"),
    # the database file, of every wrong kind
    ("audit list --db {text}", "text.db"),
    ("audit list --db {empty}", "empty.db"),
    ("audit list --db {dir}", "dir"),
    ("audit list --db {nodir}", "x.db"),
    ("audit list --db {foreign}", "foreign.db"),
    ("audit verify --db {text}", "text.db"),
    ("audit verify --db {empty}", "empty.db"),
    ("audit verify --db {foreign}", "foreign.db"),
    ("audit verify --db {bin}", "bin.yaml"),
    ("audit stats --db {foreign}", "foreign.db"),
    ("audit search x --db {empty}", "empty.db"),
    ("audit show 1 --db {bin}", "bin.yaml"),
    ("approvals list --db {text}", "text.db"),
    ("approvals list --db {empty}", "empty.db"),
    ("approvals list --db {dir}", "dir"),
    ("approvals list --db {foreign}", "foreign.db"),
    ("approvals show 1 --db {nodir}", "x.db"),
    ("approvals approve 1 --as alice --policies {P} --db {text}", "text.db"),
    ("approvals reject 1 --reason no --as alice --policies {P} --db {empty}", "empty.db"),
    ("agent waiting --db {text}", "text.db"),
    ("agent waiting --db {foreign}", "foreign.db"),
    ("agent waiting --db {nodir}", "x.db"),
    ("ask 'show gpus' --as alice --policies {P} --playbooks {PB} --db {text}", "text.db"),
    ("ask 'show gpus' --as alice --policies {P} --playbooks {PB} --db {foreign}", "foreign.db"),
    ("ask 'show gpus' --as alice --policies {P} --playbooks {PB} --db {nodir}", "x.db"),
    ("ask 'show gpus' --as alice --policies {P} --playbooks {PB} --db {dir}", "dir"),
    ("daemon --once --sim-speed 0 --policies {P} --playbooks {PB} --db {text}", "text.db"),
    ("daemon --once --sim-speed 0 --policies {P} --playbooks {PB} --db {empty}", "empty.db"),
    ("daemon --once --sim-speed 0 --policies {P} --playbooks {PB} --db {foreign}", "foreign.db"),
    ("daemon --once --sim-speed 0 --policies {P} --playbooks {PB} --db {nodir}", "x.db"),
    ("agent run --hours 1 --policies {P} --playbooks {PB} --db {text}", "text.db"),
    ("agent run --hours 1 --policies {P} --playbooks {PB} --db {nodir}", "x.db"),
    ("demo --hours 1 --db {foreign}", "foreign.db"),
    ("demo --hours 1 --db {text}", "text.db"),
    ("demo --hours 1 --db {nodir}", "x.db"),
    # approvals: who acts
    ("approvals approve 1 --as daemon --policies {P} --db {db}", "--as"),
    ("approvals approve 1 --as alice --policies {missing} --db {db}", "missing.yaml"),
    ("approvals approve 1 --as alice --policies {pol} --db {db}", "pol"),
    ("approvals approve 1 --as alice --policies {bin} --db {db}", "bin.yaml"),
    # the simulator
    ("sim demo --hours 1e9", "--hours"),
    ("sim demo --hours inf", "--hours"),
    ("sim demo --hours nan", "--hours"),
    ("sim demo --hours -1", "--hours"),
    ("sim demo --hours ''", "--hours"),
    ("sim demo --step-minutes inf", "--step-minutes"),
    ("sim demo --step-minutes nan", "--step-minutes"),
    ("sim demo --step-minutes 0", "--step-minutes"),
    (f"sim demo --step-minutes {HUGE}", "--step-minutes"),
    ("sim demo --seed 1.5", "--seed"),
    ("sim demo --seed abc", "--seed"),
    ("sim nosuch", "nosuch"),
    ("sim {dir}", "dir"),
    ("sim {bin}", "bin.yaml"),
    ("sim {list}", "list.yaml"),
    ("sim {scalar}", "scalar.yaml"),
    ("sim {json}", "json.yaml"),
    ("sim {missing}", "missing.yaml"),
    ("sim ''", "scenario"),
    ("demo --hours 1e9", "--hours"),
    ("demo --hours nan", "--hours"),
    ("demo --hours inf", "--hours"),
    ("demo --hours 0", "--hours"),
    ("demo --step-minutes -5", "--step-minutes"),
    ("demo --step-minutes inf", "--step-minutes"),
    ("agent run --hours 1e9 --db {d}/a1.db", "--hours"),
    ("agent run --hours nan --db {d}/a2.db", "--hours"),
    ("agent run --hours -2 --db {d}/a3.db", "--hours"),
    ("agent run --hours 1 --step 0s --policies {P} --playbooks {PB} --db {d}/a4.db", "--step"),
    ("agent run --hours 1 --step -5m --policies {P} --playbooks {PB} --db {d}/a5.db", "-5m"),
    ("agent run --hours 1 --step xyz --policies {P} --playbooks {PB} --db {d}/a6.db", "xyz"),
    ("agent run --hours 1 --step 99999999999d --policies {P} --playbooks {PB} --db {d}/a7.db", "99999999999d"),
    ("agent run --hours 1 --max-steps -1 --policies {P} --playbooks {PB} --db {d}/a8.db", "--max-steps"),
    (f"agent run --hours 1 --max-steps {BIG} --policies {{P}} --playbooks {{PB}} --db {{d}}/a9.db", "--max-steps"),
    ("agent run --hours 1 --planner magic --db {d}/a10.db", "--planner"),
    ("agent run --hours 1 --scenario {bin} --policies {P} --playbooks {PB} --db {d}/a11.db", "bin.yaml"),
    ("agent run --hours 1 --scenario {list} --policies {P} --playbooks {PB} --db {d}/a12.db", "list.yaml"),
    ("agent run --hours 1 --policies {pol} --playbooks {PB} --db {d}/a13.db", "pol"),
    # the daemon
    (f"daemon --once --interval {HUGE} --db {{d}}/d1.db", "--interval"),
    ("daemon --once --interval nan --db {d}/d2.db", "--interval"),
    ("daemon --once --interval 0 --db {d}/d3.db", "--interval"),
    (f"daemon --once --cycles {BIG} --db {{d}}/d4.db", "--cycles"),
    ("daemon --once --cycles 0 --db {d}/d5.db", "--cycles"),
    ("daemon --once --sim-speed nan --db {d}/d6.db", "--sim-speed"),
    ("daemon --once --sim-speed -1 --db {d}/d7.db", "--sim-speed"),
    ("daemon --once --listen 127.0.0.1:99999 --policies {P} --playbooks {PB} --db {d}/d8.db", "--listen"),
    ("daemon --once --listen nonsense --policies {P} --playbooks {PB} --db {d}/d9.db", "--listen"),
    ("daemon --once --log-level loud --policies {P} --playbooks {PB} --db {d}/d10.db", "--log-level"),
    ("daemon --once --cluster bogus --policies {P} --playbooks {PB} --db {d}/d11.db", "bogus"),
    ("daemon --once --cluster '' --policies {P} --playbooks {PB} --db {d}/d11b.db", "--cluster"),
    ("daemon --once --cluster sim:{bin} --policies {P} --playbooks {PB} --db {d}/d12.db", "bin.yaml"),
    ("daemon --once --cluster sim:{list} --policies {P} --playbooks {PB} --db {d}/d13.db", "list.yaml"),
    ("daemon --once --cluster sim:{json} --policies {P} --playbooks {PB} --db {d}/d14.db", "json.yaml"),
    ("daemon --once --cluster sim:nosuch --policies {P} --playbooks {PB} --db {d}/d15.db", "nosuch"),
    ("daemon --once --policies {pol} --playbooks {PB} --db {d}/d16.db", "pol"),
    ("daemon --once --policies {dir} --playbooks {PB} --db {d}/d17.db", "dir"),
    ("daemon --once --policies {missing} --playbooks {PB} --db {d}/d18.db", "missing.yaml"),
    ("daemon --once --policies {P} --playbooks {books} --db {d}/d19.db", "books"),
    ("daemon --once --policies {P} --playbooks {missing} --db {d}/d20.db", "missing.yaml"),
    ("daemon --once --context prod --cluster sim:demo --policies {P} --playbooks {PB} --db {d}/d21.db", "--context"),
    ("daemon --once --request-rate-query up --policies {P} --playbooks {PB} --db {d}/d22.db --cluster kube", "--prometheus"),
    # chat
    ("ask 'show gpus' --as daemon --policies {P} --playbooks {PB} --db {d}/c1.db", "--as"),
    ("ask 'show gpus' --as 'two words' --policies {P} --playbooks {PB} --db {d}/c2.db", "--as"),
    ("ask 'show gpus' --as alice --policies {pol} --playbooks {PB} --db {d}/c3.db", "pol"),
    ("ask 'show gpus' --as alice --policies {missing} --playbooks {PB} --db {d}/c4.db", "missing.yaml"),
    ("ask 'show gpus' --as alice --policies {P} --playbooks {books} --db {d}/c5.db", "books"),
    ("ask 'show gpus' --as alice --cluster bogus --policies {P} --playbooks {PB} --db {d}/c6.db", "bogus"),
    ("ask 'show gpus' --as alice --cluster sim:{bin} --policies {P} --playbooks {PB} --db {d}/c7.db", "bin.yaml"),
    ("ask '' --as alice --policies {P} --playbooks {PB} --db {d}/c8.db", "empty"),
    ("ask 'scale inference/llm to -1' --as alice --policies {P} --playbooks {PB} --db {d}/c9.db", "scale"),
    (f"ask 'scale inference/llm to {BIG}' --as alice --policies {{P}} --playbooks {{PB}} --db {{d}}/c10.db", "scale"),
    ("ask 'scale inference/ to 2' --as alice --policies {P} --playbooks {PB} --db {d}/c11.db", "scale"),
    ("ask 'scale ../../etc to 2' --as alice --policies {P} --playbooks {PB} --db {d}/c12.db", "scale"),
    (f"ask 'approve {BIG}' --as alice --policies {{P}} --playbooks {{PB}} --db {{d}}/c14.db", "approve"),
    ("ask 'approve -1' --as alice --policies {P} --playbooks {PB} --db {d}/c15.db", "approve"),
    ("chat --as daemon --policies {P} --playbooks {PB} --db {d}/c17.db", "--as"),
    ("chat --as alice --policies {P} --playbooks {PB} --db {text}", "text.db"),
    # policy and playbooks
    ("policy lint {bin}", "bin.yaml"),
    ("policy lint {list}", "list.yaml"),
    ("policy lint {scalar}", "scalar.yaml"),
    ("policy lint {json}", "json.yaml"),
    ("policy lint {missing}", "missing.yaml"),
    ("policy lint {pol}", "p.yaml"),
    ("policy show --policies {bin}", "bin.yaml"),
    ("policy show --policies {dir}", "dir"),
    ("policy explain --tool sleep_workload --actor alice --args '{{bad' --policies {P}", "--args"),
    ("policy explain --tool sleep_workload --actor alice --args '[1]' --policies {P}", "--args"),
    ("policy explain --tool sleep_workload --actor alice --args '' --policies {P}", "--args"),
    ("policy explain --tool sleep_workload --actor alice --args '{{\"namespace\":\"a\"}}' --target nonsense --policies {P}", "--target"),
    ("policy explain --tool sleep_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"b\"}}' --target x/y --policies {P}", "--target"),
    ("policy explain --tool sleep_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"b\"}}' --scenario demo --at 25:99 --policies {P}", "--at"),
    ("policy explain --tool sleep_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"b\"}}' --target-state '{{bad' --policies {P}", "--target-state"),
    ("policy explain --tool sleep_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"b\"}}' --channel carrier-pigeon --policies {P}", "--channel"),
    ("policy explain --tool nope --actor alice --policies {P}", "nope"),
    ("policy explain --tool sleep_workload --actor '' --args '{{\"namespace\":\"a\",\"name\":\"b\"}}' --policies {P}", "--actor"),
    ("policy explain --tool sleep_workload --actor alice --args '{{\"namespace\":\"a/b\",\"name\":\"c\"}}' --policies {P}", "namespace"),
    ("policy explain --tool scale_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"c\",\"replicas\":1e400}}' --policies {P}", "replicas"),
    ("policy explain --tool scale_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"c\",\"replicas\":NaN}}' --policies {P}", "replicas"),
    ("policy explain --tool scale_workload --actor alice --args '{{\"namespace\":\"a\",\"name\":\"c\",\"replicas\":-5}}' --policies {P}", "replicas"),
    ("playbook lint {bin}", "bin.yaml"),
    ("playbook lint {missing}", "missing.yaml"),
    ("playbook lint {books}", "b.yaml"),
    ("playbook show nope --playbooks {PB}", "nope"),
    ("playbook show idle_gpu --playbooks {dir}", "dir"),
    ("playbook show '' --playbooks {PB}", "kind"),
    # evals
    ("eval nosuch", "nosuch"),
    ("eval {bin}", "bin.yaml"),
    ("eval {list}", "list.yaml"),
    ("eval {json}", "json.yaml"),
    ("eval -k 0", "--repeats"),
    (f"eval -k {BIG}", "--repeats"),
    ("eval --planner magic", "--planner"),
    # the wake proxy, Slack, doctor
    ("wake-proxy --routes {bin} --cluster sim:demo --policies {P} --db {d}/w1.db", "bin.yaml"),
    ("wake-proxy --routes {list} --cluster sim:demo --policies {P} --db {d}/w2.db", "list.yaml"),
    ("wake-proxy --routes {missing} --cluster sim:demo --policies {P} --db {d}/w3.db", "missing.yaml"),
    ("wake-proxy --routes {dir} --cluster sim:demo --policies {P} --db {d}/w4.db", "dir"),
    ("wake-proxy --routes {json} --cluster sim:demo --policies {P} --db {d}/w5.db", "json.yaml"),
    ("wake-proxy --routes {list} --timeout nan --cluster sim:demo --db {d}/w6.db", "--timeout"),
    ("wake-proxy --routes {list} --timeout -1 --cluster sim:demo --db {d}/w7.db", "--timeout"),
    ("wake-proxy --routes {list} --timeout inf --cluster sim:demo --db {d}/w8.db", "--timeout"),
    ("slack --port 99999999 --db {d}/s1.db", "--port"),
    ("slack --port -1 --db {d}/s2.db", "--port"),
    ("slack --poll-seconds inf --db {d}/s3.db", "--poll-seconds"),
    ("slack --poll-seconds nan --db {d}/s4.db", "--poll-seconds"),
    ("slack --users {bin} --db {d}/s5.db", "bin.yaml"),
    ("slack --users {list} --db {d}/s6.db", "list.yaml"),
    ("slack --users {missing} --db {d}/s7.db", "missing.yaml"),
    ("slack --token-file {bin} --db {d}/s8.db", "bin.yaml"),
    ("slack --token-file {missing} --db {d}/s9.db", "missing.yaml"),
    ("slack --mode carrier-pigeon --db {d}/s10.db", "--mode"),
    ("doctor --timeout nan --skip-cluster", "--timeout"),
    ("doctor --timeout inf --skip-cluster", "--timeout"),
    ("doctor --timeout 0 --skip-cluster", "--timeout"),
    ("doctor --slack-token-file {bin} --skip-cluster", "bin.yaml"),
    ("doctor --slack-token-file {dir} --skip-cluster", "dir"),
    ("doctor --kubeconfig {bin} --skip-slack", "bin.yaml"),
    ("doctor --kubeconfig {list} --skip-slack", "list.yaml"),
    ("doctor --kubeconfig {missing} --skip-slack", "missing.yaml"),
]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPSAGENT_DB", "OPSAGENT_OUTPUT", "OPSAGENT_CLUSTER", "OPSAGENT_MODEL", "OPSAGENT_POLICIES",
                 "OPSAGENT_PLAYBOOKS", "OPSAGENT_ACTOR", "KUBECONFIG", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                 "SLACK_SIGNING_SECRET", "OPSAGENT_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSAGENT_CLUSTER", "sim:demo")   # these try bad input, not the choice of cluster
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)   # relative defaults (policies/, playbooks/) find nothing here


@pytest.mark.parametrize("line,names", CASES, ids=[c[0][:70] for c in CASES])
def test_bad_input_ends_in_one_clear_error(files: dict[str, str], line: str, names: str) -> None:
    import shlex

    args = shlex.split(line.format(**files))
    result = CliRunner().invoke(app, args)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert result.exit_code != 0, output
    assert "internal error" not in output, output
    assert names in output, output
