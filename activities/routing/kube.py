"""What the Kubernetes routers share: raw JSON calls (``activities/kubernetes/api.py``), the
API server's answers mapped to deployflow's error types, and the optimistic read-change-write loop.

Every change is computed from an object just read and sent with that read's
``resourceVersion`` (in a merge patch's ``metadata``, or a JSON patch's
``replace /metadata/resourceVersion``): the API server refuses it with 409 Conflict if
anyone wrote the object since, and the loop reads again and recomputes. Nothing is ever
written blind. A JSON patch ``test`` op would fail as 422, which also means a bad body; the
precondition keeps "someone else wrote it" a 409 of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog
import urllib3

from activities import errors
from activities.errors import failure
from activities.kubernetes import api as kube_api
from activities.kubernetes.api import ApiStatus

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = structlog.get_logger()

Obj = dict[str, Any]
MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
CONFLICT_ATTEMPTS: Final = 5
"""Reads and re-sends after a 409 before the activity fails (retryably): another writer
racing us five times in a row is not a race, it is a controller fighting over the object."""
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "deployflow"}
HEADER_ROUTES: Final = "deployflow.dev/header-routes"
"""Annotation on a VirtualService or HTTPRoute: the JSON list of the header routes (their
names) deployflow added to it, so it removes exactly those and nothing a person wrote."""


class Conflict(Exception):
    """409: the object changed since it was read (or a create found it existing)."""


class NotFound(Exception):
    """404: no such object."""


@dataclass(frozen=True)
class Patch:
    """A change to send: ``body`` under ``content_type`` (merge patch or JSON patch)."""

    body: Obj | list[Obj]
    content_type: str


class Api:
    """Raw JSON requests to one cluster (:mod:`activities.kubernetes.api`), their failures
    as the routers' errors: 404 and 409 for the caller to decide, the rest classified."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def get(self, path: str, what: str) -> Obj:
        """The object at ``path``; ``KubernetesObjectMissing`` if there is none."""
        try:
            return self.request("GET", path, f"read {what}")
        except NotFound:
            raise missing(what) from None

    def find(self, path: str, what: str) -> Obj | None:
        """The object at ``path``, or None."""
        try:
            return self.request("GET", path, f"read {what}")
        except NotFound:
            return None

    def create(self, path: str, body: Obj, what: str) -> Obj:
        return self.request("POST", path, f"create {what}", body)

    def patch(self, path: str, patch: Patch, what: str) -> Obj:
        """Send ``patch``; a 404 (deleted since it was read) is ``KubernetesObjectMissing``."""
        try:
            return self.request("PATCH", path, f"patch {what}", patch.body, patch.content_type)
        except NotFound:
            raise missing(what) from None

    def request(
        self,
        method: str,
        path: str,
        what: str,
        body: Obj | list[Obj] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request with the timeout, its JSON answer as a dict. 409 raises
        ``Conflict`` and 404 ``NotFound`` for the caller to decide; every other failure
        becomes the ``ApplicationError`` that says whether retrying can help."""
        try:
            return kube_api.request(self.api, method, path, body, content_type)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise failure(errors.KUBERNETES_REQUEST_FAILED, f"{what}: {exc}") from None
        except ApiStatus as refused:
            raise refusal(what, refused.status, refused.message) from None


def refusal(what: str, status: int, message: str) -> Exception:
    """The exception for a non-2xx answer (``message``: the API server's ``Status``)."""
    reason = message or str(status)
    if status == 409:
        return Conflict(f"{what}: {reason}")
    if status == 404:
        return NotFound(f"{what}: {reason}")
    if status in (401, 403):
        return failure(errors.KUBERNETES_FORBIDDEN, f"{what}: {status} {reason}")
    if status in (400, 415, 422):
        return failure(errors.KUBERNETES_REQUEST_INVALID, f"{what}: {status} {reason}")
    return failure(errors.KUBERNETES_REQUEST_FAILED, f"{what}: {status} {reason}")


def missing(what: str) -> Exception:
    return failure(errors.KUBERNETES_OBJECT_MISSING, f"{what} does not exist")


def namespaced(group_version: str, namespace: str, plural: str, name: str = "") -> str:
    """``/apis/networking.k8s.io/v1/namespaces/shop/ingresses/checkout`` (core: ``v1``)."""
    root = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return f"{root}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


def optimistically(what: str, attempt: Callable[[], bool]) -> bool:
    """Run ``attempt`` (read, compute, send with the read's resourceVersion; True if it
    wrote) again after each 409, up to ``CONFLICT_ATTEMPTS`` times."""
    for number in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return attempt()
        except Conflict as conflict:
            log.info("kubernetes_conflict_reread", what=what, attempt=number, reason=str(conflict))
    raise failure(
        errors.KUBERNETES_REQUEST_FAILED,
        f"{what}: changed by another writer on each of {CONFLICT_ATTEMPTS} attempts",
    )


def merge_patch(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Obj:
    """The RFC 7386 merge patch turning ``current`` into ``wanted``: changed keys, nested
    mappings recursively, None for a key ``wanted`` lacks (lists are replaced whole)."""
    patch: Obj = {}
    for key, value in wanted.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            if nested := merge_patch(old, value):
                patch[key] = nested
        elif old != value or key not in current:
            patch[key] = value
    return patch | {key: None for key in current if key not in wanted}


def owned_routes(obj: Obj) -> list[str]:
    """The header routes deployflow recorded on ``obj`` (its ``HEADER_ROUTES`` annotation)."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(HEADER_ROUTES)
    try:
        names = json.loads(raw) if raw else []
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        name = obj.get("metadata", {}).get("name")
        raise failure(
            errors.KUBERNETES_OBJECT_FOREIGN,
            f"{name}: annotation {HEADER_ROUTES} is not a JSON list of names: {raw!r}",
        )
    return names


def list_patch(obj: Obj, path: str, value: list[Obj], routes: list[str]) -> Patch | None:
    """A JSON patch replacing the list at ``path`` (``/spec/http``) whole and recording the
    header routes deployflow owns, guarded by ``obj``'s resourceVersion; None if ``obj``
    already holds both."""
    section, field = path.strip("/").split("/")
    ops: list[Obj] = []
    if obj.get(section, {}).get(field) != value:
        ops.append(
            {
                "op": "replace" if field in obj.get(section, {}) else "add",
                "path": path,
                "value": value,
            }
        )
    if owned_routes(obj) != routes:
        annotations = obj["metadata"].get("annotations")
        key_path = "/metadata/annotations/" + HEADER_ROUTES.replace("~", "~0").replace("/", "~1")
        if annotations is None:
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/annotations",
                    "value": {HEADER_ROUTES: json.dumps(routes)},
                }
            )
        elif routes:
            ops.append({"op": "add", "path": key_path, "value": json.dumps(routes)})
        else:
            ops.append({"op": "remove", "path": key_path})
    if not ops:
        return None
    version = obj["metadata"]["resourceVersion"]
    guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": version}
    return Patch([guard, *ops], JSON_PATCH)
