"""The double's object store: what etcd plus the generic registry of the API server do.

Every write gets a cluster-wide monotonic ``resourceVersion``; creates get ``uid`` and
``creationTimestamp``; ``generation`` moves only when something outside ``metadata`` and
``status`` changes; a write that changes nothing is not a write (no new version, no
event); updates carrying a stale ``metadata.resourceVersion`` are refused with 409; status
and spec are written through separate endpoints. Watchers read the event log kept here.
Thread-safe: the HTTP server, the controller simulation and tests use it concurrently.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from activities.kubernetes.testing import defaults, errors
from activities.kubernetes.testing.patches import PatchError, UnsupportedPatch, apply_patch
from activities.kubernetes.testing.resources import ALL_KINDS, Kind
from activities.kubernetes.testing.selectors import Selector

Obj = dict[str, Any]
Key = tuple[Kind, str, str]  # kind, namespace ("" for cluster-scoped), name


class Clock:
    """Simulated time: starts at the wall clock, moves only when told (controller steps)."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._now = (start or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)

    def now(self) -> datetime.datetime:
        return self._now

    def stamp(self) -> str:
        return self._now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def advance(self, seconds: float) -> None:
        self._now += datetime.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Event:
    """One change, as watchers see it; ``old`` lets selector watches see objects leave."""

    type: str  # ADDED, MODIFIED, DELETED
    kind: Kind
    namespace: str
    obj: Obj
    old: Obj | None
    resource_version: int


