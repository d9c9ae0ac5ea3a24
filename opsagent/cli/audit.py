"""`opsagent audit`: read, search, export and verify the audit log.

Thin: each command opens the `AuditStore`, calls one method and prints. It never
appends to or changes the log (search only refreshes the full-text index).
Durations (`--since 2h`) count back from now on the database's own clock, so a
simulator run's log is read in simulated time.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer

from opsagent.audit import EXPORT_FORMATS, AuditError, AuditFilter, AuditRecord, AuditStore, parse_anchor
from opsagent.audit.clocks import database_clock
from opsagent.audit.database import DatabaseCorrupt, check_integrity
from opsagent.cli.common import MAX_ROWS, DbOpt, choices, console, fail, id_argument, print_json
from opsagent.cli.output import (ROW_FORMATS, TABLE_FORMATS, Column, Format, NoHeadersOpt, Section, emit, emit_record,
                                 emit_sections, output_option, progress, record_option)
from opsagent.cli.errors import database_failed
from opsagent.clock import parse_duration
from opsagent.model import Effect, EntryKind, Outcome


# Audit rows also stream as jsonl or csv (the export formats) for scripts.
OutOpt = output_option(*ROW_FORMATS, Format.jsonl, Format.csv)
OutcomeChoice = choices("OutcomeChoice", Outcome)
DecisionChoice = choices("DecisionChoice", Effect)
KindChoice = choices("KindChoice", EntryKind)
_DURATION = re.compile(r"^\s*[\d.]+\s*[smhd]?([\d.]+[smhd])*\s*$", re.IGNORECASE)

audit_app = typer.Typer(help="Read, search, export and verify the audit log.\n\nExample: opsagent audit list --since 2h",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def parse_when(text: str | None, *, option: str, now: datetime) -> datetime | None:
    """An ISO time, or a duration meaning that long before `now` ('2h' = the last two hours)."""
    if text is None:
        return None
    if _DURATION.match(text):
        try:
            return now - parse_duration(text)
        except ValueError as exc:
            fail(f"{option}: {exc}", hint="use an ISO time (2026-01-05T14:00) or a duration (90m, 2h, 1d)")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option}: cannot read {text!r} as a time", hint="use an ISO time (2026-01-05T14:00) or a duration (90m, 2h, 1d)")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _value(choice: Any) -> str | None:
    return choice.value if choice is not None else None


def open_store(db: Path, *, check_pages: bool = False) -> AuditStore:
    """The existing database at `db`; anything else (missing, not opsagent's, damaged, locked) exits 2 naming it.
    `check_pages` (verify) also reads every page first; a damaged file then exits 1: it is not intact."""
    try:
        store = AuditStore(db, create=False)
        if check_pages:
            try:
                check_integrity(store.path, store.db.conn)
            except AuditError:
                store.close()
                raise
    except DatabaseCorrupt as exc:
        if not check_pages:
            database_failed(exc)
        fail(str(exc), hint="the hash chain cannot be trusted on a damaged file; restore it from a backup", code=1)
    except AuditError as exc:
        database_failed(exc)
    return store


def _short(value: Any, width: int = 60) -> str:
    text = "" if value is None else (json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def _target(r: AuditRecord) -> str | None:
    return f"{r.namespace}/{r.workload}" if r.workload else r.namespace


AUDIT_COLUMNS = [
    Column("id", lambda r: r.id), Column("time", lambda r: r.time.strftime("%Y-%m-%d %H:%M:%S")),
    Column("kind", lambda r: r.kind), Column("actor", lambda r: r.actor), Column("tool", lambda r: r.tool),
    Column("target", _target), Column("decision", lambda r: r.decision), Column("outcome", lambda r: r.outcome),
    Column("channel", lambda r: r.channel, wide=True), Column("run", lambda r: r.run_id, wide=True),
    Column("hash", lambda r: r.hash[:12], wide=True),
    Column("summary", lambda r: _short(r.summary)),
]


def print_records(records: list[AuditRecord], output: Format, *, headers: bool = True) -> None:
    """Audit rows in any `-o`: table/wide/name/json/yaml through the output module, jsonl and csv as export does."""
    if output is Format.jsonl:
        for r in records:
            sys.stdout.write(json.dumps(r.model_dump(mode="json"), sort_keys=True) + "\n")
    elif output is Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(AuditRecord.model_fields))
        if headers:
            writer.writeheader()
        for r in records:
            writer.writerow(r.flat())
        sys.stdout.write(buf.getvalue())
    else:
        emit(records, AUDIT_COLUMNS, output, kind="audit", name_of=lambda r: str(r.id), headers=headers)


@audit_app.command("list")
def list_cmd(
    since: str = typer.Option(None, "--since", help="ISO time or duration (2h = the last 2 hours)."),
    until: str = typer.Option(None, "--until", help="ISO time or duration (30m = until 30 minutes ago)."),
    actor: str = typer.Option(None, "--actor", help="Who acted: a person, daemon, wake-proxy."),
    tool: str = typer.Option(None, "--tool", help="Tool name, e.g. scale_workload."),
    namespace: str = typer.Option(None, "--namespace", "-n", help="Namespace of the target."),
    workload: str = typer.Option(None, "--workload", help="Workload name of the target."),
    outcome: OutcomeChoice = typer.Option(None, "--outcome", help="Only rows with this outcome."),  # type: ignore[valid-type]
    decision: DecisionChoice = typer.Option(None, "--decision", help="Only rows with this policy decision."),  # type: ignore[valid-type]
    kind: KindChoice = typer.Option(None, "--kind", help="Only rows of this kind."),  # type: ignore[valid-type]
    run_id: str = typer.Option(None, "--run", help="Only rows of this agent run."),
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_ROWS, help="At most this many rows, newest first."),
    output: Format = OutOpt,
    no_headers: bool = NoHeadersOpt,
    db: Path = DbOpt,
) -> None:
    """List audit rows, newest first. `-o wide` adds the channel, the agent run and the row's hash;
    `-o name` prints `audit/ID` lines.

    Example: opsagent audit list --since 2h --namespace ml --outcome denied -o json
    """
    with open_store(db) as store:
        now = database_clock(store).now()
        filters = AuditFilter(since=parse_when(since, option="--since", now=now),
                              until=parse_when(until, option="--until", now=now),
                              actor=actor, tool=tool, namespace=namespace, workload=workload,
                              outcome=_value(outcome), decision=_value(decision), kind=_value(kind),
                              run_id=run_id, limit=limit)
        print_records(store.list(filters), output, headers=not no_headers)


@audit_app.command("show")
def show_cmd(audit_id: int = id_argument("Audit row"), output: Format = OutOpt, no_headers: bool = NoHeadersOpt,
             db: Path = DbOpt) -> None:
    """Show the whole story of one action: finding, proposal, decision, approval, result.

    Example: opsagent audit show 42
    """
    with open_store(db) as store:
        story = store.show(audit_id)
    if story is None:
        fail(f"no audit row {audit_id}", hint="find ids with: opsagent audit list")
    if output.data:
        print_json(story)
        return
    print_records(story.rows, output, headers=not no_headers)


@audit_app.command("search")
def search_cmd(text: str = typer.Argument(..., help="Words to find in summaries, tools, arguments, rule names, messages."),
               limit: int = typer.Option(50, "--limit", min=1, max=MAX_ROWS), output: Format = OutOpt,
               no_headers: bool = NoHeadersOpt, db: Path = DbOpt) -> None:
    """Full-text search of the audit log (every word must match).

    Example: opsagent audit search "llm free-idle-gpus"
    """
    if not text.strip():
        fail("search text is empty", hint='give the words to find, e.g. opsagent audit search "scale_workload denied"')
    with open_store(db) as store:
        print_records(store.search(text, limit=limit), output, headers=not no_headers)


ACTION_COLUMNS = [Column("tool", lambda a: a.tool), Column("outcome", lambda a: a.outcome), Column("count", lambda a: a.count)]
DENIAL_COLUMNS = [Column("rule file", lambda d: d.rule_file), Column("rule", lambda d: d.rule_name),
                  Column("count", lambda d: d.count)]


@audit_app.command("stats")
def stats_cmd(since: str = typer.Option("7d", "--since", help="ISO time, duration (7d = the last week, the default) "
                                                                "or 'all' for the whole log (reads every GPU event)."),
              output: Format = output_option(*TABLE_FORMATS, note="Counts have no names, so there is no name output; "
                                                                  "wide is the same as table."),
              no_headers: bool = NoHeadersOpt, db: Path = DbOpt) -> None:
    """Actions per tool and outcome, denials per rule, approvals waiting, GPU-hours freed, LLM tokens.

    GPU-hours freed: the GPUs each successful sleep (or delete) freed, times the hours until the
    workload was woken or scaled up again, or until now on the database's clock.

    Example: opsagent audit stats --since 7d -o json
    """
    with open_store(db) as store:
        now = database_clock(store).now()
        start = None if since.strip().lower() == "all" else parse_when(since, option="--since", now=now)
        s = store.stats(since=start, now=now)
    emit_sections([Section(list(s.actions), ACTION_COLUMNS, title="actions (results per tool and outcome)"),
                   Section(list(s.denials), DENIAL_COLUMNS, title="denials per rule")], output, record=s,
                  headers=not no_headers,
                  notes=["", f"rows: {s.rows}   approvals waiting: {s.approvals_waiting}   GPU-hours freed: "
                         f"{s.gpu_hours_freed:g}   GPUs freed: {s.gpus_freed:g}   LLM calls: {s.llm_calls} "
                         f"(prompt tokens {s.prompt_tokens}, completion tokens {s.completion_tokens})"])


@audit_app.command("export")
def export_cmd(fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl or csv."),
               out: Path = typer.Option(None, "--out", help="File to write; standard output if omitted."),
               since: str = typer.Option(None, "--since", help="ISO time or duration."),
               db: Path = DbOpt) -> None:
    """Export every row (oldest first) as JSON lines or CSV, hashes included.

    Example: opsagent audit export --format csv --out audit.csv
    """
    if fmt not in EXPORT_FORMATS:
        fail(f"--format: unknown format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    with open_store(db) as store:
        filters = AuditFilter(since=parse_when(since, option="--since", now=database_clock(store).now()), limit=None)
        if out is None:
            store.export(sys.stdout, fmt=fmt, filters=filters)
            return
        try:
            handle = out.open("w", newline="", encoding="utf-8")
        except OSError as exc:
            fail(f"--out {out}: cannot write: {exc.strerror or exc}", hint="give a file in an existing, writable directory")
        try:
            with handle:
                count = store.export(handle, fmt=fmt, filters=filters)
        except OSError as exc:
            fail(f"--out {out}: cannot write: {exc.strerror or exc}", hint="check the disk and the file's permissions")
    console.print(f"wrote {count} rows to {out}", highlight=False, markup=False)


@audit_app.command("head")
def head_cmd(output: Format = record_option("one record (the head)"), db: Path = DbOpt) -> None:
    """Print the head of the chain: its row count and newest hash, as ROWS:HASH.

    Keep it somewhere the database's owner cannot rewrite (a ticket, another system's log); later,
    `opsagent audit verify --expect-head ROWS:HASH` shows whether rows were removed or history rewritten.

    Example: opsagent audit head -o json
    """
    with open_store(db) as store:
        head = store.head()
    emit_record({"rows": head.rows, "hash": head.hash, "anchor": head.anchor}, output,
                [f"rows: {head.rows}", f"hash: {head.hash}", f"anchor: {head.anchor}"])


@audit_app.command("verify")
def verify_cmd(
    expect_head: str = typer.Option(None, "--expect-head", envvar="OPSAGENT_EXPECT_HEAD",
                                    help="ROWS:HASH noted earlier (from `opsagent audit head`): also fail when the log "
                                         "holds fewer rows or its row number ROWS has another hash."),
    output: Format = record_option("one verdict"),
    db: Path = DbOpt,
) -> None:
    """Recompute the hash chain and check the approvals and confirmations tables against it.

    Every page of the file is read first (a damaged or truncated file is exit 1: a chain read from it
    proves nothing). Exit 0 when intact; exit 1 naming the first bad row, a damaged page, every approval
    or chat confirmation whose row disagrees with its chained records, or an anchor the log no longer reaches.

    Example: opsagent audit verify --expect-head 1042:5f0c...
    """
    try:
        anchor = parse_anchor(expect_head) if expect_head is not None else None
    except ValueError as exc:
        fail(f"--expect-head: {exc}", hint="pass the anchor `opsagent audit head` printed, e.g. 1042:5f0c…")
    from opsagent.approvals import verify_approvals  # only verify reads them: keeps `audit list` quick to start
    from opsagent.chat.confirmations import verify_confirmations

    with open_store(db, check_pages=True) as store:
        total = store.head().rows
        with progress("verifying the chain") as update:  # nothing when stderr is not a terminal
            report = store.verify(anchor=anchor, on_rows=lambda n: update(n, total, f"row {n}"))
        mismatches = verify_approvals(store)
        held = verify_confirmations(store)
    ok = report.ok and not mismatches and not held
    lines = [f"intact: {report.rows} rows, head hash {report.head_hash}"
             + (f", matches the anchor {report.anchor[:24]}…" if report.anchor else "") if report.ok
             else f"broken: {report.problem or ''}"]
    lines += [f"approval {m.approval_id} disagrees with the chain: {'; '.join(m.problems)}" for m in mismatches]
    lines += [f"confirmation {cid} disagrees with the chain: {why}" for cid, why in held]
    emit_record({**report.model_dump(mode="json"), "ok": ok, "chain_ok": report.ok,
                 "approvals": [{"approval_id": m.approval_id, "problems": list(m.problems)} for m in mismatches],
                 "confirmations": [{"confirmation_id": cid, "problem": why} for cid, why in held]}, output, lines)
    if not ok:
        raise typer.Exit(1)
