"""The HTTP face of the double: kmock's ``KubernetesScaffold`` (aiohttp, discovery of the
groups, request recording, reactions) with the resource endpoints served from a
:class:`~.store.Store`.

Reactions a test adds with kmock's DSL (``double[...] << 500``) take precedence over the
endpoints here, which are the scaffold's fallback.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import rendering

from activities.kubernetes.testing import discovery, errors, tables, watch
from activities.kubernetes.testing.errors import ApiError
from activities.kubernetes.testing.faults import Faults
from activities.kubernetes.testing.resources import Kind
from activities.kubernetes.testing.scale import scale_of, update_scale
from activities.kubernetes.testing.selectors import (
    Selector,
    SelectorError,
    field_selector,
    label_selector,
)
from activities.kubernetes.testing.store import Obj, Store

_NOT_FOUND = "the server could not find the requested resource"
# kmock's path parser reads /api/v1/namespaces/x as "in namespace x", not as a Namespace.
_NAMESPACES_PATH = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?/?$")


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
        for kind in self.store.kinds:  # what the scaffold's /apis and /apis/<group> list
            self.resources[kmock.resource(kind.group, kind.version, kind.plural)] = (
                kmock.ResourceInfo(
                    kind=kind.kind,
                    namespaced=kind.namespaced,
                    verbs=set(discovery.VERBS),
                )
            )
        # The Python client asks for /api/ and /version/ with a trailing slash.
        self.fallback["get", re.compile(r"^/api/$")] << self._serve_api
        self.fallback["get", re.compile(r"^/apis/$")] << self._serve_apis
        self.fallback["get", re.compile(r"^/version/?$")] << (lambda: discovery.SERVER_VERSION)
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
        if match := _NAMESPACES_PATH.match(raw_request.path):
            return await self._serve_namespaces(raw_request, match.group(1))
        return await super().__call__(raw_request)

    async def _serve_namespaces(
        self, raw_request: aiohttp.web.BaseRequest, name: str | None
    ) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        request = kmock.Request(
            id=len(self._requests),
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            text=body.decode(errors="replace"),
            data=data,
            name=name,
            resource=kmock.resource("", "v1", "namespaces"),
            raw_request=raw_request,
        )
        self._requests.append(request)  # recorded like every other request
        response = await self._serve(request)
        return await response(request)

    async def _serve_version(self, request: kmock.Request) -> rendering.Payload:
        assert request.resource is not None  # the scaffold routes only such paths here
        listed = discovery.resource_list(
            self.store.kinds, str(request.resource.group or ""), str(request.resource.version)
        )
        return listed if listed is not None else _status(ApiError(404, "NotFound", _NOT_FOUND))

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
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)  # a slow server, for the client's timeout
        if fault is not None and fault.status is not None:
            return _status(ApiError(fault.status, fault.reason, fault.message))
        if self.before_request is not None:
            self.before_request()
        try:
            if request.name is None:
                return self._collection(request, kind, method)
            return self._object(request, kind, method, request.name)
        except ApiError as exc:
            return _status(exc)

    def _collection(self, request: kmock.Request, kind: Kind, method: str) -> rendering.Response:
        params = dict(request.params)
        if method == "GET" and params.get("watch") in ("true", "1"):
            events = watch.stream(
                self.store,
                watch.WatchRequest(kind, request.namespace, _selectors(kind, params), params),
                budget=self.faults.take_watch_drop(),
                closing=lambda: self._closing,
                on_idle=self.on_idle_watch,
            )
            return rendering.Response(
                status=200, headers={"Content-Type": "application/json"}, payload=events
            )
        if method == "GET":
            items, version = self.store.objects(kind, request.namespace, *_selectors(kind, params))
            if tables.wanted(_header(request, "Accept")):
                return _ok(tables.table(kind, items, str(version), self.store.clock.now()))
            return _ok(_list(kind, items, str(version)))
        if method == "POST":
            body = _body(request)
            namespace = request.namespace or body.get("metadata", {}).get("namespace") or "default"
            return _ok(self.store.create(kind, namespace if kind.namespaced else "", body), 201)
        if method == "DELETE":
            items, version = self.store.objects(kind, request.namespace, *_selectors(kind, params))
            for item in items:
                self.store.delete(
                    kind, item["metadata"].get("namespace", ""), item["metadata"]["name"]
                )
            return _ok(_list(kind, items, str(version)))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")

    def _object(
        self, request: kmock.Request, kind: Kind, method: str, name: str
    ) -> rendering.Response:
        namespace, sub = request.namespace or "", request.subresource
        if (kind.namespaced and not namespace) or sub not in (None, *kind.subresources):
            raise ApiError(404, "NotFound", _NOT_FOUND)
        content_type = _header(request, "Content-Type")
        if sub == "scale":
            if method == "GET":
                return _ok(scale_of(self.store.get(kind, namespace, name)))
            if method == "PUT":
                return _ok(update_scale(self.store, kind, namespace, name, body=_body(request)))
            if method == "PATCH":
                return _ok(
                    update_scale(
                        self.store,
                        kind,
                        namespace,
                        name,
                        patch=_patch_body(request),
                        content_type=content_type,
                    )
                )
        elif method == "GET":
            obj = self.store.get(kind, namespace, name)
            if tables.wanted(_header(request, "Accept")):
                return _ok(
                    tables.table(
                        kind, [obj], obj["metadata"]["resourceVersion"], self.store.clock.now()
                    )
                )
            return _ok(obj)
        elif method == "PUT":
            return _ok(self.store.replace(kind, namespace, name, _body(request), sub))
        elif method == "PATCH":
            return _ok(
                self.store.patch(kind, namespace, name, _patch_body(request), content_type, sub)
            )
        elif method == "DELETE" and sub is None:
            gone = self.store.delete(kind, namespace, name)
            if kind.kind == "Namespace":
                self.store.delete_namespace(name)
                # The real server answers with the namespace being finalized (its contents
                # go first); here they are gone already.
                gone["metadata"]["deletionTimestamp"] = self.store.clock.stamp()
                gone["status"] = {"phase": "Terminating"}
                return _ok(gone)
            if kind.returns_deleted:  # Services, Pods
                return _ok(gone)
            details = {
                "name": name,
                "group": kind.group,
                "kind": kind.plural,
                "uid": gone["metadata"]["uid"],
            }
            return _ok(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")


def _list(kind: Kind, items: list[Obj], version: str) -> Obj:
    return {
        "apiVersion": kind.api_version,
        "kind": f"{kind.kind}List",
        "metadata": {"resourceVersion": version},
        "items": items,
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
