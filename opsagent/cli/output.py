"""Printing rows the way kubectl does: plain aligned columns, or json, yaml or names for scripts.

A table here is plain text: columns padded with spaces, never wrapped, no box
drawing, whatever the terminal or pipe, so `| grep`, `| awk` and `| head`
work. `wide` adds the columns marked wide; `name` prints one `kind/name` per
line; `json` and `yaml` print the full records (a list, or one object when a
single NAME was asked for). Pure formatting: the caller gathers the rows.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from enum import Enum
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TextIO

import typer



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


def output_option(*supported: Format) -> Any:
    """`-o/--output` offering only `supported`. An unsupported value given with `-o` is a one-line error naming
    the supported ones; the same value from OPSAGENT_OUTPUT (a preference for the whole shell, set for
    commands that have it) falls back to `table` on a command without it."""
    names = [f.value for f in supported]

    def convert(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Format:
        text = str(getattr(value, "value", value) or Format.table.value).strip().lower()
        if text not in names:
            if getattr(ctx.get_parameter_source(param.name or "output"), "name", "") == "ENVIRONMENT":
                text = Format.table.value
            else:
                raise typer.BadParameter(f"{text!r} is not offered here; use one of: {', '.join(names)}")
        from opsagent.cli.common import remember_format

        return Format(remember_format(text))

    return typer.Option(Format.table.value, "--output", "-o", envvar="OPSAGENT_OUTPUT", parser=str,
                        callback=convert, metavar="|".join(names), autocompletion=lambda: names,
                        help=", ".join(_HELP[f] for f in supported) + ".")


FormatOpt = output_option(*ROW_FORMATS)
NoHeadersOpt = typer.Option(False, "--no-headers", envvar="OPSAGENT_NO_HEADERS", show_default=False,
                            help="Leave out the header line of table and wide output.")


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], Any]
    wide: bool = False  # only with -o wide


def cell(value: Any) -> str:
    """One table cell: `<none>` for nothing, whole numbers without `.0`, one line always."""
    if value is None or value == "" or value == ():
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else str(int(value))
    text = ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    return " ".join(text.split())


def table_lines(rows: Iterable[Any], columns: list[Column], *, wide: bool, headers: bool) -> list[str]:
    shown = [c for c in columns if wide or not c.wide]
    body = [[cell(c.value(row)) for c in shown] for row in rows]
    head = [[c.header.upper().replace(" ", "_") for c in shown]] if headers else []
    widths = [max(len(r[i]) for r in head + body) for i in range(len(shown))] if head + body else []
    return ["   ".join(text.ljust(widths[i]) for i, text in enumerate(r)).rstrip() for r in head + body]


def emit(rows: list[Any], columns: list[Column], fmt: Format, *, kind: str, name_of: Callable[[Any], str],
         record_of: Callable[[Any], Any] = lambda r: r, headers: bool = True, single: bool = False,
         out: TextIO | None = None) -> None:
    """Print `rows` in `fmt`. `single` (a NAME was asked for) prints one object rather than a list for json/yaml."""
    from opsagent.cli.common import to_jsonable

    out = out or sys.stdout
    if fmt in (Format.json, Format.yaml):
        records = [to_jsonable(record_of(r)) for r in rows]
        doc: Any = records[0] if single and len(records) == 1 else records
        if fmt == Format.json:
            out.write(json.dumps(doc, indent=2, default=str) + "\n")
        else:
            import yaml

            out.write(yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False))
        return
    if fmt == Format.name:
        for r in rows:
            out.write(f"{kind}/{name_of(r)}\n")
        return
    for line in table_lines(rows, columns, wide=fmt == Format.wide, headers=headers):
        out.write(line + "\n")


def plain_table(table: Any) -> list[str]:
    """A rich Table as plain columns, for output that is not a terminal: a `# TITLE` line when it has a title,
    then headers upper-cased with `_` for spaces (one word each, so `awk` counts columns right)."""
    from rich.text import Text

    def text(value: Any) -> str:
        plain = value.plain if isinstance(value, Text) else Text.from_markup(value).plain if isinstance(value, str) else str(value)
        return cell(plain)

    columns = table.columns
    rows = [[text(c._cells[i]) if i < len(c._cells) else "<none>" for c in columns] for i in range(table.row_count)]
    lines = [f"# {text(table.title)}"] if table.title else []
    head = [[(text(c.header) or "-").upper().replace(" ", "_") for c in columns]] if table.show_header else []
    widths = [max(len(r[i]) for r in head + rows) for i in range(len(columns))] if head + rows else []
    return lines + ["   ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in head + rows]


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
