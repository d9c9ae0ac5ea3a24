"""Printing rows the way kubectl does: plain aligned columns, or json, yaml or names for scripts.

A table here is plain text: columns padded with spaces, never wrapped, no box
drawing, whatever the terminal or pipe, so `| grep`, `| awk` and `| head`
work. `wide` adds the columns marked wide; `name` prints one `kind/name` per
line; `json` and `yaml` print the full records (a list, or one object when a
single NAME was asked for). Pure formatting: the caller gathers the rows.

A command may print several tables (`Section`s, each with a `# title` line)
followed by summary lines (`notes`); `--no-headers` leaves out every header,
title and note, so what is left is rows only. A command that prints one record
(a reply, a verdict) offers table, wide, json and yaml and says in its help that
wide is the same as table and why it has no `name`: see `record_option`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from enum import Enum
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TextIO

import typer

from opsagent.model.text import safe_line


class Format(str, Enum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"
    jsonl = "jsonl"   # audit rows only: one JSON object a line
    csv = "csv"       # audit rows only

    @property
    def data(self) -> bool:
        """json or yaml: the whole record for scripts (print it with `print_json`)."""
        return self.value in ("json", "yaml")


TABLE_FORMATS = (Format.table, Format.wide, Format.json, Format.yaml)
ROW_FORMATS = (*TABLE_FORMATS, Format.name)
_HELP = {Format.table: "table (plain columns)", Format.wide: "wide (more columns where the command has more)",
         Format.json: "json", Format.yaml: "yaml", Format.name: "name (one KIND/NAME per line)",
         Format.jsonl: "jsonl", Format.csv: "csv"}


def output_option(*supported: Format, note: str = "") -> Any:
    """`-o/--output` offering only `supported`. An unsupported value given with `-o` is a one-line error naming
    the supported ones; the same value from OPSAGENT_OUTPUT (a preference for the whole shell, set for
    commands that have it) falls back to `table` on a command without it. A value no command offers (a typo
    such as OPSAGENT_OUTPUT=xml) is an error wherever it comes from, naming the variable."""
    names = [f.value for f in supported]

    def convert(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Format:
        text = str(getattr(value, "value", value) or Format.table.value).strip().lower()
        if text not in names:
            known = text in {f.value for f in Format}   # a format some other command offers: a shell-wide preference
            if known and getattr(ctx.get_parameter_source(param.name or "output"), "name", "") == "ENVIRONMENT":
                text = Format.table.value
            else:
                raise typer.BadParameter(f"{text!r} is not offered here; use one of: {', '.join(names)}")
        from opsagent.cli.common import remember_format

        return Format(remember_format(text))

    return typer.Option(Format.table.value, "--output", "-o", envvar="OPSAGENT_OUTPUT", parser=str,
                        callback=convert, metavar="|".join(names), autocompletion=lambda: names,
                        help=", ".join(_HELP[f] for f in supported) + "." + (f" {note}" if note else ""))


def record_option(what: str) -> Any:
    """`-o` for a command that prints one record, `what` (e.g. "one reply"): no rows, so no `name` and no
    --no-headers, and wide shows what table shows."""
    return output_option(*TABLE_FORMATS, note=f"This command prints {what}: wide is the same as table, and there "
                                              "is no name output (nothing here has a KIND/NAME).")


FormatOpt = output_option(*ROW_FORMATS)
NoHeadersOpt = typer.Option(False, "--no-headers", envvar="OPSAGENT_NO_HEADERS", show_default=False,
                            help="Rows only: leave out the header line (and any titles and summary lines) of table "
                                 "and wide output.")


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], Any]
    wide: bool = False  # only with -o wide
    narrow: bool = False  # only without -o wide (which shows a fuller column in its place)


def cell(value: Any) -> str:
    """One table cell: `<none>` for nothing, whole numbers without `.0`, a list joined by commas, one line always."""
    if value is None or value == "" or value == ():
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else str(int(value))
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)   # one word, as kubectl
    return " ".join(safe_line(text, 10_000).split())   # cluster text: nothing a terminal acts on, one line


def table_lines(rows: Iterable[Any], columns: list[Column], *, wide: bool, headers: bool) -> list[str]:
    shown = [c for c in columns if (wide or not c.wide) and not (wide and c.narrow)]
    body = [[cell(c.value(row)) for c in shown] for row in rows]
    head = [[c.header.upper().replace(" ", "_") for c in shown]] if headers else []
    # padded by the columns a terminal gives each character (a CJK character takes two), so names in any
    # script keep the next column aligned
    from rich.cells import cell_len

    widths = [max(cell_len(r[i]) for r in head + body) for i in range(len(shown))] if head + body else []
    return ["   ".join(text + " " * (widths[i] - cell_len(text)) for i, text in enumerate(r)).rstrip()
            for r in head + body]


@dataclass(frozen=True)
class Section:
    """One table of a command's output. `kind` None: its rows have no names (left out of `-o name`); "": each
    row's `name_of` gives KIND/NAME itself."""

    rows: list[Any]
    columns: list[Column]
    kind: str | None = None
    name_of: Callable[[Any], str] = str
    title: str = ""
    hide_empty: bool = False   # no rows: print nothing for it, not even the header line


