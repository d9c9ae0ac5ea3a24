"""Intents declared on the workload itself, through `opsagent.dev/*` annotations.

What it is for: letting a team state a workload's desired state next to its
manifest instead of in a policy file:

    opsagent.dev/idle-after: 30m          -> idle.after
    opsagent.dev/idle-gpu-below: "5"      -> idle.gpu_util_below (percent; needs idle-after)
    opsagent.dev/min-replicas: "0"        -> replicas.min
    opsagent.dev/max-replicas: "4"        -> replicas.max
    opsagent.dev/warm-replicas: "1"       -> wake.warm_replicas
    opsagent.dev/gpu-min-link-width: "16" -> placement.min_link_width
    opsagent.dev/gpu-coherent: "true"     -> placement.coherent
    opsagent.dev/protected: "true"        -> protected

This module reads the values into the fields of an intent scoped to exactly
that workload; `opsagent.policy.intents` validates them into an `Intent`.
Other `opsagent.dev/*` keys are not intents and are left alone.

What it must not do: widen what the policy allows. Only exact keys count
(`lookalike_keys` names the near misses, such as `opsagent.dev/Max-Replicas`
or a Cyrillic letter, so they can be reported). Whether an annotation intent
is obeyed at all, and inside which ceilings, is `opsagent.policy.resolve`'s
decision. Pure: no I/O. Bad values raise `AnnotationError` naming the
workload, key and value.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from opsagent.model import Workload

PREFIX = "opsagent.dev/"
KEYS = (
    "idle-after", "idle-gpu-below", "min-replicas", "max-replicas", "warm-replicas",
    "gpu-min-link-width", "gpu-coherent", "protected",
)


# Intent field path -> the annotation that sets it, to name the annotation when a value is refused.
FIELD_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("idle", "after"): ("idle-after",),
    ("idle", "gpu_util_below"): ("idle-gpu-below",),
    ("idle",): ("idle-after", "idle-gpu-below"),
    ("replicas", "min"): ("min-replicas",),
    ("replicas", "max"): ("max-replicas",),
    ("replicas",): ("min-replicas", "max-replicas"),
    ("wake", "warm_replicas"): ("warm-replicas",),
    ("placement", "min_link_width"): ("gpu-min-link-width",),
    ("placement", "coherent"): ("gpu-coherent",),
    ("protected",): ("protected",),
}


class AnnotationError(ValueError):
    """An `opsagent.dev/*` annotation has a value that cannot be read; the message names workload, key and value."""


def intent_annotations(workload: Workload) -> tuple[tuple[str, str], ...]:
    """The workload's intent annotations as sorted (key without prefix, value) pairs; () when it has none."""
    found = []
    for key, value in workload.annotations.items():
        if key.startswith(PREFIX) and key[len(PREFIX):] in KEYS:
            found.append((key[len(PREFIX):], value))
    return tuple(sorted(found))


# Letters of other scripts that look like Latin ones in most fonts; enough to name a look-alike key in a report.
_CONFUSABLE = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ѕ": "s", "ԁ": "d", "ӏ": "l",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "ε": "e",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "／": "/", "⁄": "/", "∕": "/", "．": ".",
})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_INTENT_KEYS = frozenset(PREFIX + key for key in KEYS)


def lookalike_keys(workload: Workload) -> tuple[str, ...]:
    """Annotation keys that look like an intent key but are not exactly one (case, Unicode, invisible characters).

    They are never read as intents; callers report them so a person sees why.
    """
    found = []
    for key in workload.annotations:
        if key in _INTENT_KEYS:
            continue
        folded = unicodedata.normalize("NFKC", key).translate(_INVISIBLE).translate(_CONFUSABLE).casefold().strip()
        if folded in _INTENT_KEYS:
            found.append(key)
    return tuple(sorted(found))


def shown(value: str, limit: int = 60) -> str:
    """An annotation value for a message: quoted, and cut short (it is cluster text of any length)."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _bad(workload: Workload, key: str, value: str, why: str) -> AnnotationError:
    return AnnotationError(f"{workload.key}: annotation {PREFIX}{key}={shown(value)} {why}")


def _int(workload: Workload, key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise _bad(workload, key, value, "is not a whole number") from None


def _float(workload: Workload, key: str, value: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise _bad(workload, key, value, "is not a number") from None


def _bool(workload: Workload, key: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise _bad(workload, key, value, "must be true or false")


def claims_protected(workload: Workload) -> bool:
    """Does the exact `opsagent.dev/protected` annotation read true? It only takes permissions away, so it
    counts even when another annotation of the workload cannot be read."""
    return workload.annotations.get(PREFIX + "protected", "").strip().lower() in ("true", "yes", "1")


def annotation_fields(workload: Workload) -> dict[str, Any] | None:
    """The intent fields the workload's annotations declare (not yet validated), or None when it has none."""
    found = dict(intent_annotations(workload))
    if not found:
        return None
    data: dict[str, Any] = {
        "name": f"annotations:{workload.key}",
        "selector": {"namespace": workload.ref.namespace, "names": [workload.ref.name]},
    }
    if "idle-after" in found:
        data["idle"] = {"after": found["idle-after"].strip()}
        if "idle-gpu-below" in found:
            data["idle"]["gpu_util_below"] = _float(workload, "idle-gpu-below", found["idle-gpu-below"])
    elif "idle-gpu-below" in found:
        raise _bad(workload, "idle-gpu-below", found["idle-gpu-below"],
                   f"needs {PREFIX}idle-after too (how long utilisation must stay low)")
    if "min-replicas" in found or "max-replicas" in found:
        data["replicas"] = {}
        if "min-replicas" in found:
            data["replicas"]["min"] = _int(workload, "min-replicas", found["min-replicas"])
        if "max-replicas" in found:
            data["replicas"]["max"] = _int(workload, "max-replicas", found["max-replicas"])
    if "warm-replicas" in found:
        data["wake"] = {"warm_replicas": _int(workload, "warm-replicas", found["warm-replicas"])}
    if "gpu-min-link-width" in found or "gpu-coherent" in found:
        data["placement"] = {}
        if "gpu-min-link-width" in found:
            data["placement"]["min_link_width"] = _int(workload, "gpu-min-link-width", found["gpu-min-link-width"])
        if "gpu-coherent" in found:
            data["placement"]["coherent"] = _bool(workload, "gpu-coherent", found["gpu-coherent"])
    if "protected" in found:
        data["protected"] = _bool(workload, "protected", found["protected"])
    return data


def refused(workload: Workload, loc: tuple[Any, ...], message: str) -> AnnotationError:
    """An AnnotationError for an intent field the validator refused, naming the annotation(s) that set it."""
    path = tuple(str(p) for p in loc)
    keys: tuple[str, ...] = ()
    while path and not keys:
        keys = FIELD_KEYS.get(path, ())
        path = path[:-1]
    present = [k for k in keys if PREFIX + k in workload.annotations] or list(keys)
    named = ", ".join(f"{PREFIX}{k}={shown(workload.annotations.get(PREFIX + k, ''))}" for k in present)
    return AnnotationError(f"{workload.key}: annotation{'s' if len(present) > 1 else ''} {named}: {message}")
