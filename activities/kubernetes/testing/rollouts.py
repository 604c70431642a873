"""The Deployment controller's arithmetic, as pure functions over API objects.

From kube-controller-manager's ``pkg/controller/deployment`` (``rolling.go``,
``sync.go``, ``progress.go``, ``util/deployment_util.go``): surge and unavailability
budgets, one sync's ReplicaSet sizes, and the status and conditions the controller writes.
"""

from __future__ import annotations

import copy
import datetime
import math
from typing import Any

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def parse_stamp(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)


def replicas_of(rs: Obj) -> int:
    return int(rs["spec"].get("replicas", 0))


def status_count(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field, 0))


def budgets(spec: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods: percentages of ``replicas``, surge rounded up and
    unavailable down; both 0 would deadlock, so unavailable is then 1."""
    desired = int(spec.get("replicas", 1))
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), desired, up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, up=False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


def _resolve(value: int | str, total: int, up: bool) -> int:
    if isinstance(value, int):
        return value
    share = float(str(value).rstrip("%")) * total / 100
    return math.ceil(share) if up else math.floor(share)


def first_size(desired: int, surge: int, old: list[Obj]) -> int:
    """The size a new ReplicaSet starts at: all of it for a first rollout, else the surge room."""
    if not old:
        return desired
    return max(0, min(desired, desired + surge - sum(replicas_of(rs) for rs in old)))


def rolling_sizes(
    new: Obj, old: list[Obj], desired: int, surge: int, unavailable: int
) -> dict[str, int]:
    """One RollingUpdate sync: new sizes by ReplicaSet name (only those that change).

    Scale the new ReplicaSet up within ``desired + surge`` pods; if it cannot grow, scale
    old ones down while ``desired - unavailable`` pods stay available, unhealthy old pods
    first (they cost no availability), oldest ReplicaSets first.
    """
    current = replicas_of(new)
    total = current + sum(replicas_of(rs) for rs in old)
    grown = (
        desired if current > desired else min(desired, current + max(0, desired + surge - total))
    )
    if grown != current:
        return {new["metadata"]["name"]: grown}
    active = sorted(
        (rs for rs in old if replicas_of(rs) > 0),
        key=lambda rs: rs["metadata"]["creationTimestamp"],
    )
    min_available = desired - unavailable
    new_unavailable = current - status_count(new, "availableReplicas")
    room = total - min_available - new_unavailable
    sizes: dict[str, int] = {}
    for rs in active:
        unhealthy = max(0, replicas_of(rs) - status_count(rs, "availableReplicas"))
        cut = min(room, unhealthy)
        if cut > 0:
            sizes[rs["metadata"]["name"]] = replicas_of(rs) - cut
            room -= cut
    available = status_count(new, "availableReplicas") + sum(
        status_count(rs, "availableReplicas") for rs in active
    )
    budget = min(room, available - min_available)
    for rs in active:
        size = sizes.get(rs["metadata"]["name"], replicas_of(rs))
        cut = min(size, budget)
        if cut > 0:
            sizes[rs["metadata"]["name"]] = size - cut
            budget -= cut
    return sizes


def template_of(rs: Obj) -> Obj:
    """A ReplicaSet's pod template without its ``pod-template-hash`` label."""
    template: Obj = copy.deepcopy(rs["spec"]["template"])
    ((template.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return template


def revision_of(rs: Obj) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def max_revision(sets: list[Obj]) -> int:
    return max((revision_of(rs) for rs in sets), default=0)


def owner_reference(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def without_zeros(status: dict[str, int]) -> Obj:
    """Status counts as the API serialises them (``omitempty``: zeros are absent)."""
    return {k: v for k, v in status.items() if v}


def deployment_status(deployment: Obj, sets: list[Obj], new: Obj | None, now: str) -> Obj:
    """The status the controller writes: counts summed over the owned ReplicaSets, the
    ``Available`` condition, and ``Progressing`` (ReplicaSetUpdated while counts move,
    NewReplicaSetAvailable when complete, ProgressDeadlineExceeded once it stalled for
    ``progressDeadlineSeconds``, DeploymentPaused)."""
    spec = deployment["spec"]
    desired = int(spec.get("replicas", 1))
    old: Obj = deployment.get("status") or {}
    updated = status_count(new, "replicas") if new else 0
    available = sum(status_count(rs, "availableReplicas") for rs in sets)
    replicas = sum(status_count(rs, "replicas") for rs in sets)
    status = without_zeros(
        {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in sets),
            "availableReplicas": available,
            "unavailableReplicas": max(0, desired - available),
        }
    )
    if "collisionCount" in old:
        status["collisionCount"] = old["collisionCount"]
    conditions = {c["type"]: c for c in old.get("conditions") or []}
    if available >= desired - budgets(spec)[1]:
        _condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    else:
        _condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    name = new["metadata"]["name"] if new else deployment["metadata"]["name"]
    progressing = conditions.get("Progressing")
    complete = new is not None and replicas_of(new) == updated == replicas == available == desired
    if spec.get("paused"):
        _condition(
            conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now
        )
    elif complete:
        _condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
            now,
        )
    elif (
        progressing is None
        or new is None
        or _counts(old) != _counts(status)
        or progressing["reason"] in ("NewReplicaSetAvailable", "DeploymentPaused")
    ):
        _condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{name}" is progressing.',
            now,
            refresh=True,
        )
    elif progressing["reason"] != "ProgressDeadlineExceeded" and deadline_in(deployment, now) < 0:
        _condition(
            conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}" has timed out progressing.',
            now,
        )
    status["conditions"] = [conditions[t] for t in ("Available", "Progressing") if t in conditions]
    return status


def deadline_in(deployment: Obj, now: str) -> float:
    """Seconds until a rollout in progress passes its progress deadline (inf: none pending)."""
    conditions = (deployment.get("status") or {}).get("conditions") or []
    progressing = next((c for c in conditions if c["type"] == "Progressing"), None)
    if progressing is None or progressing["reason"] != "ReplicaSetUpdated":
        return math.inf
    elapsed = (parse_stamp(now) - parse_stamp(progressing["lastUpdateTime"])).total_seconds()
    return int(deployment["spec"].get("progressDeadlineSeconds", 600)) - elapsed


def _counts(status: Obj) -> tuple[int, ...]:
    fields = ("replicas", "updatedReplicas", "availableReplicas", "observedGeneration")
    return tuple(int(status.get(f, 0)) for f in fields)


def _condition(
    conditions: dict[str, Obj],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    refresh: bool = False,
) -> None:
    """lastTransitionTime moves when the status does, lastUpdateTime when anything does (or on
    ``refresh``: progress was made)."""
    current = conditions.get(kind)
    unchanged = current is not None and (
        current["status"],
        current["reason"],
        current["message"],
    ) == (status, reason, message)
    if unchanged and not refresh:
        return
    transition = current["lastTransitionTime"] if current and current["status"] == status else now
    conditions[kind] = {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }
