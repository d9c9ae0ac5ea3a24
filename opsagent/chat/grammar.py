"""The deterministic chat grammar: a line of text becomes a typed `Command`.

Pure: no I/O, no clock, no cluster. `parse(text)` returns either a `Command`
(the tool calls to run, or an approvals action) or a `NotUnderstood` that says
why and lists the forms that work. It is case-insensitive and tolerant of the
punctuation people type in chat (trailing `?`, commas, backticks, Slack
`<@U…>` mentions, a leading "please").

It must not decide whether anything is allowed: that is the gate's job. It only
turns words into proposals. A tool people may ask for directly declares its own
form (`Tool.chat`, e.g. "scale NS/NAME to N"); the commands here are the rest.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field

from opsagent.model import Frozen
from tools.base import ChatForm
from tools.registry import REGISTRY

_COMMAND_FORMS: tuple[str, ...] = (
    "why is NS/NAME pending?  (or: failing?, not ready?; NAME is a workload or a GPU job)",
    "show idle gpus | show free gpus | show gpus",
    "show workloads [in NS]",
    "show findings",
    "show approvals",
    "show proposals  (your writes waiting for your yes)",
    "approve N [comment]",
    "reject N because REASON",
    "confirm N  (run a write waiting for your yes)",
    "refuse N  (drop it)",
    "help",
)


def _tool_forms() -> tuple[tuple[str, ChatForm], ...]:
    """(tool name, its chat form) for every registered tool that has one, in catalogue order."""
    return tuple((tool.name, tool.chat) for tool in REGISTRY.values() if tool.chat is not None)


def forms() -> tuple[str, ...]:
    """Every form `help` lists: the tools' own, then the chat commands."""
    return tuple(form.form for _, form in _tool_forms()) + _COMMAND_FORMS

Action = Literal["tool", "lease", "why", "approve", "reject", "confirm", "refuse", "show_approvals", "show_proposals", "help"]


class Step(Frozen):
    """One tool call the command proposes (arguments still untrusted)."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class Command(Frozen):
    action: Action
    steps: tuple[Step, ...] = ()
    fallback: tuple[Step, ...] = Field(default=(), description="steps for when the first step finds no such object "
                                                                   "(`why`: the subject is a GPU job, not a workload)")
    approval_id: int | None = None
    confirmation_id: int | None = Field(default=None, description="`confirm N` / `refuse N`: the confirmation answered")
    note: str | None = Field(default=None, description="approval comment or rejection reason")
    summary: str = Field(description="the command in its canonical form, e.g. 'scale inference/llm to 2'")
    workload: str | None = Field(default=None, description="NS/NAME the command is about, if any")
    span: str | None = Field(default=None, description="`wake NS/NAME for 2h`: how long the time-boxed wake lasts")


class NotUnderstood(Frozen):
    text: str
    reason: str
    hint: str | None = None
    forms: tuple[str, ...] = Field(default_factory=forms)


NS = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
NAME = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
WL = rf"(?P<ns>{NS})/(?P<name>{NAME})"
NODE = rf"(?P<node>{NAME})"  # a node name, for the forms of node tools ("drain gpu-b")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}
NUM = r"(?P<n>\d{1,6}|" + "|".join(_NUMBER_WORDS) + r")"
_HELP = ("help", r"^(?:help|\?|commands|what can you do)$")
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("why", rf"^why\s+(?:is|are|does)\s+{WL}\s+(?:still\s+)?(?P<state>pending|failing|crashing|stuck|down|broken|not\s+running|"
            r"not\s+ready|unready|never\s+ready|restarting|keep\s+restarting|not\s+starting)(?:\s+yet)?$"),
    ("why", rf"^why\s+(?P<neg>isn'?t|is\s+not|aren'?t|are\s+not|doesn'?t|does\s+not)\s+{WL}\s+(?:get\s+|become\s+)?"
            r"(?P<state>ready|running|up|start)(?:\s+yet)?$"),
    ("gpus", r"^(?:show|list|get)\s+(?:me\s+)?(?:the\s+)?(?P<which>idle\s+|free\s+|all\s+)?gpus?$"),
    ("workloads", rf"^(?:show|list|get)\s+(?:me\s+)?(?:the\s+)?(?P<gpu>gpu\s+)?workloads(?:\s+in\s+(?:namespace\s+)?(?P<ns>{NS}))?$"),
    ("findings", r"^(?:show|list|get)\s+(?:me\s+)?(?:the\s+)?findings$"),
    ("approvals", r"^(?:show|list|get)\s+(?:me\s+)?(?:the\s+)?(?:pending\s+)?approvals$"),
    ("proposals", r"^(?:show|list|get)\s+(?:me\s+)?(?:the\s+|my\s+)?(?:waiting\s+)?(?:proposals|confirmations)$"),
    ("approve", r"^approve\s+#?(?P<id>\d{1,9})(?:\s*[:,-]?\s+(?P<note>.+))?$"),
    ("reject", r"^reject\s+#?(?P<id>\d{1,9})\s*(?:because|since|as|:|-|,)\s*(?P<note>\S.*)$"),
    ("confirm", r"^confirm\s+#?(?P<id>[0-9]{1,9})$"),
    ("refuse", r"^(?:refuse|cancel)\s+#?(?P<id>[0-9]{1,9})$"),
)


@lru_cache(maxsize=8)
def _table(tool_forms: tuple[tuple[str, ChatForm], ...]) -> tuple[tuple[str, re.Pattern[str], ChatForm | None], ...]:
    """The patterns in the order they are tried: help, the tools' forms, then the chat commands."""
    own = [(name, form.pattern.replace("{WL}", WL).replace("{NUM}", NUM).replace("{NODE}", NODE), form)
           for name, form in tool_forms]
    rows = [(*_HELP, None), *own, *((key, rx, None) for key, rx in _COMMANDS)]
    # re.ASCII: with IGNORECASE alone [a-z] also matches the Kelvin sign and the long s, and \d any script's digits.
    return tuple((key, re.compile(rx, re.IGNORECASE | re.ASCII), form) for key, rx, form in rows)


