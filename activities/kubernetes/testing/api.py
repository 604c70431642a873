"""The HTTP face of the double: kmock's ``KubernetesScaffold`` (discovery, aiohttp, request
recording, reactions) with the resource endpoints served from :class:`Store`.

Reactions a test adds with kmock's DSL (``double[...] << 500``) take precedence over the
endpoints here, which are the scaffold's fallback.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import rendering

from activities.kubernetes.testing import errors, tables
from activities.kubernetes.testing.errors import ApiError
from activities.kubernetes.testing.faults import Faults
from activities.kubernetes.testing.resources import Kind
from activities.kubernetes.testing.selectors import (
    Selector,
    SelectorError,
    field_selector,
    label_selector,
    selector_string,
)
from activities.kubernetes.testing.store import Event, Obj, Store

# The real server closes a watch after a random 30-60 min when no timeoutSeconds is given.
DEFAULT_WATCH_TIMEOUT_S = 1800.0
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-deployflow-double",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Recorded:
    """One request the double received."""

    method: str
    path: str
    params: dict[str, str]
    content_type: str
    body: Any


@attrs.define(kw_only=True)
class ApiServerDouble(kmock.KubernetesScaffold):
    """A Kubernetes API server for tests: real HTTP, real semantics for the kinds it serves."""

    store: Store = attrs.field(factory=Store)
    faults: Faults = attrs.field(factory=Faults)
    # Called before each request is served (the controller's auto-advance hooks in here).
    before_request: Callable[[], None] | None = None
    # Called when a watch has nothing to send; True if it changed something.
    on_idle_watch: Callable[[], bool] | None = None
    _closing: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for kind in self.store.kinds:
            self.resources[kmock.resource(kind.group, kind.version, kind.plural)] = (
                kmock.ResourceInfo(
                    kind=kind.kind,
                    singular=kind.singular,
                    namespaced=kind.namespaced,
                    verbs={
                        "get",
                        "list",
                        "watch",
                        "create",
                        "update",
                        "patch",
                        "delete",
                        "deletecollection",
                    },
                    shortnames=set(kind.short_names),
                    categories=set(kind.categories),
                    subresources=set(kind.subresources),
                )
            )
        # The Python client asks for /api/ and /version/ with a trailing slash.
        self.fallback["get", re.compile(r"^/api/$")] << self._serve_api
        self.fallback["get", re.compile(r"^/apis/$")] << self._serve_apis
        self.fallback["get", re.compile(r"^/version/?$")] << (lambda: SERVER_VERSION)
        self.fallback[self._is_resource_request] << self._serve

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # Go clients send some built-in kinds as protobuf (kubectl create deployment does);
        # the double speaks JSON only and says so, as a server without protobuf would.
        if "protobuf" in raw_request.headers.get("Content-Type", ""):
            refusal = ApiError(
                415,
                "UnsupportedMediaType",
                "the API server double accepts JSON bodies only, not protobuf "
                "(kubectl apply -f sends JSON)",
            )
            return aiohttp.web.json_response(refusal.status(), status=415)
        return await super().__call__(raw_request)

    async def _serve_version(self, request: kmock.Request) -> rendering.Payload:
        """``/api/v1``, ``/apis/<group>/<version>``: the APIResourceList, with subresources
        listed as the real server lists them (``deployments/scale`` is an autoscaling/v1 Scale)."""
        assert request.resource is not None  # the scaffold routes only such paths here
        group, version = str(request.resource.group or ""), str(request.resource.version)
        kinds = [k for k in self.store.kinds if (k.group, k.version) == (group, version)]
        if not kinds:
            return _status(
                ApiError(404, "NotFound", "the server could not find the requested resource")
            )
        resources: list[dict[str, Any]] = []
        for kind in kinds:
            resources.append(
                {
                    "name": kind.plural,
                    "singularName": kind.singular,
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "shortNames": list(kind.short_names),
                    "categories": list(kind.categories),
                    "verbs": [
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                }
            )
            for sub in kind.subresources:
                entry = {
                    "name": f"{kind.plural}/{sub}",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": ["get", "patch", "update"],
                }
                if sub == "scale":
                    entry.update(group="autoscaling", version="v1", kind="Scale")
                resources.append(entry)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def close_watches(self) -> None:
        """End every open watch (the server is shutting down)."""
        self._closing = True
        self.store.notify()

    def recorded(self) -> list[Recorded]:
        """The requests so far, oldest first."""
        return [
            Recorded(
                str(r.method.value if r.method else ""),
                r.url.path,
                dict(r.params),
                _header(r, "Content-Type"),
                r.data,
            )
            for r in list(self)
        ]

    # -- routing ---------------------------------------------------------------------------

    def _kind_of(self, request: kmock.Request) -> Kind | None:
        resource = request.resource
        if resource is None or not isinstance(resource.plural, str):
            return None
        return self.store.kind(str(resource.group), str(resource.version), resource.plural)

    def _is_resource_request(self, request: kmock.Request) -> bool:
        return self._kind_of(request) is not None

    async def _serve(self, request: kmock.Request) -> rendering.Response:
        kind = self._kind_of(request)
        assert kind is not None  # the criteria above
        method = str(request.method.value).upper()
        fault = self.faults.take(method, kind.plural, request.subresource)
        if fault is not None:
            return _status(ApiError(fault.status, fault.reason, fault.message))
        if self.before_request is not None:
            self.before_request()
        try:
            return await self._dispatch(request, kind, method)
        except ApiError as exc:
            return _status(exc)

    async def _dispatch(
        self, request: kmock.Request, kind: Kind, method: str
    ) -> rendering.Response:
        params = dict(request.params)
        namespace = request.namespace or ""
        if kind.namespaced and request.name is not None and not namespace:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if request.name is None:
            if method == "GET" and params.get("watch") in ("true", "1"):
                return rendering.Response(
                    status=200,
                    headers={"Content-Type": "application/json"},
                    payload=self._watch(kind, request.namespace, _selectors(kind, params), params),
                )
            if method == "GET":
                items, version = self.store.objects(
                    kind, request.namespace, *_selectors(kind, params)
                )
                if tables.wanted(_header(request, "Accept")):
                    return _ok(tables.table(kind, items, str(version), self.store.clock.now()))
                return _ok(
                    {
                        "apiVersion": kind.api_version,
                        "kind": f"{kind.kind}List",
                        "metadata": {"resourceVersion": str(version)},
                        "items": items,
                    }
                )
            if method == "POST":
                body = _body(request)
                target = namespace or body.get("metadata", {}).get("namespace") or "default"
                return _ok(self.store.create(kind, target if kind.namespaced else "", body), 201)
            if method == "DELETE":
                items, _ = self.store.objects(kind, request.namespace, *_selectors(kind, params))
                for item in items:
                    meta = item["metadata"]
                    self.store.delete(kind, meta.get("namespace", ""), meta["name"])
                return _ok(
                    {
                        "apiVersion": kind.api_version,
                        "kind": f"{kind.kind}List",
                        "metadata": {},
                        "items": items,
                    }
                )
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        name = request.name
        sub = request.subresource
        if sub not in (None, *kind.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "scale":
            return _ok(self._scale(kind, namespace, name, method, request))
        if method == "GET":
            obj = self.store.get(kind, namespace, name)
            if tables.wanted(_header(request, "Accept")):
                return _ok(
                    tables.table(
                        kind, [obj], obj["metadata"]["resourceVersion"], self.store.clock.now()
                    )
                )
            return _ok(obj)
        if method == "PUT":
            return _ok(self.store.replace(kind, namespace, name, _body(request), sub))
        if method == "PATCH":
            content_type = _header(request, "Content-Type")
            return _ok(
                self.store.patch(kind, namespace, name, _patch_body(request), content_type, sub)
            )
        if method == "DELETE":
            gone = self.store.delete(kind, namespace, name)
            return _ok(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": kind.group,
                        "kind": kind.plural,
                        "uid": gone["metadata"]["uid"],
                    },
                }
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    # -- scale subresource -----------------------------------------------------------------

    def _scale(
        self, kind: Kind, namespace: str, name: str, method: str, request: kmock.Request
    ) -> Obj:
        """``/scale``: an ``autoscaling/v1`` Scale view of ``spec.replicas``."""
        with self.store.lock:
            current = scale_of(self.store.get(kind, namespace, name))
            if method == "GET":
                return current
            if method == "PUT":
                wanted = _body(request)
            elif method == "PATCH":
                from activities.kubernetes.testing.patches import PatchError, apply_patch

                try:
                    wanted = apply_patch(
                        current,
                        _patch_body(request),
                        _header(request, "Content-Type"),
                        lambda _path: None,
                    )
                except PatchError as exc:
                    raise ApiError(422, "Invalid", str(exc)) from exc
            else:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on scale")
            sent = (wanted.get("metadata") or {}).get("resourceVersion")
            if sent not in (None, "") and sent != current["metadata"]["resourceVersion"]:
                raise errors.conflict(kind, name)
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid(
                    kind, name, "spec.replicas", "Invalid value: must be a non-negative integer"
                )

            def set_replicas(obj: Obj) -> None:
                obj["spec"]["replicas"] = replicas

            return scale_of(self.store.write(kind, namespace, name, set_replicas))

    # -- watch -----------------------------------------------------------------------------

    async def _watch(
        self, kind: Kind, namespace: str | None, selectors: list[Selector], params: dict[str, str]
    ) -> AsyncIterator[Any]:
        yield b""  # sends the headers now, as the real server does before any event
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT_S)
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        budget = self.faults.take_watch_drop()
        wake = asyncio.Event()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        unsubscribe = self.store.subscribe(wake_up)
        try:
            since = params.get("resourceVersion") or "0"
            if since == "0":
                items, cursor = self.store.objects(kind, namespace, *selectors)
                pending: list[dict[str, Any]] = [
                    {"type": "ADDED", "object": item} for item in items
                ]
            else:
                try:
                    cursor = int(since)
                except ValueError:
                    yield {
                        "type": "ERROR",
                        "object": errors.bad_request(f"invalid resourceVersion {since!r}").status(),
                    }
                    return
                pending = []
            while not self._closing:
                wake.clear()
                try:
                    new = self.store.events_after(cursor)
                except ApiError as exc:
                    yield {"type": "ERROR", "object": exc.status()}
                    return
                if new:
                    cursor = new[-1].resource_version
                pending += [
                    e for e in (_as_seen(ev, kind, namespace, selectors) for ev in new) if e
                ]
                for event in pending:
                    if budget is not None:
                        if budget <= 0:
                            return
                        budget -= 1
                    yield event
                pending = []
                if new:
                    continue
                if self.on_idle_watch is not None and self.on_idle_watch():
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(wake.wait(), remaining)
                except TimeoutError:
                    break
            if bookmarks:
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "apiVersion": kind.api_version,
                        "kind": kind.kind,
                        "metadata": {
                            "resourceVersion": str(max(cursor, self.store.resource_version))
                        },
                    },
                }
        finally:
            unsubscribe()


def _as_seen(
    event: Event, kind: Kind, namespace: str | None, selectors: list[Selector]
) -> dict[str, Any] | None:
    """The event a watch with these selectors sends for a change, if any (an object that stops
    matching a selector is DELETED for that watch; one that starts matching is ADDED)."""
    if event.kind != kind or (namespace is not None and event.namespace != namespace):
        return None
    now = event.type != "DELETED" and all(s(event.obj) for s in selectors)
    before = event.old is not None and all(s(event.old) for s in selectors)
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.obj} if before else None
    if now and before:
        return {"type": "MODIFIED", "object": event.obj}
    if now:
        return {"type": "ADDED", "object": event.obj}
    if before:
        return {"type": "DELETED", "object": event.obj}
    return None


def scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    match_labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(match_labels),
        },
    }


def _selectors(kind: Kind, params: dict[str, str]) -> list[Selector]:
    try:
        return [
            label_selector(params.get("labelSelector")),
            field_selector(params.get("fieldSelector"), kind.field_selectors),
        ]
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc


def _header(request: kmock.Request, name: str) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


def _body(request: kmock.Request) -> Obj:
    if not isinstance(request.data, dict):
        raise errors.bad_request("the request body is not a JSON object")
    return request.data


def _patch_body(request: kmock.Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError as exc:
        raise errors.bad_request(f"the patch is not JSON: {exc}") from exc


def _ok(payload: Obj, status: int = 200) -> rendering.Response:
    return rendering.Response(status=status, payload=payload)


def _status(exc: ApiError) -> rendering.Response:
    return rendering.Response(status=exc.code, payload=exc.status())
