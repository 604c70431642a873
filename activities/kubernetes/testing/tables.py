"""Server-side printing: the ``meta.k8s.io/v1`` Table ``kubectl get`` asks for
(https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables),
with the columns ``kubectl get`` shows for the kinds deployflow touches."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from activities.kubernetes.testing.resources import Kind

Obj = dict[str, Any]
Column = tuple[str, str, Callable[[Obj], Any]]


def wanted(accept: str) -> bool:
    return "as=Table" in accept


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


_COLUMNS: dict[str, list[Column]] = {
    "Deployment": [
        (
            "Ready",
            "string",
            lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}",
        ),
        ("Up-to-date", "integer", lambda o: _status(o).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o: _status(o).get("availableReplicas", 0)),
    ],
    "ReplicaSet": [
        ("Desired", "integer", lambda o: _spec(o).get("replicas", 1)),
        ("Current", "integer", lambda o: _status(o).get("replicas", 0)),
        ("Ready", "integer", lambda o: _status(o).get("readyReplicas", 0)),
    ],
    "Pod": [
        ("Ready", "string", lambda o: "1/1" if _ready(o) else "0/1"),
        ("Status", "string", lambda o: _status(o).get("phase", "Pending")),
    ],
    "Service": [
        ("Type", "string", lambda o: _spec(o).get("type", "ClusterIP")),
        ("Cluster-IP", "string", lambda o: _spec(o).get("clusterIP", "<none>")),
    ],
}


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in _status(pod).get("conditions") or []
    )


def _age(obj: Obj, now: datetime.datetime) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    born = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((now - born).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(kind: Kind, items: list[Obj], resource_version: str, now: datetime.datetime) -> Obj:
    columns = _COLUMNS.get(kind.kind, [])
    definitions = [
        {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
    ]
    definitions += [
        {"name": n, "type": t, "format": "", "description": "", "priority": 0}
        for n, t, _ in columns
    ]
    definitions.append(
        {"name": "Age", "type": "string", "format": "", "description": "", "priority": 0}
    )
    rows = [
        {
            "cells": [
                obj["metadata"]["name"],
                *(get(obj) for _, _, get in columns),
                _age(obj, now),
            ],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            },
        }
        for obj in items
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