def _workload_verbs() -> dict[str, tuple[str, ...]]:
    """First words that take a workload, with the words that may stand between them and it."""
    verbs: dict[str, tuple[str, ...]] = {"why": ()}
    for _, form in _tool_forms():
        if "{WL}" not in form.pattern:
            continue  # a node tool's form ("drain NODE")
        for verb in (form.verb, *form.aliases):
            verbs[verb] = form.particles
    return verbs


def clean(text: str) -> str:
    """Strip chat noise: mentions, formatting, politeness, trailing punctuation."""
    t = re.sub(r"<@[A-Z0-9]+(?:\|[^>]*)?>", " ", text)
    t = t.replace("`", " ").replace("*", " ").replace("\u2019", "'")
    t = re.sub(r"(?:--namespace|-n)(?:\s+|=)(" + NS + r")\b", r"in \1", t, flags=re.IGNORECASE | re.ASCII)
    t = re.sub(r"--replicas(?:\s+|=)(\d+)", r"to \1", t, flags=re.IGNORECASE)
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"^(?:/ops\s+|opsagent[,:]?\s+|@opsagent[,:]?\s+)", "", t, flags=re.IGNORECASE)
    t = re.sub(r"^(?:hey[,]?\s+)?(?:please\s+|pls\s+|can\s+you\s+|could\s+you\s+)+", "", t, flags=re.IGNORECASE)
    t = re.sub(r"(?:\s*(?:please|pls|thanks|thank you))+[.!?]*$", "", t, flags=re.IGNORECASE)
    t = re.sub(r"[\s?!.,;]+$", "", t)
    return t.strip()


def _qualify(t: str) -> str:
    """Turn 'VERB NAME ... in NS' into 'VERB NS/NAME ...' for workload commands."""
    words = t.split(" ")
    verb = words[0].lower() if words else ""
    verbs = _workload_verbs()
    if verb not in verbs or "/" in t:
        return t
    m = re.search(rf"\s+in\s+(?:the\s+)?(?:namespace\s+)?({NS})(?:\s+namespace)?(?=\s|$)", t, re.IGNORECASE | re.ASCII)
    if not m:
        return t
    ns = m.group(1).lower()
    rest = (t[: m.start()] + t[m.end():]).split(" ")
    idx = 2 if verb == "why" else 1
    if len(rest) > idx and rest[idx].lower() in verbs[verb]:
        idx += 1
    if len(rest) <= idx:
        return t
    rest[idx] = f"{ns}/{rest[idx]}"
    return " ".join(rest)


def _number(raw: str) -> int:
    return _NUMBER_WORDS[raw.lower()] if raw.lower() in _NUMBER_WORDS else int(raw)


