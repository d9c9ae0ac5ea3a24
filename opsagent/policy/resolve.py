"""Which intent applies to a workload, what its annotations may change of it, and where each bound came from.

Authority comes from the policy files (and authenticated people); text read
from the cluster may narrow what they permit, never widen it. For one workload:

1. The first policy intent whose selector matches is the base. The workload's
   `opsagent.dev/*` annotations may only narrow it: `protected`, a lower
   `max-replicas`, a higher `min-replicas` (up to the max), a longer
   `idle-after`, a lower `idle-gpu-below`, fewer `warm-replicas`. Anything else
   they say is reported, not obeyed.
2. With no policy intent, the annotations are the intent only in a namespace a
   policy file opts in (`annotation_intents:`, see optin.py), clamped to that
   entry's ceilings (replicas, GPUs, idle window floor); a clamp is reported.
3. Anywhere else only `protected: "true"` is obeyed (it takes permissions away);
   the rest is reported.

A replica ceiling nobody declared is the built-in one: the replicas the
workload runs now, so going above it needs a person. `Resolved.sources`
says where each bound came from; `Resolved.ignored` what was reported and
not obeyed. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from opsagent.clock import format_duration
from opsagent.model import Workload
from opsagent.policy.annotations import PREFIX, AnnotationError, claims_protected, intent_annotations, lookalike_keys, shown
from opsagent.policy.facts import intent_as_dict
from opsagent.policy.intents import Intent, Selector, intents_from_annotations
from opsagent.policy.optin import OptIn, opt_in_for

BUILTIN_CEILING = "built-in ceiling: the replicas it runs now (no max declared; more needs a person)"
_CACHE_MAX = 4096


@dataclass(frozen=True)
class Resolved:
    """The intent that applies to one workload as it is now, and the account of how it was reached."""

    intent: Intent | None
    replica_max: int | None = None  # the effective replica ceiling; None when the intent has no replica bounds
    sources: tuple[tuple[str, str], ...] = ()  # (field = value, where it came from)
    ignored: tuple[str, ...] = ()  # annotations read and not obeyed, or clamped

    @cached_property
    def as_dict(self) -> dict[str, Any]:
        """The intent as CEL reads it: durations in seconds, `replicas.max` always the effective ceiling."""
        if self.intent is None:
            return {}
        data = intent_as_dict(self.intent)
        if "replicas" in data:
            data["replicas"]["max"] = self.replica_max
        return data


@dataclass(frozen=True)
class IntentBook:
    """The policy's intents, the annotation opt-ins, and where each intent is written. Detectors and the gate share one."""

    intents: tuple[Intent, ...] = ()
    opt_ins: tuple[OptIn, ...] = ()
    places: tuple[Mapping[str, str], ...] = ()  # per intent: field path ("" for the intent) -> "file:line"
    _cache: dict[Any, Resolved] = field(default_factory=dict, compare=False, repr=False)

    def intent_for(self, workload: Workload) -> Intent | None:
        return self.resolve(workload).intent

    def resolve(self, workload: Workload) -> Resolved:
        base_index = next((i for i, intent in enumerate(self.intents) if intent.selector.matches(workload)), None)
        if not workload.annotations:
            if base_index is None:
                return _NONE
            key: Any = (base_index, workload.replicas)
        else:
            key = (base_index, workload.ref, workload.replicas, workload.gpus_per_replica,
                   tuple(sorted(workload.annotations.items())))
        found = self._cache.get(key)
        if found is None:
            found = _resolve(self, base_index, workload)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = found
        return found


    def for_one_pass(self) -> PassBook:
        """This book for one pass over one snapshot: each workload resolved once, however many detectors ask."""
        return PassBook(self.intents, self.opt_ins, self.places, self._cache)


@dataclass(frozen=True)
class PassBook(IntentBook):
    """An IntentBook that remembers each workload object it resolved (workloads are immutable).

    Keyed by identity, so a lookup costs no hashing of the workload; the
    workload is kept with its answer so the identity cannot be reused. Meant
    to live for one pass (a detection run), then be dropped.
    """

    _seen: dict[int, tuple[Workload, Resolved]] = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, workload: Workload) -> Resolved:
        hit = self._seen.get(id(workload))
        if hit is not None and hit[0] is workload:
            return hit[1]
        found = IntentBook.resolve(self, workload)
        self._seen[id(workload)] = (workload, found)
        return found


