"""Load playbooks from a directory: parse, validate, compile CEL, report exact places.

`load_playbooks(directory)` reads every `*.yaml`/`*.yml` file (sorted by name)
and returns a `PlaybookSet`, or raises `PlaybookError` listing every problem
as file:line:column with the field. `PlaybookSet.for_finding` picks the first
playbook (file order, then list order) whose `on` is the finding's kind and
whose `when` holds.

It reads files and nothing else: no cluster, no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opsagent.model import Finding, Snapshot
from opsagent.playbooks.context import finding_context, playbook_context
from opsagent.playbooks.schema import VERIFY_VARIABLES, WHEN_VARIABLES, Playbook, PlaybookFile
from opsagent.yamlmarks import YamlProblem, load_with_marks, locate
from opsagent.policy.cel import CelError, compile_expr


@dataclass(frozen=True)
class Issue:
    """One problem in a playbook file, with where it is."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str
    level: str = "error"  # or "warning"

    def __str__(self) -> str:
        place = self.file + (f":{self.line}" if self.line else "") + (f":{self.column}" if self.column else "")
        field = f" [{self.field}]" if self.field else ""
        return f"{place}:{field} {self.level}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "field": self.field,
                "message": self.message, "level": self.level}


class PlaybookError(ValueError):
    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_file(path: Path, display: str | None = None) -> tuple[list[Playbook], list[Issue], dict]:
    """Playbooks of one file, the problems found, and the marks (for lint)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Issue(name, None, None, "", f"cannot read: {exc}")], {}
    try:
        data, marks = load_with_marks(text)
    except YamlProblem as exc:
        return [], [Issue(name, exc.line, exc.column, "", exc.message)], {}
    if not isinstance(data, dict):
        return [], [Issue(name, 1, 1, "", "expected a mapping with a `playbooks:` list")], marks
    try:
        parsed = PlaybookFile.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line, column = locate(marks, loc, key=True)
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"unknown field {loc[-1]!r}"
            issues.append(Issue(name, line, column, _dotted(loc), message))
        return [], issues, marks
    issues: list[Issue] = []
    for i, playbook in enumerate(parsed.playbooks):
        line, _ = locate(marks, ("playbooks", i), key=True)
        playbook._source = f"{name}:{line}"
        playbook._file, playbook._index = name, i
        for attr, variables in (("when", WHEN_VARIABLES), ("verify", VERIFY_VARIABLES)):
            source = getattr(playbook, attr)
            if source is None:
                continue
            loc = ("playbooks", i, attr)
            line, column = locate(marks, loc, key=True)
            try:
                expr = compile_expr(source, where=f"{name}:{_dotted(loc)}", variables=set(variables))
            except CelError as exc:
                issues.append(Issue(name, line, column, _dotted(loc), f"CEL: {exc.message}"))
                continue
            setattr(playbook, f"_{attr}", expr)
    return list(parsed.playbooks), issues, marks


class PlaybookSet:
    """The loaded playbooks in order. Read-only."""

    def __init__(self, playbooks: list[Playbook] | tuple[Playbook, ...]) -> None:
        self.playbooks = tuple(playbooks)

    def __iter__(self) -> Iterator[Playbook]:
        return iter(self.playbooks)

    def __len__(self) -> int:
        return len(self.playbooks)

    def for_kind(self, kind: str) -> list[Playbook]:
        return [p for p in self.playbooks if p.on == kind]

    def get(self, name: str) -> Playbook | None:
        return next((p for p in self.playbooks if p.name == name), None)

    def kinds(self) -> set[str]:
        return {p.on for p in self.playbooks}

    def for_finding(self, finding: Finding, snapshot: Snapshot | None) -> Playbook | None:
        """The first playbook for this finding's kind whose `when` is true (or absent)."""
        context: dict[str, Any] | None = None
        for playbook in self.playbooks:
            if playbook.on != finding.kind:
                continue
            if playbook._when is None:
                return playbook
            if context is None:
                context = playbook_context(finding, snapshot)
            if playbook._when.test({"finding": context["finding"], "target": context["target"]}):
                return playbook
        return None


def verify(playbook: Playbook, *, finding: Finding, target: dict[str, Any], finding_open: bool) -> bool:
    """The playbook's verify condition on the re-observed state; no condition means 'finding closed'."""
    if playbook._verify is None:
        return not finding_open
    return playbook._verify.test({"finding": finding_context(finding), "target": target, "finding_open": finding_open})


def read_directory(directory: Path) -> tuple[list[Playbook], list[Issue], dict[str, dict]]:
    """Every playbook under `directory`, all problems, and each file's marks."""
    directory = Path(directory)
    if not directory.is_dir():
        return [], [Issue(str(directory), None, None, "", "not a directory of playbook files")], {}
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    playbooks: list[Playbook] = []
    issues: list[Issue] = []
    all_marks: dict[str, dict] = {}
    seen: dict[str, str] = {}
    for path in files:
        found, problems, marks = parse_file(path)
        all_marks[str(path)] = marks
        issues.extend(problems)
        for i, playbook in enumerate(found):
            if playbook.name in seen:
                line, column = locate(marks, ("playbooks", i, "name"), key=True)
                issues.append(Issue(str(path), line, column, f"playbooks[{i}].name",
                                    f"playbook name {playbook.name!r} is already used at {seen[playbook.name]}"))
            seen.setdefault(playbook.name, playbook.source)
            playbooks.append(playbook)
    return playbooks, issues, all_marks


def load_playbooks(directory: Path | str) -> PlaybookSet:
    """Load and check every playbook file in `directory`; raises PlaybookError on any error."""
    from opsagent.playbooks.lint import tool_issues

    playbooks, issues, marks = read_directory(Path(directory))
    issues += tool_issues(playbooks, marks, registry=None)
    errors = [i for i in issues if i.level == "error"]
    if errors:
        raise PlaybookError(errors)
    return PlaybookSet(playbooks)