def print_data(doc: Any, fmt: Format, out: TextIO | None = None) -> None:
    """A whole record for scripts: JSON, or YAML for `-o yaml`."""
    from opsagent.cli.common import to_jsonable

    out = out or sys.stdout
    text = json.dumps(to_jsonable(doc), indent=2, default=str)
    if fmt == Format.yaml:
        import yaml

        out.write(yaml.safe_dump(json.loads(text), sort_keys=False, allow_unicode=True))   # names as written, not escaped
        return
    out.write(text + "\n")


def name_line(kind: str, name: Any) -> str:
    """`kind/name`, one token: whitespace inside a name becomes `-` so `xargs` and `read` see one word. An empty
    `kind` (a section of mixed kinds) means the name already starts with its kind."""
    return (f"{kind}/" if kind else "") + "-".join(str(name).split())


def emit_sections(sections: list[Section], fmt: Format, *, record: Any, headers: bool = True,
                  notes: Iterable[str] = (), out: TextIO | None = None) -> None:
    """Print a command's output in `fmt`: `record` (the whole document) for json/yaml, `kind/name` lines of the
    named sections for name, else each section's table (titled when there are several) and then `notes`,
    all of which `headers=False` leaves out but the rows."""
    out = out or sys.stdout
    if fmt.data:
        print_data(record, fmt, out)
        return
    if fmt == Format.name:   # each name once (a scenario run under two planners is one scenario)
        names = [name_line(s.kind, s.name_of(r)) for s in sections if s.kind is not None for r in s.rows]
        out.write("".join(name + "\n" for name in dict.fromkeys(names)))
        return
    lines: list[str] = []
    for section in sections:
        if section.hide_empty and not section.rows:
            continue
        if headers and lines:
            lines.append("")
        if headers and section.title and len(sections) > 1:
            lines.append(f"# {section.title}")
        lines += table_lines(section.rows, section.columns, wide=fmt == Format.wide, headers=headers)
    if headers:
        lines += [safe_line(note, 100_000) for note in notes]   # notes and records quote the cluster: each one line
    out.write("".join(line + "\n" for line in lines))


def emit(rows: list[Any], columns: list[Column], fmt: Format, *, kind: str, name_of: Callable[[Any], str],
         record_of: Callable[[Any], Any] = lambda r: r, headers: bool = True, single: bool = False,
         notes: Iterable[str] = (), out: TextIO | None = None) -> None:
    """Print `rows` in `fmt`. `single` (a NAME was asked for) prints one object rather than a list for json/yaml."""
    records = [record_of(r) for r in rows] if fmt.data else []
    doc: Any = records[0] if single and len(records) == 1 else records
    emit_sections([Section(rows, columns, kind, name_of)], fmt, record=doc, headers=headers, notes=notes, out=out)


def emit_record(record: Any, fmt: Format, lines: Iterable[str], out: TextIO | None = None) -> None:
    """One record (see `record_option`): the document for json/yaml, else the lines written for people."""
    emit_sections([], fmt, record=record, notes=lines, out=out)


def _place(problem: Any) -> str:
    return problem.file + "".join(f":{n}" for n in (problem.line, problem.column) if n is not None) + ":"


# What `policy lint` and `playbook lint` print: one row per problem, `file:line:column:` first, so an editor
# or a CI problem matcher reads the rows as it reads a compiler's.
PROBLEM_COLUMNS = [
    Column("location", _place), Column("severity", lambda p: getattr(p, "severity", None) or p.level),
    Column("field", lambda p: p.field), Column("message", lambda p: p.message),
    Column("hint", lambda p: getattr(p, "hint", None)),
]
LintOutputOpt = output_option(*TABLE_FORMATS, note="A problem has no name, so there is no name output; wide is the "
                                                   "same as table (every column is already shown).")


@contextmanager
def progress(what: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar on stderr for long work, as `update(done, total, item)`; nothing at all when stderr is
    not a terminal (logs and pipes stay clean)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from opsagent.cli.common import err_console

    if not err_console.is_terminal:
        yield lambda done, total, item: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("[dim]{task.fields[item]}"), console=err_console, transient=True) as bar:
        task = bar.add_task(what, total=None, item="")

        def update(done: int, total: int, item: str) -> None:
            bar.update(task, completed=done, total=total, item=item)
        yield update