_NONE = Resolved(intent=None)


def as_book(intents: "Sequence[Intent] | IntentBook") -> IntentBook:
    """A book from a plain list of intents (no opt-ins: annotations only narrow), or the book itself."""
    return intents if isinstance(intents, IntentBook) else IntentBook(tuple(intents))


def intent_for(intents: "Sequence[Intent] | IntentBook", workload: Workload) -> Intent | None:
    """The intent that applies to `workload` (see the module docstring). Never raises for bad annotations."""
    return as_book(intents).resolve(workload).intent


def _resolve(book: IntentBook, base_index: int | None, workload: Workload) -> Resolved:
    ignored = [f"{workload.key}: annotation {shown(key)} only looks like an {PREFIX} intent key; not obeyed"
               for key in lookalike_keys(workload)]
    own: Intent | None = None
    if intent_annotations(workload):
        try:
            own = intents_from_annotations(workload)
        except AnnotationError as exc:
            ignored.append(f"{exc}; its opsagent.dev intent annotations are ignored until this is fixed")
            if claims_protected(workload):  # a typo elsewhere must not lift a protection the workload asks for
                own = Intent(name=f"annotations:{workload.key}",
                             selector=Selector(namespace=workload.ref.namespace, names=(workload.ref.name,)), protected=True)
    if base_index is not None:
        intent = book.intents[base_index]
        places = book.places[base_index] if base_index < len(book.places) else {}
        return _narrowed(intent, places, own, workload, ignored)
    opt_in = opt_in_for(book.opt_ins, workload.ref.namespace) if own is not None else None
    if own is not None and opt_in is not None:
        return _opted_in(own, opt_in, workload, ignored)
    if own is None:
        return Resolved(intent=None, ignored=tuple(ignored))
    why = f"no policy file opts namespace {workload.ref.namespace} in (annotation_intents); reported, not obeyed"
    told = [k for k, _ in intent_annotations(workload) if k != "protected"]
    ignored.extend(f"{workload.key}: annotation {_ann(workload, k)}: {why}" for k in told)
    if not own.protected:
        return Resolved(intent=None, ignored=tuple(ignored))
    intent = Intent(name=own.name, selector=own.selector, protected=True)
    return Resolved(intent=intent, sources=(("protected = true", f"annotation {_ann(workload, 'protected')} (narrows only)"),),
                    ignored=tuple(ignored))


_ORDER = ("protected", "replicas.min", "replicas.max", "wake.warm_replicas", "idle.after")


def _sorted(sources: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(sources, key=lambda s: next((i for i, f in enumerate(_ORDER) if s[0].startswith(f)), len(_ORDER))))


def _span(delta: timedelta) -> str:
    return format_duration(delta)


def _ann(workload: Workload, key: str) -> str:
    return f"{PREFIX}{key}={shown(workload.annotations.get(PREFIX + key, ''))}"


def _declared(workload: Workload, key: str) -> bool:
    return PREFIX + key in workload.annotations