class Store:
    """Objects of every served kind, and the log of their changes."""

    def __init__(
        self,
        kinds: Iterable[Kind] = ALL_KINDS,
        clock: Clock | None = None,
        history_limit: int = 10_000,
    ) -> None:
        self.kinds = tuple(kinds)
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self._objects: dict[Key, Obj] = {}
        self._events: list[Event] = []
        self._history_limit = history_limit
        self._oldest = 1  # the oldest resourceVersion a watch can resume from
        self._version = 0
        self._names = 0
        self._listeners: list[Callable[[], None]] = []

    # -- lookups ---------------------------------------------------------------------------

    def kind(self, group: str, version: str, plural: str) -> Kind | None:
        return next(
            (k for k in self.kinds if (k.group, k.version, k.plural) == (group, version, plural)),
            None,
        )

    def kind_named(self, kind_name: str) -> Kind:
        return next(k for k in self.kinds if k.kind == kind_name)

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._version

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        with self.lock:
            found = self._objects.get((kind, namespace, name))
            if found is None:
                raise errors.not_found(kind, name)
            return copy.deepcopy(found)

    def find(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """Like :meth:`get`, None when absent."""
        with self.lock:
            found = self._objects.get((kind, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def objects(
        self, kind: Kind, namespace: str | None, *selectors: Selector
    ) -> tuple[list[Obj], int]:
        """Matching objects (all namespaces when ``namespace`` is None) and the list's version."""
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(
                    self._objects.items(), key=lambda i: (i[0][1], i[0][2])
                )
                if k == kind and (namespace is None or ns == namespace)
                if all(select(obj) for select in selectors)
            ]
            return items, self._version

    # -- writes ----------------------------------------------------------------------------

    def create(self, kind: Kind, namespace: str, body: Obj) -> Obj:
        with self.lock:
            obj = _without_nulls(body)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                self._names += 1
                meta["name"] = meta["generateName"] + _suffix(
                    f"{meta['generateName']}{self._names}"
                )
            name = meta.get("name")
            if not name:
                raise errors.invalid(
                    kind, "", "metadata.name", "Required value: name or generateName is required"
                )
            self._check_namespace(kind, namespace, meta)
            if (kind, namespace, name) in self._objects:
                raise errors.already_exists(kind, name)
            obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
            if kind.namespaced:
                meta["namespace"] = namespace
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = self.clock.stamp()
            meta.pop("resourceVersion", None)
            if kind.generation:
                meta["generation"] = 1
            if "status" in kind.subresources:
                # Built-in kinds serialise an empty status; custom resources have none yet.
                obj.pop("status", None)
                if kind.merge_keys is not None:
                    obj["status"] = {}
            defaults.apply(kind, obj)
            return self._commit("ADDED", kind, namespace, name, obj, None)

    def replace(
        self, kind: Kind, namespace: str, name: str, body: Obj, subresource: str | None = None
    ) -> Obj:
        """PUT: the whole object (or its status); a stale resourceVersion is a 409."""
        with self.lock:
            old = self._current(kind, namespace, name)
            new = _without_nulls(body)
            meta = new.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({meta.get('name')}) does not match "
                    f"the name on the URL ({name})"
                )
            if kind.merge_keys is None and not meta.get("resourceVersion"):
                # Custom resources do not allow unconditional updates.
                raise errors.invalid(
                    kind,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )
            return self._update(kind, namespace, name, old, new, subresource)

    def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None = None,
    ) -> Obj:
        with self.lock:
            old = self._current(kind, namespace, name)
            try:
                new = apply_patch(old, patch, content_type, kind.merge_keys)
            except UnsupportedPatch as exc:
                raise errors.ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - "
                    "accepted media types include: "
                    f"application/json-patch+json, application/merge-patch+json ({exc})",
                ) from exc
            except PatchError as exc:
                raise errors.ApiError(422, "Invalid", str(exc)) from exc
            if not isinstance(new, dict):
                raise errors.ApiError(
                    422,
                    "Invalid",
                    f"a {content_type} patch made the object a {type(new).__name__}, not an object "
                    "(a JSON patch is sent as application/json-patch+json)",
                )
            return self._update(kind, namespace, name, old, _without_nulls(new), subresource)

    def delete(self, kind: Kind, namespace: str, name: str) -> Obj:
        with self.lock:
            old = self._current(kind, namespace, name)
            self._version += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self._version)
            del self._objects[(kind, namespace, name)]
            self._record(Event("DELETED", kind, namespace, gone, old, self._version))
            return copy.deepcopy(gone)

    def delete_namespace(self, name: str) -> None:
        """Delete everything in namespace ``name`` (what the namespace controller does)."""
        with self.lock:
            for kind, namespace, obj_name in sorted(
                self._objects, key=lambda k: (k[0].plural, k[2])
            ):
                if namespace == name and kind.namespaced:
                    self.delete(kind, namespace, obj_name)

    def write(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], None],
        subresource: str | None = None,
    ) -> Obj:
        """Read-modify-write in one lock hold (what a controller's update loop achieves)."""
        with self.lock:
            old = self._current(kind, namespace, name)
            new = copy.deepcopy(old)
            mutate(new)
            return self._update(kind, namespace, name, old, new, subresource)

    # -- watch support ---------------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns the unsubscriber."""
        with self.lock:
            self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify(self) -> None:
        """Wake the listeners without a change (watchers re-check whether to go on)."""
        with self.lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def events_after(self, version: int) -> list[Event]:
        """Events newer than ``version``; 410 Gone when the history no longer reaches back."""
        with self.lock:
            if version + 1 < self._oldest:
                raise errors.gone(version, self._oldest)
            return [e for e in self._events if e.resource_version > version]

    def compact(self) -> None:
        """Forget the history (as etcd compaction does): older resumes now get 410 Gone."""
        with self.lock:
            self._events.clear()
            self._oldest = self._version + 1

    # -- internals -------------------------------------------------------------------------

    def _current(self, kind: Kind, namespace: str, name: str) -> Obj:
        found = self._objects.get((kind, namespace, name))
        if found is None:
            raise errors.not_found(kind, name)
        return found

    def _check_namespace(self, kind: Kind, namespace: str, meta: Obj) -> None:
        if kind.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match "
                "the namespace sent on the request"
            )

    def _update(
        self, kind: Kind, namespace: str, name: str, old: Obj, new: Obj, subresource: str | None
    ) -> Obj:
        meta = new.setdefault("metadata", {})
        sent_version = meta.get("resourceVersion")
        if sent_version not in (None, "") and sent_version != old["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        self._check_namespace(kind, namespace, meta)
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        elif "status" in kind.subresources:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta = new["metadata"]
        for field in ("uid", "creationTimestamp", "resourceVersion", "generation"):
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
            else:
                meta.pop(field, None)
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = namespace
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        defaults.apply(kind, new)
        defaults.validate_update(kind, old, new)
        if new == old:
            return copy.deepcopy(old)  # a no-op write: no new version, no event
        if kind.generation and _spec_of(new) != _spec_of(old):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        return self._commit("MODIFIED", kind, namespace, name, new, old)

    def _commit(
        self, event: str, kind: Kind, namespace: str, name: str, obj: Obj, old: Obj | None
    ) -> Obj:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self._objects[(kind, namespace, name)] = obj
        self._record(
            Event(event, kind, namespace, copy.deepcopy(obj), copy.deepcopy(old), self._version)
        )
        return copy.deepcopy(obj)

    def _record(self, event: Event) -> None:
        self._events.append(event)
        if len(self._events) > self._history_limit:
            dropped = self._events[: len(self._events) - self._history_limit]
            del self._events[: len(dropped)]
            self._oldest = dropped[-1].resource_version + 1
        for listener in list(self._listeners):
            listener()


def _without_nulls(value: Any) -> Any:
    """A copy without null map values: the API server decodes into typed objects, so a
    ``"creationTimestamp": null`` that Go clients send in pod templates is not stored."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated name suffixes


def _suffix(seed: str, length: int = 5) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:length])


def safe_hash(value: str, length: int = 10) -> str:
    """A short name-safe hash (the shape of a ``pod-template-hash``)."""
    return _suffix(value, length)
