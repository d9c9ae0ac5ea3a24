"""A watched view of the cluster: list each kind once, then follow its changes.

What it is for: `Informer` keeps one kind's objects (raw JSON, keyed
'namespace/name') up to date. It lists once, then watches from the list's
resourceVersion with bookmarks on a background thread: ADDED and MODIFIED
replace an object, DELETED drops it, a BOOKMARK only moves the resourceVersion.
A 410 Gone (the version is too old) lists again; a dropped connection or a
server error backs off and resumes from the last version seen. `Cache` holds one
informer per kind, made the first time a snapshot asks for that kind, so adding
a kind to the snapshot's reads adds it here too. A snapshot copies the
references under a lock: no list call after start-up.

Health: each informer knows when it last heard from the server (a list, a watch
opened, an event, a bookmark). `Cache.health` is not ok when one has been silent
longer than `stale_after` seconds.

Lists are read in pages (`list_all`: `limit=PAGE_SIZE` and the continue token), so a relist of
a large kind never holds its whole JSON at once, and each page and each watch event is cut
down to the kind's shape as it arrives (shapes.py): the cache never holds whole objects.

What it must not do: decode objects into the view (read.py does, from these lists) or write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from opsagent.clock import Clock
from opsagent.cluster.kube.client import Chokepoint
from opsagent.cluster.kube.waiting import stream_lines
from opsagent.cluster.port import ClusterError, Forbidden, NotFound
from opsagent.cluster.kube.shapes import Decode, Table, decoder_for

log = logging.getLogger(__name__)

WATCH_SECONDS = 60      # each watch asks the server to end after this long; it is opened again at once
STALE_AFTER = 180.0     # a kind silent longer than this makes the cache unhealthy
PAGE_SIZE = 500         # objects per list call; the continue token fetches the next page
EVENT_TABLE = 1024      # values the watch events of one kind share (strings, records) before starting afresh


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


def key_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def list_all(chokepoint: Chokepoint, what: str, list_fn: Callable[..., Any], decode: Decode | None = None, *,
             limit: int | None = PAGE_SIZE) -> tuple[list[dict[str, Any]], str]:
    """(objects, the list's resourceVersion) of one kind, `limit` objects per call, each page shaped as it
    arrives (`decode`, the kind's decoder by default). A continue token that has expired (410) lists
    again in one call, as client-go's pager does."""
    decode = decode or decoder_for(what)
    table = Table()   # one list's equal strings and records are kept once, across its pages

    def parse(data: bytes) -> Any:
        return decode(data, table)

    items: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"limit": limit} if limit else {}
        if token:
            kwargs["_continue"] = token
        try:
            body = chokepoint.read_json(f"list {what}", list_fn, decode=parse, **kwargs)
        except ClusterError as exc:
            if token and exc.status == 410 and limit:
                return list_all(chokepoint, what, list_fn, decode, limit=None)
            raise
        items.extend(body.get("items") or ())
        meta = body.get("metadata") or {}
        token = meta.get("continue")
        if not token or not limit:
            return items, str(meta.get("resourceVersion") or "")


class Informer:
    def __init__(self, chokepoint: Chokepoint, what: str, list_fn: Callable[..., Any], *, clock: Clock,
                 watch_seconds: int = WATCH_SECONDS, max_backoff: float = 5.0,
                 decode: Decode | None = None) -> None:
        self.chokepoint = chokepoint
        self.what = what
        self.list_fn = list_fn
        self.clock = clock
        self.watch_seconds = watch_seconds
        self.max_backoff = max_backoff
        self.decode = decode or decoder_for(what)   # parses each list page and each watch line, shaped
        self.changed = threading.Condition()
        self._objects: dict[str, dict[str, Any]] = {}
        self.version = ""
        self.heard = clock.monotonic()
        self.lists = 0       # list calls made (the first, then one per 410)
        self.generation = 0  # bumped on every change applied, for waiters
        self._response: Any = None
        self._shared = Table()   # what recent watch events share: equal values of objects changed one by one

    # --- the view ---------------------------------------------------------------------

    def items(self) -> list[dict[str, Any]]:
        with self.changed:
            return list(self._objects.values())

    def get(self, key: str) -> dict[str, Any] | None:
        """One object by 'namespace/name' (a point lookup), or None."""
        with self.changed:
            return self._objects.get(key)

    def select(self, keep: Callable[[dict[str, Any]], bool] | None = None, *,
               prefixes: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The objects `keep` accepts (all when None), among those whose 'namespace/name' key starts with one of
        `prefixes` when given ('ns/' for a namespace), without copying the others out."""
        with self.changed:
            if prefixes is None:
                return [o for o in self._objects.values() if keep is None or keep(o)]
            return [o for k, o in self._objects.items() if k.startswith(prefixes) and (keep is None or keep(o))]

    def silent_for(self) -> float:
        return max(0.0, self.clock.monotonic() - self.heard)

    # --- keeping it current --------------------------------------------------------------

    def relist(self) -> None:
        items, version = list_all(self.chokepoint, self.what, self.list_fn, self.decode)
        objects = {key_of(o): o for o in items}
        del items
        with self.changed:
            self._objects = objects
            self.version = version
            self.lists += 1
            self._heard_locked()

    def apply(self, event: dict[str, Any]) -> None:
        """One watch event. Raises Expired on 410 Gone, ClusterError on another ERROR."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired(obj.get("message", "410 Gone"))
            raise ClusterError(f"watch {self.what}: {obj.get('message', 'error')}", status=obj.get("code"))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        with self.changed:
            if kind == "DELETED":
                self._objects.pop(key_of(obj), None)
            elif kind in ("ADDED", "MODIFIED"):
                self._objects[key_of(obj)] = obj
            if version:
                self.version = version
            self._heard_locked()

    def receive(self, line: bytes) -> None:
        """One watch line: decoded to the kind's shape, sharing equal values with recent events, and applied."""
        if len(self._shared.values) > EVENT_TABLE:   # bounded: what it keeps alive past its objects stays small
            self._shared = Table()
        self.apply(self.decode(line, self._shared))

    def _heard_locked(self) -> None:
        self.heard = self.clock.monotonic()
        self.generation += 1
        self.changed.notify_all()

    def watch_once(self, stop: threading.Event) -> None:
        """One watch from the current version until the server ends it, or `stop` is set."""
        response = self.chokepoint.call(
            f"watch {self.what}", self.list_fn, watch=True, resource_version=self.version or None,
            allow_watch_bookmarks=True, timeout_seconds=self.watch_seconds, _preload_content=False,
            _request_timeout=(10.0, self.watch_seconds + 30))
        self._response = response
        ended = False   # the server ended the watch and the stream was read to its end
        try:
            if stop.is_set():   # stopped while this watch was being opened: interrupt() found nothing to cut
                return
            with self.changed:
                self._heard_locked()
            for line in stream_lines(response):
                if stop.is_set():
                    return
                self.receive(line)
            ended = not stop.is_set()   # a stream cut by interrupt() may end quietly too
        finally:
            self._response = None
            if not ended:   # cut, stopped or failed: close the connection so the server ends this watch now
                response.close()
            response.release_conn()

    def interrupt(self) -> None:
        """Cut the open watch (if any) so `run` sees its stop event now, not when the server ends the watch."""
        response = self._response
        if response is not None:
            try:
                response.shutdown() if hasattr(response, "shutdown") else response.close()
            except Exception:  # noqa: BLE001 - already closed
                pass

    def run(self, stop: threading.Event) -> None:
        """Watch until `stop` is set: relist on 410, back off and resume on errors."""
        backoff = 0.05
        while not stop.is_set():
            try:
                self.watch_once(stop)
                backoff = 0.05
            except Expired:
                try:
                    self.relist()
                    backoff = 0.05
                except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failure
                    log.warning("relist %s failed: %s", self.what, exc)
                    stop.wait(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
            except Exception as exc:  # noqa: BLE001 - a dropped connection or a server error: resume
                log.debug("watch %s ended: %s", self.what, exc)
                stop.wait(backoff)
                backoff = min(self.max_backoff, backoff * 2)


class Cache:
    """One informer per kind (and namespace when restricted), each on its own daemon thread."""

    def __init__(self, chokepoint: Chokepoint, *, clock: Clock, stale_after: float = STALE_AFTER,
                 watch_seconds: int = WATCH_SECONDS) -> None:
        self.chokepoint = chokepoint
        self.clock = clock
        self.stale_after = stale_after
        self.watch_seconds = watch_seconds
        self.informers: dict[str, Informer] = {}
        self._failed: dict[str, Exception] = {}   # kinds whose first list was refused (404/403): asked once
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def items(self, what: str, list_fn: Callable[..., Any],
              decode: Decode | None = None) -> list[dict[str, Any]]:
        """The kind's objects; its first call lists it (errors raised as a list would) and starts its watch."""
        return self.informer(what, list_fn, decode).items()

    def informer(self, what: str, list_fn: Callable[..., Any], decode: Decode | None = None) -> Informer:
        """The kind's informer (for point lookups); made, listed and started on first use, as `items` does."""
        with self._lock:
            if what in self._failed:
                raise self._failed[what]
            informer = self.informers.get(what)
            if informer is None:
                informer = Informer(self.chokepoint, what, list_fn, clock=self.clock, watch_seconds=self.watch_seconds,
                                    decode=decode)
                try:
                    informer.relist()
                except Exception as exc:
                    if isinstance(exc, (Forbidden, NotFound)):
                        self._failed[what] = exc
                    raise
                self.informers[what] = informer
                thread = threading.Thread(target=informer.run, args=(self._stop,), name=f"watch {what}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return informer

    def health(self) -> tuple[bool, str]:
        """(ok, detail): not ok when a watched kind has been silent longer than `stale_after` seconds."""
        with self._lock:
            informers = list(self.informers.values())
        if not informers:
            return True, "no kinds watched yet"
        stale = sorted(f"{i.what} silent {i.silent_for():.0f}s" for i in informers if i.silent_for() > self.stale_after)
        if stale:
            return False, f"watch stale (over {self.stale_after:.0f}s): " + ", ".join(stale)
        return True, f"{len(informers)} kinds watched, the oldest heard {max(i.silent_for() for i in informers):.0f}s ago"

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        for informer in list(self.informers.values()):
            informer.interrupt()
        for thread in self._threads:
            thread.join(timeout)


__all__ = ["Cache", "Expired", "Informer", "PAGE_SIZE", "STALE_AFTER", "key_of", "list_all"]
