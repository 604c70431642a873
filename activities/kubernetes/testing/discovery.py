"""API discovery for the served kinds: ``/api/v1`` and ``/apis/<group>/<version>``.

APIResourceList as kube-apiserver serves it, subresources included (``deployments/scale``
is an ``autoscaling/v1`` Scale); kubectl reads short names and subresources from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from activities.kubernetes.testing.resources import Kind

Obj = dict[str, Any]
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
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


def resource_list(kinds: Iterable[Kind], group: str, version: str) -> Obj | None:
    """The APIResourceList of ``group/version``; None when nothing is served there."""
    served = [k for k in kinds if (k.group, k.version) == (group, version)]
    if not served:
        return None
    resources: list[Obj] = []
    for kind in served:
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.singular,
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "shortNames": list(kind.short_names),
                "categories": list(kind.categories),
                "verbs": VERBS,
            }
        )
        for sub in kind.subresources:
            entry: Obj = {
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
