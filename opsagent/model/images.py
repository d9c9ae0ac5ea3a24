"""Container image references: what a pinned reference is, and which images a workload has run. Pure.

A reference names a registry path and either a tag or a digest
(`registry.internal/inference/embedder:2.3.0`, `repo@sha256:...`). opsagent
never writes an image without one, and never writes the tag `latest`: a tag
that moves is a guess at what will run, and nothing here guesses.

`unpinned` is the one check of a reference, wherever it comes from (a person,
the model, the rollout history): plain ASCII only, no spaces or control
characters, at most MAX_IMAGE_CHARS. A letter from another script that looks
like a Latin one (`ｒeg/app:1`, a Cyrillic `е`) is named in the refusal, so a
person sees why a reference that reads right is refused.

`rollback_target` decides where "roll back" goes: the newest earlier image of
the workload's own history, and never one that is unpinned or that the
history shows was already left by going back (rolling back twice would
otherwise bounce between two failing releases).
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from opsagent.model.actor import char_name, skeleton
from opsagent.model.cluster import Revision, Workload

# registry[:port]/path[:tag][@sha256:digest], lower-case path components as the distribution spec has them.
# re.ASCII: `\w` is [A-Za-z0-9_] only; \Z (not $, which also matches before a final newline).
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
IMAGE_RE = re.compile(rf"(?:{_HOST}/)?{_PATH}(?:/{_PATH})*(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z", re.ASCII)
IMAGE_PATTERN = "^" + IMAGE_RE.pattern[:-2] + "$"   # the same grammar for JSON Schema (ASCII classes spelt out)
MAX_IMAGE_CHARS = 400


def describe_char(ch: str) -> str:
    """`U+0435 CYRILLIC SMALL LETTER IE`, plus the ASCII letter it passes for when it looks like one."""
    looks = lookalike_of(ch)
    return f"{char_name(ch)}, which looks like {looks!r}" if looks else char_name(ch)


def lookalike_of(ch: str) -> str | None:
    """The ASCII character `ch` passes for (width forms, accents, a small table of other scripts' letters), or None."""
    if unicodedata.category(ch) == "Nd" and not ch.isascii():
        return str(unicodedata.digit(ch))   # any script's digit: Python's int() and \d read it as one
    folded = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    folded = skeleton(folded) if len(folded) == 1 and not folded.isascii() else folded
    return folded if len(folded) == 1 and folded.isascii() and folded.isprintable() and folded != ch else None


def foreign_char(text: str) -> tuple[str, str] | None:
    """(what kind, description) of the first character of `text` a name or reference may not hold: a space or
    control character, or one that is not ASCII; None when every character is printable ASCII."""
    for ch in text:
        if ch.isspace() or unicodedata.category(ch)[0] in ("C", "Z"):
            return "a space or control character", describe_char(ch)
        if not ch.isascii():
            return "a character that is not plain ASCII", describe_char(ch)
    return None


def ascii_shown(text: str) -> str:
    """`text` quoted for a message, every character outside ASCII as its escape (\\u0435), so a look-alike shows."""
    return "'" + text.encode("ascii", "backslashreplace").decode().replace("'", "\\'") + "'"


def unpinned(image: str, *, field: str = "image") -> str | None:
    """Why `image` may not be written (not a reference, no tag or digest, the tag `latest`); None when it may."""
    if not isinstance(image, str):
        return f"{field} must be text"
    if len(image) > MAX_IMAGE_CHARS:
        return f"{field}: an image reference is at most {MAX_IMAGE_CHARS} characters"
    odd = foreign_char(image)
    if odd is not None:
        return f"{field} {ascii_shown(image)} has {odd[0]} ({odd[1]}); type the reference in plain ASCII, in one word"
    m = IMAGE_RE.match(image)
    if m is None:
        return f"{field} {ascii_shown(image)} is not an image reference (REGISTRY/REPO:TAG or REPO@sha256:DIGEST)"
    if m.group("tag") is None and m.group("digest") is None:
        return f"{field} {image!r} names no tag or digest; name the exact image (a missing tag means :latest, which moves)"
    if m.group("tag") is not None and m.group("tag").lower() == "latest" and m.group("digest") is None:
        return f"{field} {image!r} uses the tag latest, which moves; name the exact tag or digest"
    return None


def _earlier(history: list[Revision], image: str, before: Revision) -> bool:
    """Did `image` run before revision `before` started: an older revision number, or a ReplicaSet made earlier
    (Kubernetes keeps a ReplicaSet's creation time when a rollback makes it the newest revision again)."""
    return any(r.image == image and (r.revision < before.revision or (
        r.created_at is not None and before.created_at is not None and r.created_at < before.created_at))
        for r in history)


def left_by_rollback(workload: Workload) -> dict[str, int]:
    """Images the history shows were left by going back: image -> the revision that went back from it.

    Revision N runs image B and revision N+1 an image A that ran before B: someone (or opsagent) went back
    from B, so B failed once already. Going back to B again would bounce between two failing releases.
    """
    ordered = sorted(workload.history, key=lambda r: r.revision)
    left: dict[str, int] = {}
    for prev, nxt in zip(ordered, ordered[1:]):
        if nxt.image != prev.image and nxt.image and _earlier(ordered, nxt.image, prev):
            left[prev.image] = nxt.revision
    return left


def previous_images(workload: Workload) -> list[str]:
    """Images of the workload's earlier revisions (its rollout history, not the current revision), newest first.

    These are images the workload was rolled out with before the current
    revision: the current image counts only when an earlier revision had it
    too. The history records the first container's image, so only it is known.
    Images a later revision went back from (`left_by_rollback`) are left out:
    they ran, and failed.
    """
    failed = left_by_rollback(workload)
    seen: list[str] = []
    for rev in sorted(workload.history, key=lambda r: r.revision, reverse=True):
        if rev.revision != workload.revision and rev.image and rev.image not in seen and rev.image not in failed:
            seen.append(rev.image)
    return seen


class Rollback(NamedTuple):
    """Where "roll back" goes: `image`, or None and `why` not."""

    image: str | None
    why: str


def rollback_target(workload: Workload) -> Rollback:
    """The image the workload ran before the current one, or why there is none to go back to.

    The newest image of the history other than the current one (restarts of a broken release make new
    revisions of the same image; they are skipped). Refused rather than passed over, so a rollback never
    reaches further back than a person would expect: an image without a pinned tag or digest (nothing
    guesses a tag), and an image a later revision already went back from (rolling back again would bounce
    between two failing releases).
    """
    failed = left_by_rollback(workload)
    candidates = [r for r in sorted(workload.history, key=lambda r: r.revision, reverse=True)
                  if r.revision != workload.revision and r.image and r.image != workload.image]
    if not candidates:
        return Rollback(None, "the rollout history has no earlier image to go back to")
    rev = candidates[0]
    if rev.image in failed:
        return Rollback(None, f"the image before, {rev.image!r} (revision {rev.revision}), was already rolled back "
                              f"from at revision {failed[rev.image]}: going back to it again would bounce between two "
                              "failing releases; a person names the image")
    why = unpinned(rev.image, field="the image before")
    if why is not None:
        return Rollback(None, f"{why} (revision {rev.revision}); a person names the image, nothing guesses a tag")
    return Rollback(rev.image, f"{rev.image} ran before (revision {rev.revision})")


def rollback_bounce(workload: Workload, to_revision: int | None) -> str | None:
    """Why going back to revision `to_revision` (None: the previous one, as `kubectl rollout undo` picks it) would
    bounce: its image is one a later revision already went back from. None when it would not, or is not known."""
    ordered = sorted(workload.history, key=lambda r: r.revision)
    older = [r for r in ordered if r.revision != workload.revision]
    if to_revision is None:
        target = older[-1] if older else None
    else:
        target = next((r for r in older if r.revision == to_revision), None)
    failed = left_by_rollback(workload)
    if target is None or target.image not in failed or target.image == workload.image:
        return None
    return (f"revision {target.revision} runs {target.image!r}, which was already rolled back from at revision "
            f"{failed[target.image]}: going back to it again would bounce between two failing releases; a person "
            "names the revision or image to run")


def rollback_image(workload: Workload) -> str | None:
    """`rollback_target(workload).image`: the image to go back to, None when there is none it may go back to."""
    return rollback_target(workload).image


__all__ = ["IMAGE_PATTERN", "IMAGE_RE", "MAX_IMAGE_CHARS", "Rollback", "ascii_shown", "describe_char", "foreign_char",
           "left_by_rollback", "rollback_bounce", "lookalike_of", "previous_images", "rollback_image", "rollback_target", "unpinned"]
