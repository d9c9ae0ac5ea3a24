"""Loading policy directories: merging files, and errors that point at file:line:column
with the field and a hint, all of them reported in one go."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opsagent.policy import PolicyError, load_policy
from opsagent.policy.lint import lint
from tools import risk_table


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(directory, tool_risks=risk_table())
    return [str(p) for p in info.value.problems]


def test_bad_yaml_names_file_and_line(tmp_path):
    write(tmp_path, "a.yaml", """
        rules:
          - name: x
            effect: allow
           tools: [get_workload]
        """)
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"{tmp_path / 'a.yaml'}:4:")
    assert "bad YAML" in problem


def test_unknown_field_points_at_the_key(tmp_path):
    write(tmp_path, "a.yaml", """
        scope: {namespaces: [apps]}
        rules:
          - name: read
            risk: read
            effect: allow
          - name: typo
            tool: [scale_workload]
            effect: deny
        """)
    (problem,) = problems_of(tmp_path)
    assert f"{tmp_path / 'a.yaml'}:7:5" in problem
    assert "rules[1].tool" in problem and "unknown field 'tool'" in problem and "hint" in problem


def test_bad_value_and_missing_field_are_all_reported(tmp_path):
    write(tmp_path, "a.yaml", """
        rules:
          - name: one
            effect: permit
          - effect: allow
            risk: read
        limits:
          - {name: l, max: 3, per: soon}
        """)
    problems = problems_of(tmp_path)
    text = "\n".join(problems)
    assert len(problems) == 3, text
    assert ":3:13: error: rules[0].effect" in text
    assert "rules[1].name" in text and "Field required" in text
    assert "limits[0].per" in text and "bad duration" in text


def test_bad_cel_points_into_the_condition(tmp_path):
    write(tmp_path, "a.yaml", """
        rules:
          - name: bad
            tools: [scale_workload]
            when: args.replicas <=
            effect: deny
          - name: unknown-variable
            tools: [scale_workload]
            when: arg.replicas > 2
            effect: deny
        """)
    problems = problems_of(tmp_path)
    assert len(problems) == 2
    assert "rules[0].when" in problems[0] and ":4:" in problems[0] and "condition does not compile" in problems[0]
    assert ":8:11:" in problems[1] and "unknown variable(s) arg" in problems[1]


def test_cel_error_in_a_block_condition_counts_lines_inside_it(tmp_path):
    write(tmp_path, "a.yaml", """
        rules:
          - name: multi
            tools: [scale_workload]
            when: |
              args.replicas > 1 &&
              target.replicas > > 1
            effect: deny
        """)
    (problem,) = problems_of(tmp_path)
    assert ":6:" in problem, problem


@pytest.mark.parametrize("rule", [
    "{name: auto-arch, risk: architectural, effect: allow}",
    "{name: auto-place, tools: [set_gpu_placement], effect: allow}",
    "{name: everything, tools: ['*'], effect: allow}",
    "{name: set-star, tools: ['set_*'], effect: allow}",
])
def test_an_allow_on_an_architectural_tool_is_an_error(tmp_path, rule):
    write(tmp_path, "a.yaml", f"rules:\n  - {rule}\n")
    (problem,) = problems_of(tmp_path)
    assert ":2:" in problem and "architectural changes always need a person" in problem


def test_allow_on_writes_only_is_fine_and_require_approval_on_architectural_is_fine(tmp_path):
    write(tmp_path, "a.yaml", """
        groups: {leads: [alice]}
        rules:
          - {name: writes, tools: ['*'], risk: [read, write], effect: allow}
          - {name: arch, risk: architectural, effect: require_approval, approvers: [group:leads]}
        """)
    policy = load_policy(tmp_path, tool_risks=risk_table())
    assert [r.rule.name for r in policy.rules] == ["writes", "arch"]


def test_unknown_group_and_missing_approvers(tmp_path):
    write(tmp_path, "a.yaml", """
        rules:
          - {name: a, actors: [group:nobody], risk: read, effect: allow}
          - {name: b, risk: write, effect: require_approval}
        """)
    problems = problems_of(tmp_path)
    assert any("unknown group 'nobody'" in p and "rules[0].actors[0]" in p for p in problems)
    assert any("names no approvers" in p for p in problems)


def test_duplicate_key_is_an_error(tmp_path):
    write(tmp_path, "a.yaml", """
        mode: enforce
        mode: dry-run
        """)
    (problem,) = problems_of(tmp_path)
    assert ":2:1:" in problem and "duplicate key 'mode'" in problem


def test_files_merge_in_priority_then_name_order(tmp_path):
    write(tmp_path, "a-base.yaml", """
        priority: 900
        scope: {exclude_namespaces: [kube-system]}
        groups: {leads: [alice]}
        rules: [{name: base-rule, risk: read, effect: allow}]
        intents: [{name: base-intent, selector: {namespace: apps}}]
        """)
    write(tmp_path, "b-team.yaml", """
        scope: {namespaces: [apps]}
        groups: {leads: [alice], team: [erin]}
        rules: [{name: team-rule, actors: [group:team], risk: write, effect: allow}]
        intents: [{name: team-intent, selector: {namespace: apps, names: [web]}}]
        """)
    write(tmp_path, "notes.txt", "not a policy")
    policy = load_policy(tmp_path, tool_risks=risk_table())
    assert [r.rule.name for r in policy.rules] == ["team-rule", "base-rule"]
    assert [i.name for i in policy.intents] == ["team-intent", "base-intent"]
    assert policy.groups == {"leads": ("alice",), "team": ("erin",)}
    assert policy.in_scope("apps") and policy.in_scope("other") and not policy.in_scope("kube-system")


def test_conflicting_groups_are_an_error(tmp_path):
    write(tmp_path, "a.yaml", "groups: {leads: [alice]}\n")
    write(tmp_path, "b.yaml", "groups: {leads: [bob]}\n")
    (problem,) = problems_of(tmp_path)
    assert "b.yaml:1:" in problem and "already defined differently" in problem


def test_dry_run_wins_and_lint_warns(tmp_path):
    write(tmp_path, "a.yaml", "mode: enforce\nscope: {namespaces: [apps]}\n")
    write(tmp_path, "b.yaml", "mode: dry-run\napproval_ttl: 30m\n")
    write(tmp_path, "c.yaml", "approval_ttl: 2h\n")
    policy = load_policy(tmp_path, tool_risks=risk_table())
    assert policy.mode == "dry-run" and policy.approval_ttl_seconds == 1800
    report = lint(tmp_path, tool_risks=risk_table())
    assert report.ok
    assert any("disagree on mode" in str(w) for w in report.warnings)


def test_missing_directory_and_empty_directory(tmp_path):
    assert "no such policy directory" in problems_of(tmp_path / "nope")[0]
    assert "no *.yaml policy files" in problems_of(tmp_path)[0]


def test_lint_warns_about_rules_that_never_match(tmp_path):
    write(tmp_path, "a.yaml", """
        scope: {namespaces: [apps, web]}
        rules:
          - {name: reads, risk: read, effect: allow}
          - {name: reads-in-apps, risk: read, namespaces: [apps], effect: deny}
          - {name: typo-tool, tools: [scale_workloads], effect: deny}
          - {name: elsewhere, tools: [scale_workload], namespaces: [batch], effect: deny}
          - {name: conditional, tools: [scale_workload], when: 'args.replicas > 3', effect: deny}
          - {name: after-conditional, tools: [scale_workload], effect: deny}
        """)
    report = lint(tmp_path, tool_risks=risk_table())
    assert report.ok
    text = "\n".join(str(w) for w in report.warnings)
    assert "rule 'reads-in-apps' can never match: earlier rule 'reads'" in text
    assert "unknown tool 'scale_workloads'" in text
    assert "namespace 'batch' is outside the scope" in text
    assert "after-conditional" not in text  # an earlier rule with a condition shadows nothing
    assert all(":" in str(w).split(" ")[0] for w in report.warnings)


@pytest.mark.parametrize(("cron", "column", "message"), [
    ("0 8 * * 1-9", 19, "day-of-week: '1-9' is not valid"),
    ("0 25 * * 1-5", 19, "hour: '25' is not valid"),
    ("0 8 * *", 19, "must have 5 fields"),
    ("*/0 8 * * *", 19, "minute: '*/0' is not valid"),
])
def test_a_prewarm_cron_that_never_opens_is_an_error_at_its_place(tmp_path, cron, column, message):
    write(tmp_path, "a.yaml", f"""
        intents:
          - name: ui
            selector: {{namespace: render}}
            wake:
              prewarm:
                - {{cron: "{cron}", duration: 10h}}
        """)
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"{tmp_path / 'a.yaml'}:6:{column}: error: intents[0].wake.prewarm[0].cron:")
    assert message in problem
    report = lint(tmp_path, tool_risks=risk_table())
    assert not report.ok and message in str(report.errors[0])


def test_a_prewarm_time_zone_must_be_a_known_iana_name(tmp_path):
    write(tmp_path, "a.yaml", """
        intents:
          - name: ui
            selector: {namespace: render}
            wake:
              prewarm:
                - {cron: "0 8 * * mon-fri", duration: 10h, time_zone: Europe/Berlim}
        """)
    (problem,) = problems_of(tmp_path)
    assert "intents[0].wake.prewarm[0].time_zone" in problem and "Europe/Berlim" in problem
    assert problem.startswith(f"{tmp_path / 'a.yaml'}:6:")


def test_a_valid_prewarm_cron_loads_and_the_detectors_read_the_same_parser(tmp_path):
    from opsagent.detect.cron import parse_cron as detect_parse
    from opsagent.policy.cron import parse_cron

    write(tmp_path, "a.yaml", """
        intents:
          - name: ui
            selector: {namespace: render}
            wake: {prewarm: [{cron: "0 8 * * 1-5", duration: 10h}]}
        """)
    policy = load_policy(tmp_path, tool_risks=risk_table())
    assert policy.intents[0].wake.prewarm[0].cron == "0 8 * * 1-5"
    assert detect_parse is parse_cron


def test_confirm_on_a_deny_rule_and_a_bad_confirmation_ttl_point_at_their_lines(tmp_path):
    write(tmp_path, "a.yaml", """
        confirmation_ttl: 0s
        rules:
          - name: reads
            risk: read
            effect: allow
          - name: no-render
            namespaces: [render]
            effect: deny
            confirm: true
        """)
    found = problems_of(tmp_path)
    assert any(p.startswith(f"{tmp_path / 'a.yaml'}:1:") and "confirmation_ttl must be a positive duration" in p for p in found), found
    assert any(p.startswith(f"{tmp_path / 'a.yaml'}:6:") and "confirm: true only makes sense with effect: allow" in p
               for p in found), found


def test_confirmation_ttl_defaults_to_15_minutes_and_the_shortest_file_wins(tmp_path):
    write(tmp_path, "a.yaml", "rules: [{name: r, risk: read, effect: allow}]\n")
    assert load_policy(tmp_path, tool_risks=risk_table()).confirmation_ttl_seconds == 900
    write(tmp_path, "b.yaml", "confirmation_ttl: 5m\n")
    write(tmp_path, "c.yaml", "confirmation_ttl: 1h\n")
    assert load_policy(tmp_path, tool_risks=risk_table()).confirmation_ttl_seconds == 300


def test_lint_warns_when_confirm_can_never_ask_anyone(tmp_path):
    write(tmp_path, "a.yaml", """
        scope: {namespaces: ["*"]}
        rules:
          - {name: reads, risk: read, effect: allow, confirm: true}
          - {name: robots, tools: [sleep_workload], actors: [daemon], effect: allow, confirm: true}
          - {name: people, tools: [wake_workload], actors: [carol], effect: allow, confirm: true}
        """)
    warnings = [(p.field, p.message) for p in lint(tmp_path, tool_risks=risk_table()).warnings]
    assert ("rules[0].confirm", "rule 'reads' asks for confirmation but matches only reads, which never wait for anyone") in warnings
    assert any(field == "rules[1].confirm" and "only machine actors" in message for field, message in warnings)
    assert not any(field == "rules[2].confirm" for field, _ in warnings)
