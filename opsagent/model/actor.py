"""Actor names: the one normalisation every door applies, and who an actor is.

An actor name enters opsagent at a few doors: the command line (`--as`,
`OPSAGENT_ACTOR`, the OS user, or the cluster's own answer to "who am I"), the
Slack user mapping file, and the approval queue. Each door passes the name
through `normalize_actor`, so `Alice`, `ＡＬＩＣＥ` and `alice` are one person,
and a name that could be read as one of opsagent's own machine actors
(`daemon`, `wake-proxy`, `opsagent`) is refused, whatever its case, width,
accents, look-alike letters or invisible characters.

`Actor` is who a request runs as: the normalised name, the groups the cluster
says the person is in (`cluster-group:NAME` in policy rules), and where the
name came from (for the audit log and `opsagent doctor`).

Pure: no I/O. It does not decide what an actor may do (the policy does).
"""

from __future__ import annotations

import unicodedata

from pydantic import Field

from opsagent.model.cluster import Frozen

# opsagent's own actors: the reconcile daemon, the wake proxy, and the queue itself (expiry).
MACHINE_ACTORS = frozenset({"daemon", "wake-proxy", "opsagent"})
MAX_LENGTH = 256

# Letters from other scripts that look like the Latin ones (a small table, enough to keep a
# look-alike of a machine actor's name out of the audit log; not a general confusables list).
_LOOKALIKE = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "к": "k", "м": "m", "н": "h",
    "т": "t", "в": "b", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ո": "n",
    "ɑ": "a", "ε": "e", "ο": "o", "ρ": "p", "ν": "v", "κ": "k", "ι": "i", "α": "a", "τ": "t", "μ": "m",
    "ᴅ": "d", "ᴀ": "a", "ᴇ": "e", "ᴍ": "m", "ᴏ": "o", "ɴ": "n", "ᴡ": "w", "ᴋ": "k", "ᴘ": "p", "ʀ": "r",
    "ı": "i", "ȷ": "j", "ℓ": "l", "0": "o", "1": "l",
    "ɗ": "d", "đ": "d", "ɖ": "d", "ɡ": "g", "ʏ": "y", "ɩ": "i", "ꮃ": "w",
    "_": "-", ".": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "﹣": "-", "－": "-",
    "⁃": "-", "⸺": "-", "⸻": "-", "֊": "-", "᠆": "-", "ー": "-", "﹘": "-", "ᅳ": "-", "ㅡ": "-",
})

# Code points that render as nothing (Unicode's Default_Ignorable_Code_Point) but are not all in category C:
# the combining grapheme joiner, variation selectors, Hangul fillers, Khmer inherent vowels, Mongolian
# selectors... `daemon` followed by one of them looks exactly like `daemon`. Plus the blank Braille pattern.
_INVISIBLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2800, 0x2800), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


def _invisible(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _INVISIBLE_RANGES)


class ActorNameError(ValueError):
    """A name that cannot be an actor; the message says why in one line."""


class Actor(Frozen):
    """Who a request runs as. `read_only` actors may only read."""

    name: str = Field(min_length=1)
    read_only: bool = False
    groups: tuple[str, ...] = Field(default=(), description="groups the cluster's authentication reports")
    source: str = Field(default="", description="where the name came from: 'kube SelfSubjectReview', 'slack:U0123ABC', "
                                                "'sim --as (demo)', ...")


def char_name(ch: str) -> str:
    """`U+0435 CYRILLIC SMALL LETTER IE`: a character named for a person reading a refusal."""
    fallback = "control character" if unicodedata.category(ch) == "Cc" else "unnamed character"
    return f"U+{ord(ch):04X} {unicodedata.name(ch, fallback)}"


def normalize_name(raw: str, *, what: str = "actor name") -> str:
    """NFKC, case-folded, with invisible, control and space characters refused. For actor and group names."""
    if not isinstance(raw, str):
        raise ActorNameError(f"{what} must be text")
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    if not name:
        raise ActorNameError(f"{what} is empty")
    if len(name) > MAX_LENGTH:
        raise ActorNameError(f"{what} is longer than {MAX_LENGTH} characters")
    for ch in name:
        category = unicodedata.category(ch)
        if category[0] == "C" or _invisible(ch):
            raise ActorNameError(f"{what} {raw!r} contains an invisible or control character ({char_name(ch)})")
        if category[0] == "Z" or ch.isspace():
            raise ActorNameError(f"{what} {raw!r} contains a space ({char_name(ch)}); use a single word")
    return name


def skeleton(name: str) -> str:
    """What a name looks like: accents dropped, look-alike letters and separators folded."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.translate(_LOOKALIKE)


def machine_actor_like(name: str) -> str | None:
    """The machine actor `name` reads as, or None."""
    shape = skeleton(name)
    return next((m for m in sorted(MACHINE_ACTORS) if shape == skeleton(m)), None)


def same_person(a: str, b: str) -> bool:
    """Could `a` and `b` be read as one name (case, width, accents, look-alike letters)? For self-approval."""
    return a == b or skeleton(unicodedata.normalize("NFKC", a)) == skeleton(unicodedata.normalize("NFKC", b))


def normalize_actor(raw: str) -> str:
    """The canonical form of a person's actor name; `ActorNameError` if it cannot be one.

    Refused: empty or overlong names, control/format/zero-width characters, spaces, and any
    name that normalises or looks like a machine actor (`daemon`, `wake-proxy`, `opsagent`).
    """
    name = normalize_name(raw)
    machine = machine_actor_like(name)
    if machine is not None:
        shown = f"{raw!r} is" if raw == machine else f"{raw!r} reads as {machine!r}, which is"
        raise ActorNameError(f"{shown} opsagent's own machine actor; people cannot act as it")
    return name


def actor_refusal(raw: str) -> str | None:
    """Why `raw` cannot act as a person, or None when it can (as `normalize_actor(raw)`)."""
    try:
        normalize_actor(raw)
    except ActorNameError as exc:
        return str(exc)
    return None


__all__ = ["MACHINE_ACTORS", "Actor", "ActorNameError", "actor_refusal", "char_name", "machine_actor_like", "normalize_actor",
           "normalize_name", "same_person", "skeleton"]
