"""The ``/scale`` subresource: an ``autoscaling/v1`` Scale view of ``spec.replicas``
(https://kubernetes.io/docs/reference/kubernetes-api/autoscaling-resources/scale-v1/)."""

from __future__ import annotations

from typing import Any

from activities.kubernetes.testing import errors
from activities.kubernetes.testing.patches import PatchError, apply_patch
from activities.kubernetes.testing.resources import Kind
from activities.kubernetes.testing.selectors import selector_string
from activities.kubernetes.testing.store import Obj, Store

_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    match_labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {k: meta[k] for k in _META if k in meta},
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(match_labels),
        },
    }


def update_scale(
    store: Store,
    kind: Kind,
    namespace: str,
    name: str,
    *,
    body: Obj | None = None,
    patch: Any = None,
    content_type: str = "",
) -> Obj:
    """PUT (``body``) or PATCH (``patch``) the Scale; a stale resourceVersion is a 409."""
    with store.lock:
        current = scale_of(store.get(kind, namespace, name))
        if body is None:
            try:
                body = apply_patch(current, patch, content_type, lambda _path: None)
            except PatchError as exc:
                raise errors.ApiError(422, "Invalid", str(exc)) from exc
        if not isinstance(body, dict):
            raise errors.bad_request("a Scale is a JSON object")
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if sent not in (None, "") and sent != current["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                kind, name, "spec.replicas", "Invalid value: must be greater than or equal to 0"
            )

        def set_replicas(obj: Obj) -> None:
            obj["spec"]["replicas"] = replicas

        return scale_of(store.write(kind, namespace, name, set_replicas))