def parse(text: str) -> Command | NotUnderstood:
    """Parse one chat line. Never raises for any input string."""
    t = _qualify(clean(text or ""))
    if not t:
        return NotUnderstood(text=text, reason="the message is empty", hint="try 'help'")
    folded = _fold(t)
    for key, rx, form in _table(_tool_forms()):
        m = rx.match(folded)
        if m:
            odd = _lookalike(text, t, folded, m)
            if odd is not None:
                return odd
            m = rx.match(t) or m  # they differ only inside free text (a comment, a reason): keep the person's words
            return _from_form(key, form, m) if form is not None else _build(key, m)
    return _near_miss(text, t)


# Groups that name something (what a command acts on), by the word a refusal uses for them. Free text (`note`) is not
# here: a comment or a reason may be in any script.
_NAMED_FIELDS = {"ns": "namespace", "name": "name", "node": "node", "container": "container", "image": "image",
                 "n": "number", "rev": "revision", "id": "number", "span": "duration"}


def _fold(t: str) -> str:
    """`t` with each letter that passes for an ASCII one (width forms, accents, other scripts' look-alikes) replaced
    by it, one character for one, so a match of the folded text has the same spans in `t`."""
    from opsagent.model.images import lookalike_of

    return "".join(ch if ch.isascii() else (lookalike_of(ch) or ch) for ch in t)


def _lookalike(original: str, t: str, folded: str, m: re.Match[str]) -> NotUnderstood | None:
    """A refusal naming the field when a name, number or the command's own words hold anything but ASCII: a look-alike
    letter would make `ѕystem/x` (Cyrillic dze) read as `system/x` to a person and be another object to the cluster."""
    from opsagent.model.images import ascii_shown, describe_char

    free = [m.span(g) for g, field in m.groupdict().items() if field is not None and g not in _NAMED_FIELDS]
    for i, ch in enumerate(t):
        if ch.isascii() and ch == folded[i]:
            continue
        if any(start <= i < end for start, end in free):
            continue
        group = next((g for g in _NAMED_FIELDS if m.groupdict().get(g) is not None and m.start(g) <= i < m.end(g)), None)
        field = _NAMED_FIELDS[group] if group else "command word"
        word = t[m.start(group):m.end(group)] if group else t.split(" ")[0] if i < len(t.split(" ")[0]) else ch
        return NotUnderstood(text=original, reason=f"the {field} {ascii_shown(word)} "
                                                   f"has a character that is not plain ASCII ({describe_char(ch)})",
                             hint="type names and numbers in plain ASCII letters and digits; nothing was run")
    return None


def _wl(m: re.Match[str]) -> tuple[dict[str, str], str]:
    ns, name = m.group("ns").lower(), m.group("name").lower()
    return {"namespace": ns, "name": name}, f"{ns}/{name}"


def _from_form(tool: str, form: ChatForm, m: re.Match[str]) -> Command:
    """A tool's own chat form matched: one step calling that tool on the named workload (or node)."""
    groups: dict[str, Any] = m.groupdict()
    if groups.get("node"):
        node = groups["node"].lower()
        extra, summary = form.build(node, groups)
        return Command(action="tool", steps=(Step(tool=tool, args={"node": node, **extra}),), summary=summary)
    args, ref = _wl(m)
    if groups.get("n") is not None:
        groups["n"] = _number(groups["n"])
    extra, summary = form.build(ref, groups)
    if groups.get("span"):  # `wake NS/NAME for 2h`: a time-boxed wake (opsagent.leases), not a bare call
        span = groups["span"].lower()
        return Command(action="lease", steps=(Step(tool=tool, args={**args, **extra}),), summary=f"{summary} for {span}",
                       workload=ref, span=span)
    return Command(action="tool", steps=(Step(tool=tool, args={**args, **extra}),), summary=summary, workload=ref)


