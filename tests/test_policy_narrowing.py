"""Text read from the cluster may narrow what the policy permits, never widen it.

Spec; each test names the promise it tries to break:
- replica bounds in the annotations of a workload that no policy intent covers,
  in a namespace no policy file opts in, are reported and not obeyed: the
  daemon's scale to 900 goes to a person, and `policy explain` says so and why;
- waiting requests come from the wake proxy and metrics only: a planted
  `opsagent.dev/pending-requests` never wakes a workload;
- a replica bound with no max has the built-in ceiling, the replicas the
  workload runs now: the daemon's rule, the drift detector and an opted-in
  annotation intent all stop there, and more needs a person;
- in a namespace a policy file opts in (`annotation_intents`) annotation intents
  are obeyed inside its ceilings; above them they are clamped and reported;
- look-alike keys (case, other scripts, full-width, invisible characters) are
  never intents, even where annotations are obeyed;
- annotations may narrow a matching policy intent, never widen it;
- a bad `annotation_intents` entry is a load error naming file:line and field;
  lint warns about one that opts in every namespace or lies outside the scope;
- `policy explain` names where each bound came from.
"""

from __future__ import annotations

# Above the ceiling a person decides: an approval request, or a deny naming the intent whose bounds it breaks
# (its bounds are changed through set_replica_bounds, which a person approves). Never an automatic allow.
NEEDS_A_PERSON = ("require_approval", "deny")

import json
import shutil
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.cli import app
from opsagent.detect import detect
from opsagent.evals import DEFAULT_DIR, load_eval_scenario, run_scenario, score
from opsagent.model import Snapshot, ToolCall, Workload, WorkloadRef
from opsagent.policy import NO_COUNTS, PolicyError, decide, load_policy
from opsagent.policy.explain import explain
from opsagent.policy.lint import lint
from opsagent.policy.resolve import BUILTIN_CEILING
from tools import REGISTRY

POLICIES = Path(__file__).resolve().parent.parent / "policies"
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
RISKS = {n: t.risk for n, t in REGISTRY.items()}


def wl(ref: str, *, replicas: int = 1, gpus: int = 1, **annotations: str) -> Workload:
    ns, name = ref.split("/")
    return Workload(ref=WorkloadRef(namespace=ns, name=name), replicas=replicas, gpus_per_replica=gpus,
                    annotations={f"opsagent.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
                    request_rate=1.0, last_request_at=NOW)


def raw(ref: str, annotations: dict[str, str], *, replicas: int = 1, gpus: int = 1) -> Workload:
    ns, name = ref.split("/")
    return Workload(ref=WorkloadRef(namespace=ns, name=name), replicas=replicas, gpus_per_replica=gpus,
                    annotations=annotations, request_rate=1.0, last_request_at=NOW)


def call(policy, workload: Workload, tool: str = "scale_workload", actor: str = "daemon", **args):
    args = {"namespace": workload.ref.namespace, "name": workload.ref.name, **args}
    target = REGISTRY[tool].input_model.model_validate(args).target()
    snapshot = Snapshot(time=NOW, workloads=(workload,))
    return decide(policy, call=ToolCall(tool=tool, args=args, actor=actor, channel="daemon" if actor == "daemon" else "cli"),
                  risk=REGISTRY[tool].risk, target=target, snapshot=snapshot, now=NOW, counts=NO_COUNTS)


@pytest.fixture(scope="module")
def shipped():
    return load_policy(POLICIES, tool_risks=RISKS)


@pytest.fixture()
def with_file(tmp_path):
    """The shipped policies plus one more file."""
    def make(text: str, name: str = "extra.yaml") -> Path:
        directory = tmp_path / "policies"
        if not directory.exists():
            shutil.copytree(POLICIES, directory)
        (directory / name).write_text(textwrap.dedent(text))
        return directory
    return make


# --- 1. the 1000-replica annotation -------------------------------------------------------------

def test_a_1000_replica_annotation_outside_any_opt_in_does_not_let_the_daemon_scale_to_900(shipped):
    batchui = wl("batch/batchui", min_replicas="1", max_replicas="1000")
    decision = call(shipped, batchui, replicas=900)
    assert decision.effect in NEEDS_A_PERSON and decision.rule.name == "other-writes-need-oncall", decision.reason
    assert shipped.intent_for(batchui) is None
    ignored = shipped.resolve(batchui).ignored
    assert any("max-replicas='1000'" in line and "annotation_intents" in line for line in ignored), ignored


BATCHUI_SCENARIO = """
        start: '2026-01-05T09:00:00Z'
        nodes: [{name: gpu-a, gpus: [{model: NVIDIA-A100-SXM4-80GB, count: 2}]}]
        workloads:
          - namespace: batch
            name: batchui
            gpus: 0
            replicas: 1
            traffic: {points: {'00:00': 3}}
            annotations: {opsagent.dev/max-replicas: "1000"}
            image: registry.internal/batch/batchui:2.0.1
        """


def test_the_runtimes_snapshot_notes_report_what_was_not_obeyed(tmp_path):
    from opsagent.runtime import open_runtime

    scenario = tmp_path / "batchui.yaml"
    scenario.write_text(textwrap.dedent(BATCHUI_SCENARIO))
    runtime = open_runtime(cluster=f"sim:{scenario}", policies=POLICIES, db=tmp_path / "audit.db")
    notes = runtime.observe().notes
    assert [n for n in notes if n.startswith("batch/batchui: annotation opsagent.dev/max-replicas='1000'")], notes
    assert runtime.policy.intent_for(runtime.observe().workload("batch/batchui")) is None


def test_policy_explain_says_the_900_replica_scale_needs_a_person_and_why(tmp_path):
    scenario = tmp_path / "batchui.yaml"
    scenario.write_text(textwrap.dedent("""
        start: '2026-01-05T09:00:00Z'
        nodes: [{name: gpu-a, gpus: [{model: NVIDIA-A100-SXM4-80GB, count: 2}]}]
        workloads:
          - namespace: batch
            name: batchui
            gpus: 0
            replicas: 1
            traffic: {points: {'00:00': 3}}
            annotations: {opsagent.dev/max-replicas: "1000"}
            image: registry.internal/batch/batchui:2.0.1
        """))
    args = ["policy", "explain", "--tool", "scale_workload", "--args", '{"namespace":"batch","name":"batchui","replicas":900}',
            "--actor", "daemon", "--channel", "daemon", "--scenario", str(scenario), "--at", "09:30", "--policies", str(POLICIES)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "decision: require_approval" in result.output
    assert "not obeyed" in result.output and "opsagent.dev/max-replicas='1000'" in result.output
    data = json.loads(CliRunner().invoke(app, [*args, "-o", "json"]).output)
    assert data["decision"]["effect"] == "require_approval" and data["intent"] == {}
    assert any("annotation_intents" in line for line in data["not_obeyed"])


# --- 2. pending requests only from the wake proxy and metrics ----------------------------------

def test_a_planted_pending_requests_annotation_wakes_nothing(shipped):
    notebook = Workload(ref=WorkloadRef(namespace="team-lab", name="notebook"), replicas=0, gpus_per_replica=1, request_rate=0.0,
                        annotations={"opsagent.dev/pending-requests": "500", "opsagent.dev/warm-replicas": "2",
                                     "opsagent.dev/idle-after": "30m"})
    snap = Snapshot(time=NOW, workloads=(notebook,))
    assert shipped.intent_for(notebook).wake.warm_replicas == 2  # team-* is opted in: the intent itself is obeyed
    assert [f.id for f in detect(snap, intents=shipped.intent_book, now=NOW)] == []
    counted = snap.model_copy(update={"workloads": (notebook.model_copy(update={"pending_requests": 3}),)})
    woken = [f for f in detect(counted, intents=shipped.intent_book, now=NOW) if f.kind == "wake_requested"]
    assert woken and woken[0].details["pending_requests"] == 3  # the wake proxy's count still wakes it


# --- 3. no max declared: the ceiling is what runs now ----------------------------------------

def test_a_policy_intent_with_only_a_min_never_lets_the_daemon_scale_above_what_runs(with_file):
    policy = load_policy(with_file("""
        intents:
          - name: api-floor
            selector: {namespace: web, names: [api]}
            replicas: {min: 1}
        """), tool_risks=RISKS)
    api = wl("web/api", replicas=2)
    assert call(policy, api, replicas=50).effect in NEEDS_A_PERSON
    assert call(policy, api, replicas=3).effect in NEEDS_A_PERSON
    assert call(policy, api, replicas=2).effect == "allow"
    assert call(policy, api, replicas=1).effect == "allow"
    assert call(policy, api, replicas=0).effect in NEEDS_A_PERSON  # below the min
    resolved = policy.resolve(api)
    assert resolved.replica_max == 2 and ("replicas.max = 2", BUILTIN_CEILING) in resolved.sources
    # the drift detector never asks for more than runs now, except up to the min, which a person approves
    low = wl("web/api", replicas=0)
    snap = Snapshot(time=NOW, workloads=(low,))
    drift = [f for f in detect(snap, intents=policy.intent_book, now=NOW) if f.kind == "drift"]
    assert drift and drift[0].details["desired_replicas"] == 1 and drift[0].details["max"] is None
    assert call(policy, low, replicas=1).effect in NEEDS_A_PERSON


def test_an_opted_in_annotation_with_only_a_min_is_capped_at_what_runs(shipped):
    ranker = wl("team-search/ranker", replicas=1, min_replicas="1", protected="true")
    assert call(shipped, ranker, replicas=50).effect in NEEDS_A_PERSON
    assert call(shipped, ranker, replicas=2).effect in NEEDS_A_PERSON  # under the opt-in ceiling, still above what runs
    assert call(shipped, ranker, replicas=1).effect == "allow"
    assert shipped.resolve(ranker).replica_max == 1


def test_a_model_planner_cannot_scale_past_the_builtin_ceiling(tmp_path):
    # the planted scale may be refused before the gate (outside the finding's subject) or at it; never run
    record = run_scenario(load_eval_scenario(DEFAULT_DIR / "ranker-declares-only-a-floor.yaml"), planner="hostile",
                          workdir=tmp_path, baseline=False)
    tried = [(g.call.tool, g.call.args.get("name"), g.call.args.get("replicas"), g.result.status) for g in record.gate_calls]
    assert not [t for t in tried if t[0] == "scale_workload" and t[1] == "ranker" and t[3] == "ok"]
    result = score(record)
    assert result.outcome == "pass" and result.violations == [] and result.forbidden == []


def test_a_wake_asking_for_more_than_the_warm_replicas_needs_a_person(shipped):
    chat = wl("chat/chat-ui", replicas=0)
    assert call(shipped, chat, tool="wake_workload").effect == "allow"
    assert call(shipped, chat, tool="wake_workload", replicas=1).effect == "allow"
    assert call(shipped, chat, tool="wake_workload", replicas=50).effect in NEEDS_A_PERSON
    planted = wl("chat/chat-ui", replicas=0, warm_replicas="50")  # an annotation cannot raise the policy's warm_replicas
    assert call(shipped, planted, tool="wake_workload", replicas=50).effect in NEEDS_A_PERSON


# --- 4. opted-in namespaces: obeyed inside the ceilings, clamped and reported above ------------

OPT_IN_ROWS = [
    # annotations, gpus per replica, expected replica_max, expected min, a word of the clamp report (or None)
    ({"min_replicas": "0", "max_replicas": "2"}, 1, 2, 0, None),
    ({"min_replicas": "0", "max_replicas": "8"}, 1, 2, 0, "max_replicas 2"),
    ({"min_replicas": "5", "max_replicas": "8"}, 1, 2, 2, "clamped to 2"),
    ({"max_replicas": "2"}, 2, 1, 0, "max_gpus 2 at 2 GPU(s) per replica"),
    ({"max_replicas": "1"}, 1, 1, 0, None),
]


@pytest.mark.parametrize("annotations,gpus,replica_max,minimum,clamp", OPT_IN_ROWS)
def test_opted_in_annotations_stay_inside_the_files_ceilings(shipped, annotations, gpus, replica_max, minimum, clamp):
    team = wl("team-x/batchui", replicas=1, gpus=gpus, **annotations)
    resolved = shipped.resolve(team)
    assert resolved.intent is not None and resolved.intent.name == "annotations:team-x/batchui"
    assert (resolved.replica_max, resolved.intent.replicas.min) == (replica_max, minimum)
    if clamp is None:
        assert resolved.ignored == ()
    else:
        assert any(clamp in line and "gpu-fleet.yaml:" in line for line in resolved.ignored), resolved.ignored
    assert call(shipped, team, replicas=replica_max).effect == "allow" or replica_max < minimum
    assert call(shipped, team, replicas=replica_max + 1).effect in NEEDS_A_PERSON


def test_opted_in_idle_window_and_warm_replicas_are_held_to_the_floor_and_ceiling(shipped):
    team = wl("team-x/viewer", replicas=1, idle_after="1m", warm_replicas="9", max_replicas="2")
    resolved = shipped.resolve(team)
    assert resolved.intent.idle.after == timedelta(minutes=15)
    assert resolved.intent.wake.warm_replicas == 2
    assert any("raised to 15m" in line for line in resolved.ignored)
    assert any("warm-replicas='9'" in line and "clamped to 2" in line for line in resolved.ignored)


def test_the_1000_replica_annotation_in_an_opted_in_namespace_is_clamped_and_reported(shipped):
    team = wl("team-x/batchui", min_replicas="1", max_replicas="1000")
    assert call(shipped, team, replicas=900).effect in NEEDS_A_PERSON
    assert call(shipped, team, replicas=2).effect == "allow"
    assert any("max-replicas='1000'" in line and "clamped to 2" in line for line in shipped.resolve(team).ignored)
    notes = shipped.annotation_notes(Snapshot(time=NOW, workloads=(team,)))
    assert len(notes) == 1 and notes[0].startswith("team-x/batchui: annotation opsagent.dev/max-replicas='1000'")


# --- 5. look-alike keys ----------------------------------------------------------------------

LOOKALIKES = [
    "opsagent.dev/Max-Replicas",
    "OPSAGENT.DEV/max-replicas",
    "opsagent.dev/m\u0430x-replicas",      # Cyrillic a
    "\u043epsagent.dev/max-replicas",      # Cyrillic o
    "opsagent.dev/max\u2010replicas",      # Unicode hyphen
    "opsagent.dev/\uff4dax-replicas",      # full-width m
    "opsagent.dev/max-replicas\u200b",     # zero-width space
    "opsagent.dev\uff0fmax-replicas",      # full-width slash
    " opsagent.dev/max-replicas",
]


@pytest.mark.parametrize("key", LOOKALIKES, ids=[k.encode("unicode_escape").decode() for k in LOOKALIKES])
def test_look_alike_keys_are_never_intents_even_where_annotations_are_obeyed(shipped, key):
    for ref in ("team-x/batchui", "batch/batchui"):
        workload = raw(ref, {key: "1000", "opsagent.dev/min-replicas": "1"}, replicas=1)
        resolved = shipped.resolve(workload)
        assert resolved.replica_max in (None, 1), (ref, resolved)
        assert call(shipped, workload, replicas=900).effect in NEEDS_A_PERSON
        assert any("only looks like" in line for line in resolved.ignored), resolved.ignored


def test_reports_cut_long_cluster_text_short(shipped):
    flood = wl("batch/batchui", max_replicas="9" * 5000, idle_after="x" * 5000)
    lines = shipped.resolve(flood).ignored
    assert lines and max(len(line) for line in lines) < 400


# --- 6. annotations narrow a policy intent, never widen it -------------------------------------

NARROW_ROWS = [
    # annotations on chat/chat-ui (policy: replicas 0..3, idle 20m, warm 1), field, expected, obeyed?
    ({"max_replicas": "1"}, lambda r: r.replica_max, 1, True),
    ({"max_replicas": "30"}, lambda r: r.replica_max, 3, False),
    ({"min_replicas": "2"}, lambda r: r.intent.replicas.min, 2, True),
    ({"min_replicas": "9"}, lambda r: r.intent.replicas.min, 0, False),
    ({"idle_after": "2h"}, lambda r: r.intent.idle.after, timedelta(hours=2), True),
    ({"idle_after": "1m"}, lambda r: r.intent.idle.after, timedelta(minutes=20), False),
    ({"warm_replicas": "3"}, lambda r: r.intent.wake.warm_replicas, 1, False),
    ({"protected": "true"}, lambda r: r.intent.protected, True, True),
    ({"protected": "false"}, lambda r: r.intent.protected, False, True),
]


@pytest.mark.parametrize("annotations,read,expected,obeyed", NARROW_ROWS, ids=[str(r[0]) for r in NARROW_ROWS])
def test_annotations_narrow_a_matching_policy_intent_and_never_widen_it(shipped, annotations, read, expected, obeyed):
    chat = wl("chat/chat-ui", replicas=1, **annotations)
    resolved = shipped.resolve(chat)
    assert resolved.intent.name == "chat-ui-wakes-on-request"
    assert read(resolved) == expected
    assert (resolved.ignored == ()) is obeyed, resolved.ignored


def test_a_training_workload_cannot_annotate_its_way_out_of_protection(shipped):
    finetune = wl("training/finetune", protected="false", idle_after="1m", min_replicas="0", max_replicas="50")
    resolved = shipped.resolve(finetune)
    assert resolved.intent.protected and resolved.intent.idle is None and resolved.intent.replicas is None
    assert call(shipped, finetune, replicas=50).effect == "deny"


def test_protected_narrows_even_where_nothing_else_is_obeyed(shipped):
    batch = wl("batch/worker", protected="true", max_replicas="40")
    resolved = shipped.resolve(batch)
    assert resolved.intent is not None and resolved.intent.protected and resolved.intent.replicas is None
    assert call(shipped, batch, replicas=40).effect in NEEDS_A_PERSON


def test_a_typo_in_another_annotation_does_not_lift_protection(shipped):
    for ref in ("batch/worker", "team-x/worker", "chat/chat-ui"):
        typo = wl(ref, protected="true", min_replicas="two", idle_after="1m")
        resolved = shipped.resolve(typo)
        assert resolved.intent is not None and resolved.intent.protected, ref
        assert resolved.intent.idle is None or resolved.intent.idle.after >= timedelta(minutes=20), ref
        assert any("is not a whole number" in line for line in resolved.ignored), ref
        assert call(shipped, typo, tool="sleep_workload").effect != "allow", ref


# --- 7. the schema: load errors and lint --------------------------------------------------------

def test_a_bad_annotation_intents_entry_is_a_load_error_at_its_line(with_file):
    directory = with_file("""
        annotation_intents:
          - namespaces: [team-a]
            max_replicas: 3
            min_idle_after: 15m
          - namespaces: [Team_B]
            max_replicas: lots
            min_idle_after: 0s
        """, name="teams.yaml")
    with pytest.raises(PolicyError) as caught:
        load_policy(directory, tool_risks=RISKS)
    text = str(caught.value)
    teams = directory / "teams.yaml"
    assert f"{teams}:6:" in text and "annotation_intents[1].namespaces" in text and "'Team_B'" in text
    assert f"{teams}:7:" in text and "annotation_intents[1].max_replicas" in text
    assert f"{teams}:8:" in text and "min_idle_after must be a positive duration" in text
    missing = with_file("annotation_intents:\n  - namespaces: [team-a]\n", name="teams.yaml")
    with pytest.raises(PolicyError, match=r"annotation_intents\[0\]\.max_replicas: Field required"):
        load_policy(missing, tool_risks=RISKS)


def test_lint_warns_about_an_opt_in_for_every_namespace_or_one_outside_the_scope(with_file):
    directory = with_file("""
        annotation_intents:
          - namespaces: ["*"]
            max_replicas: 2
            min_idle_after: 15m
          - namespaces: [kube-system]
            max_replicas: 2
            min_idle_after: 15m
        """, name="teams.yaml")
    report = lint(directory, tool_risks=RISKS)
    assert report.ok
    messages = [(p.line, p.message) for p in report.warnings if p.file.endswith("teams.yaml")]
    assert any(line == 3 and "every namespace" in m for line, m in messages), messages
    assert any(line == 6 and "'kube-system' is outside the scope" in m for line, m in messages), messages


def test_lint_warns_about_an_intent_that_labels_alone_select(with_file):
    directory = with_file("""
        intents:
          - name: scratch-sleeps
            selector: {labels: {tier: scratch}}
            idle: {after: 5m}
          - name: scoped-scratch
            selector: {namespace: lab, labels: {tier: scratch}}
            idle: {after: 5m}
        """, name="scratch.yaml")
    warnings = [(p.line, p.message) for p in lint(directory, tool_risks=RISKS).warnings if p.file.endswith("scratch.yaml")]
    assert len(warnings) == 1 and warnings[0][0] == 3 and "'scratch-sleeps' selects by labels alone" in warnings[0][1], warnings


def test_policy_show_lists_the_opt_ins_with_their_place():
    data = json.loads(CliRunner().invoke(app, ["policy", "show", "--policies", str(POLICIES), "-o", "json"]).output)
    [entry] = data["annotation_intents"]
    assert entry["namespaces"] == ["team-*"] and entry["max_replicas"] == 2 and entry["file"].endswith("gpu-fleet.yaml")
    assert isinstance(entry["line"], int)
    assert "annotation intents are obeyed only in: team-*" in data["summary"]


# --- 8. explain names the source of every bound ---------------------------------------------------

def test_explain_names_the_policy_line_the_opt_in_and_the_builtin_ceiling(shipped):
    def sources(workload: Workload) -> dict[str, str]:
        args = {"namespace": workload.ref.namespace, "name": workload.ref.name, "replicas": 1}
        result = explain(shipped, call=ToolCall(tool="scale_workload", args=args, actor="daemon", channel="daemon"),
                         risk="write", target=REGISTRY["scale_workload"].input_model.model_validate(args).target(),
                         snapshot=Snapshot(time=NOW, workloads=(workload,)), now=NOW)
        assert any(line.startswith("intent:") for line in result.lines())
        return {b.bound: b.source for b in result.bounds}

    policy_line = sources(wl("chat/chat-ui"))
    assert policy_line["replicas.max = 3"].startswith(f"{POLICIES / 'gpu-fleet.yaml'}:")
    assert "(intent chat-ui-wakes-on-request)" in policy_line["replicas.max = 3"]
    opted = sources(wl("team-x/batchui", max_replicas="2"))
    assert "annotation opsagent.dev/max-replicas='2' under annotation_intents at" in opted["replicas.max = 2"]
    assert "ceiling max_replicas 2" in opted["replicas.max = 2"]
    assert sources(wl("team-x/batchui", min_replicas="1"))["replicas.max = 1"] == BUILTIN_CEILING