def _narrowed(base: Intent, places: Mapping[str, str], own: Intent | None, workload: Workload, ignored: list[str]) -> Resolved:
    """The policy intent `base`, narrowed by what the annotations (`own`) say, never widened."""
    where = places.get("", "") or "policy"
    def at(path: str) -> str:
        return f"{places.get(path) or where} (intent {base.name})"
    sources: list[tuple[str, str]] = []
    update: dict[str, Any] = {}
    policy_wins = f"the policy intent {base.name} ({where}) decides it; annotations may only narrow it"

    def refuse(key: str, what: str = "") -> None:
        ignored.append(f"{workload.key}: annotation {_ann(workload, key)}: {what or policy_wins}; not obeyed")

    if own is not None and own.protected and not base.protected:
        update["protected"] = True
        sources.append(("protected = true", f"annotation {_ann(workload, 'protected')} (narrows {base.name})"))
    elif base.protected:
        sources.append(("protected = true", at("protected")))

    bounds = base.replicas
    if bounds is not None:
        new_min, new_max = bounds.min, bounds.max
        min_from, max_from = at("replicas.min"), at("replicas.max")
        wanted_max = own.replicas.max if own is not None and own.replicas is not None else None
        if wanted_max is not None and _declared(workload, "max-replicas"):
            wanted = wanted_max
            ceiling = new_max if new_max is not None else workload.replicas  # the built-in ceiling when none is declared
            if wanted < bounds.min:
                refuse("max-replicas", f"below the policy's min {bounds.min} ({at('replicas.min')})")
            elif wanted < ceiling:
                new_max, max_from = wanted, f"annotation {_ann(workload, 'max-replicas')} (narrows {base.name})"
            elif wanted > ceiling:
                refuse("max-replicas", policy_wins if new_max is not None else
                       f"above the built-in ceiling of {ceiling} (the replicas it runs now); {policy_wins}")
        if own is not None and own.replicas is not None and _declared(workload, "min-replicas"):
            wanted = own.replicas.min
            if wanted > bounds.min:
                ceiling = new_max if new_max is not None else max(workload.replicas, bounds.min)
                if wanted > ceiling:
                    refuse("min-replicas", f"above the replica ceiling {ceiling}")
                else:
                    new_min, min_from = wanted, f"annotation {_ann(workload, 'min-replicas')} (narrows {base.name})"
            elif wanted < bounds.min:
                refuse("min-replicas")
        if (new_min, new_max) != (bounds.min, bounds.max):
            update["replicas"] = bounds.model_copy(update={"min": new_min, "max": new_max})
        sources.append((f"replicas.min = {new_min}", min_from))
    elif own is not None and own.replicas is not None:
        for key in ("min-replicas", "max-replicas"):
            if _declared(workload, key):
                refuse(key, f"the policy intent {base.name} ({where}) declares no replica bounds, and an annotation cannot add them")

    idle = base.idle
    if idle is not None and own is not None and own.idle is not None:
        changes: dict[str, Any] = {}
        if own.idle.after > idle.after:
            changes["after"] = own.idle.after
            sources.append((f"idle.after = {_span(own.idle.after)}", f"annotation {_ann(workload, 'idle-after')} (narrows {base.name})"))
        elif own.idle.after < idle.after:
            refuse("idle-after")
        mine, theirs = own.idle.gpu_util_below, idle.gpu_util_below
        if mine is not None and theirs is not None and mine < theirs:
            changes["gpu_util_below"] = mine
        elif mine is not None and mine != theirs:
            refuse("idle-gpu-below")
        if changes:
            update["idle"] = idle.model_copy(update=changes)
    elif own is not None and own.idle is not None:
        refuse("idle-after", f"the policy intent {base.name} ({where}) declares no idle rule, and an annotation cannot add one")
    if idle is not None and "idle" not in update:
        sources.append((f"idle.after = {_span(idle.after)}", at("idle")))

    wake = base.wake
    if wake is not None and own is not None and own.wake is not None:
        if own.wake.warm_replicas < wake.warm_replicas:
            update["wake"] = wake.model_copy(update={"warm_replicas": own.wake.warm_replicas})
            sources.append((f"wake.warm_replicas = {own.wake.warm_replicas}",
                            f"annotation {_ann(workload, 'warm-replicas')} (narrows {base.name})"))
        elif own.wake.warm_replicas > wake.warm_replicas:
            refuse("warm-replicas")
    elif own is not None and own.wake is not None:
        refuse("warm-replicas", f"the policy intent {base.name} ({where}) declares no wake rule, and an annotation cannot add one")
    if wake is not None and "wake" not in update:
        sources.append((f"wake.warm_replicas = {wake.warm_replicas}", at("wake")))

    if own is not None and own.placement is not None and own.placement != base.placement:
        for key in ("gpu-min-link-width", "gpu-coherent"):
            if _declared(workload, key):
                refuse(key)

    if base.max_wake is not None:   # only a policy file sets it: annotations have no key for it
        sources.append((f"max_wake = {_span(base.max_wake)}", at("max_wake")))

    intent = base.model_copy(update=update) if update else base
    replica_max, max_source = _ceiling(intent, workload, None, max_from if bounds is not None else "")
    if replica_max is not None:
        sources.append((f"replicas.max = {replica_max}", max_source))
    return Resolved(intent=intent, replica_max=replica_max, sources=_sorted(sources), ignored=tuple(ignored))