def _build(key: str, m: re.Match[str]) -> Command:
    if key == "help":
        return Command(action="help", summary="help")
    if key == "why":
        args, ref = _wl(m)
        state = " ".join(m.group("state").lower().split())
        if m.groupdict().get("neg"):
            state = f"not {state}"
        steps = (
            Step(tool="get_workload", args=args),
            Step(tool="list_pods", args={"namespace": args["namespace"], "workload": args["name"]}),
            Step(tool="list_findings", args={"subject": ref}),
        )
        return Command(action="why", steps=steps, fallback=(Step(tool="get_job", args=args),),
                       summary=f"why is {ref} {state}", workload=ref)
    if key == "gpus":
        which = (m.group("which") or "").strip().lower()
        if which == "idle":
            step = Step(tool="list_workloads", args={"only_gpu": True, "only_idle": True})
        elif which == "free":
            step = Step(tool="gpu_inventory", args={"only_free": True})
        else:
            step = Step(tool="gpu_inventory", args={})
        return Command(action="tool", steps=(step,), summary=f"show {which + ' ' if which and which != 'all' else ''}gpus")
    if key == "workloads":
        args: dict[str, Any] = {}
        if m.group("ns"):
            args["namespace"] = m.group("ns").lower()
        if m.group("gpu"):
            args["only_gpu"] = True
        where = f" in {args['namespace']}" if "namespace" in args else ""
        return Command(action="tool", steps=(Step(tool="list_workloads", args=args),), summary=f"show workloads{where}")
    if key == "findings":
        return Command(action="tool", steps=(Step(tool="list_findings", args={}),), summary="show findings")
    if key == "approvals":
        return Command(action="show_approvals", summary="show approvals")
    if key == "proposals":
        return Command(action="show_proposals", summary="show proposals")
    if key == "approve":
        note = (m.group("note") or "").strip() or None
        return Command(action="approve", approval_id=int(m.group("id")), note=note, summary=f"approve {m.group('id')}")
    if key in {"confirm", "refuse"}:
        return Command(action=key, confirmation_id=int(m.group("id")), summary=f"{key} {m.group('id')}")  # type: ignore[arg-type]
    if key == "reject":
        return Command(action="reject", approval_id=int(m.group("id")), note=m.group("note").strip(),
                       summary=f"reject {m.group('id')}")
    raise AssertionError(f"unhandled grammar key {key}")  # pragma: no cover - table is closed


_HINTS = {
    "why": "why is NS/NAME pending? (or failing?, not ready?), e.g. 'why is inference/llm not ready?'",
    "show": "show idle gpus | show gpus | show workloads [in NS] | show findings | show approvals | show proposals",
    "list": "show idle gpus | show gpus | show workloads [in NS] | show findings | show approvals | show proposals",
    "approve": "approve N [comment], e.g. 'approve 12 looks right'",
    "reject": "reject N because REASON, e.g. 'reject 12 because it is the wrong node pool'",
    "confirm": "confirm N, e.g. 'confirm 7' (N is the number of a write waiting for your yes)",
    "refuse": "refuse N, e.g. 'refuse 7'",
    "cancel": "refuse N, e.g. 'refuse 7'",
}


def _hints() -> dict[str, str]:
    own = {verb: form.hint for _, form in _tool_forms() for verb in (form.verb, *form.aliases)}
    return {**own, **_HINTS}


def _near_miss(original: str, t: str) -> NotUnderstood:
    verb = t.split(" ")[0].lower()
    hint = _hints().get(verb)
    if hint is None:
        return _closest(original, t, verb)
    if verb in _workload_verbs() and not re.search(rf"{NS}/{NAME}", t, re.IGNORECASE):
        reason = "name the workload as NAMESPACE/NAME (or 'NAME in NAMESPACE')"
    elif verb == "reject" and re.match(r"^reject\s+#?\d+$", t, re.IGNORECASE):
        reason = "a rejection needs a reason"
    else:
        reason = f"'{verb}' was understood but not the rest"
    odd = next((ch for ch in t if not ch.isascii()), None)
    if odd is not None:
        from opsagent.model.images import describe_char

        reason += f" (it has a character that is not plain ASCII: {describe_char(odd)})"
    return NotUnderstood(text=original, reason=reason, hint=f"use: {hint}")


def _closest(original: str, t: str, verb: str) -> NotUnderstood:
    """A mistyped first word ('scal', 'aprove'): suggest the closest form, never run it."""
    import difflib

    hints = _hints()
    close = difflib.get_close_matches(verb, list(hints), n=1, cutoff=0.6)
    if not close:
        return NotUnderstood(text=original, reason="this is not one of the chat commands")
    fixed = " ".join([close[0], *t.split(" ")[1:]])
    hint = f"did you mean: {fixed}" if isinstance(parse(fixed), Command) else f"use: {hints[close[0]]}"
    return NotUnderstood(text=original, reason=f"'{verb}' is not a chat command", hint=hint)
