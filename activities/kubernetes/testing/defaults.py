"""The little defaulting and validation the double does (the API server does far more).

Pod specs (a Pod's, a Deployment's or ReplicaSet's template) get the defaults the real
server stores, so a template read back and sent again (``kubectl rollout undo``) is equal
to the stored one: ``restartPolicy``, ``dnsPolicy``, ``terminationGracePeriodSeconds``,
``schedulerName``, ``securityContext``, and per container ``imagePullPolicy`` (Always for
``:latest`` or no tag), ``terminationMessagePath``/``Policy``, ``resources``, port protocols.
Deployments get the defaults ``kubectl rollout status`` and the controller read
(``replicas`` 1, RollingUpdate 25%/25%, ``progressDeadlineSeconds`` 600,
``revisionHistoryLimit`` 10); a selector must match the template's labels and cannot change
afterwards (apps/v1 validation). Services get ``type: ClusterIP`` and ``targetPort``.
"""

from __future__ import annotations

from typing import Any

from activities.kubernetes.testing import errors
from activities.kubernetes.testing.resources import Kind

Obj = dict[str, Any]


def apply(kind: Kind, obj: Obj) -> None:
    if (kind.group, kind.kind) == ("apps", "ReplicaSet"):
        # ReplicaSetStatus.replicas has no omitempty: it is always there, 0 included.
        obj.setdefault("status", {}).setdefault("replicas", 0)
    if (kind.group, kind.kind) == ("", "Namespace"):
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    if (kind.group, kind.kind) == ("", "Pod"):
        obj.setdefault("status", {}).setdefault("phase", "Pending")  # as PrepareForCreate does
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if (kind.group, kind.kind) in (("apps", "Deployment"), ("apps", "ReplicaSet")):
        spec.setdefault("replicas", 1)
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            _pod_spec(template_spec)
    if (kind.group, kind.kind) == ("", "Namespace"):
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    if (kind.group, kind.kind) == ("", "Pod"):
        _pod_spec(spec)
    if (kind.group, kind.kind) == ("apps", "Deployment"):
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        _validate_selector(kind, obj)
    if (kind.group, kind.kind) == ("", "Service"):
        spec.setdefault("type", "ClusterIP")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))


def _pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
        container.setdefault(
            "imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent"
        )
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _validate_selector(kind: Kind, obj: Obj) -> None:
    name = obj["metadata"].get("name", "")
    spec = obj["spec"]
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    if not match_labels and not (spec.get("selector") or {}).get("matchExpressions"):
        raise errors.invalid(kind, name, "spec.selector", "Required value")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        raise errors.invalid(
            kind,
            name,
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
        )


def validate_update(kind: Kind, old: Obj, new: Obj) -> None:
    if (kind.group, kind.kind) != ("apps", "Deployment"):
        return
    if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
        raise errors.invalid(
            kind, old["metadata"]["name"], "spec.selector", "Invalid value: field is immutable"
        )