def _opted_in(own: Intent, opt_in: OptIn, workload: Workload, ignored: list[str]) -> Resolved:
    """The annotation intent `own`, obeyed under `opt_in` and clamped to its ceilings."""
    ceiling, ceiling_why = opt_in.replica_ceiling(workload.gpus_per_replica)
    under = f"under annotation_intents at {opt_in.place}"
    sources: list[tuple[str, str]] = []
    update: dict[str, Any] = {}

    def clamp(key: str, to: Any, why: str) -> None:
        ignored.append(f"{workload.key}: annotation {_ann(workload, key)} is above {why} ({opt_in.place}); clamped to {to}")

    if own.protected:
        sources.append(("protected = true", f"annotation {_ann(workload, 'protected')} {under}"))
    max_from = ""
    if own.replicas is not None:
        new_min, new_max = own.replicas.min, own.replicas.max
        if new_max is not None and new_max > ceiling:
            clamp("max-replicas", ceiling, ceiling_why)
            new_max = ceiling
        if new_min > ceiling:
            clamp("min-replicas", ceiling, ceiling_why)
            new_min = ceiling
        if new_max is not None:
            max_from = f"annotation {_ann(workload, 'max-replicas')} {under} (ceiling {ceiling_why})"
        sources.append((f"replicas.min = {new_min}", f"annotation {_ann(workload, 'min-replicas')} {under}"
                        if _declared(workload, "min-replicas") else "default 0"))
        update["replicas"] = own.replicas.model_copy(update={"min": new_min, "max": new_max})
    if own.wake is not None:
        limit, why = ceiling, ceiling_why
        declared_max = update["replicas"].max if "replicas" in update else None
        if declared_max is not None and declared_max < limit:
            limit, why = declared_max, "its own max-replicas"
        if own.wake.warm_replicas > limit:
            if limit < 1:
                ignored.append(f"{workload.key}: annotation {_ann(workload, 'warm-replicas')}: the ceiling is {limit} ({ceiling_why}, {opt_in.place}); "
                               "no wake rule is obeyed")
                update["wake"] = None
            else:
                clamp("warm-replicas", limit, why)
                update["wake"] = own.wake.model_copy(update={"warm_replicas": limit})
        wake = update.get("wake", own.wake)
        if wake is not None:
            sources.append((f"wake.warm_replicas = {wake.warm_replicas}", f"annotation {_ann(workload, 'warm-replicas')} {under}"
                            if _declared(workload, "warm-replicas") else f"default, {under}"))
    if own.idle is not None:
        floor = opt_in.spec.min_idle_after
        after = own.idle.after
        if after < floor:
            ignored.append(f"{workload.key}: annotation {_ann(workload, 'idle-after')} is below min_idle_after {_span(floor)} ({opt_in.place}); raised to {_span(floor)}")
            update["idle"] = own.idle.model_copy(update={"after": floor})
            after = floor
        sources.append((f"idle.after = {_span(after)}", f"annotation {_ann(workload, 'idle-after')} {under} (floor {_span(floor)})"))
    intent = own.model_copy(update=update) if update else own
    replica_max, max_source = _ceiling(intent, workload, (ceiling, ceiling_why, opt_in.place), max_from)
    if replica_max is not None:
        sources.append((f"replicas.max = {replica_max}", max_source))
    return Resolved(intent=intent, replica_max=replica_max, sources=_sorted(sources), ignored=tuple(ignored))


def _ceiling(intent: Intent, workload: Workload, cap: tuple[int, str, str] | None, declared_from: str) -> tuple[int | None, str]:
    """The effective replica ceiling and where it came from: the declared max, else the replicas running now."""
    bounds = intent.replicas
    if bounds is None:
        return None, ""
    if bounds.max is not None:
        return bounds.max, declared_from
    if cap is not None and cap[0] < workload.replicas:
        return cap[0], f"annotation_intents ceiling {cap[1]} at {cap[2]} (no max declared)"
    return workload.replicas, BUILTIN_CEILING
