"""A Deployment controller, ReplicaSet controller, garbage collector and kubelet, simulated.

Tests advance it explicitly: :meth:`DeploymentController.step` runs one round (the clock
moves ``step_seconds``), :meth:`DeploymentController.settle` runs rounds until nothing
changes. With :meth:`DeploymentController.auto_advance` it runs a round before each API
request and whenever a watch has nothing to send (deterministic: no timers, no threads).

Modelled on kube-controller-manager's deployment controller (pkg/controller/deployment:
``rolling.go``, ``recreate.go``, ``progress.go``): one ReplicaSet per pod-template-hash,
surge/unavailable arithmetic, revisions, ``observedGeneration``, the ``Available`` and
``Progressing`` conditions and ``ProgressDeadlineExceeded``. Pods of an image declared
broken never become ready (as with ``ImagePullBackOff``).
"""

from __future__ import annotations

import copy
import json
import math
from typing import TYPE_CHECKING, Any

from activities.kubernetes.testing.resources import DEPLOYMENTS, PODS, REPLICA_SETS
from activities.kubernetes.testing.store import Obj, Store, safe_hash

if TYPE_CHECKING:
    from activities.kubernetes.testing.api import ApiServerDouble

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


class DeploymentController:
    """The controllers of a simulated cluster, stepping over ``store``."""

    def __init__(self, store: Store, step_seconds: float = 10.0) -> None:
        self.store = store
        self.step_seconds = step_seconds
        self.broken_images: set[str] = set()
        self._auto = False
        self._pods_made = 0

    # -- driving ---------------------------------------------------------------------------

    def break_image(self, image: str) -> None:
        """Pods of ``image`` never become ready: the rollout stalls, then passes its deadline."""
        self.broken_images.add(image)

    def auto_advance(self, enabled: bool = True) -> None:
        """Step before every API request and when a watch idles (for workflow tests)."""
        self._auto = enabled

    def attach(self, double: ApiServerDouble) -> None:
        double.before_request = self._before_request
        double.on_idle_watch = self._on_idle_watch

    def step(self) -> bool:
        """One round of every controller; True if it changed anything."""
        with self.store.lock:
            before = self.store.resource_version
            self.store.clock.advance(self.step_seconds)
            self._collect_garbage()
            self._kubelet()
            for deployment in self._all(DEPLOYMENTS):
                self._sync_deployment(deployment)
            for rs in self._all(REPLICA_SETS):
                self._sync_replica_set(rs)
            for rs in self._all(REPLICA_SETS):
                self._replica_set_status(rs)
            for deployment in self._all(DEPLOYMENTS):
                self._deployment_status(deployment)
            return self.store.resource_version != before

    def settle(self, max_steps: int = 1000) -> int:
        """Step until a round changes nothing; the number of rounds that changed something."""
        for count in range(max_steps):
            if not self.step():
                return count
        raise RuntimeError(f"the simulated cluster did not settle within {max_steps} steps")

    def _before_request(self) -> None:
        if self._auto:
            self.step()

    def _on_idle_watch(self) -> bool:
        return self._auto and self.step()

    # -- helpers ---------------------------------------------------------------------------

    def _all(self, kind: Any) -> list[Obj]:
        return self.store.objects(kind, None)[0]

    def _owned(self, kind: Any, owner: Obj) -> list[Obj]:
        uid = owner["metadata"]["uid"]
        return [
            o
            for o in self.store.objects(kind, owner["metadata"]["namespace"])[0]
            if any(
                r.get("uid") == uid and r.get("controller")
                for r in o["metadata"].get("ownerReferences") or []
            )
        ]

    def _set(
        self, kind: Any, obj: Obj, path: tuple[str, ...], value: Any, subresource: str | None = None
    ) -> Obj:
        def mutate(target: Obj) -> None:
            node = target
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value

        meta = obj["metadata"]
        return self.store.write(kind, meta.get("namespace", ""), meta["name"], mutate, subresource)

    # -- garbage collector and kubelet -----------------------------------------------------

    def _collect_garbage(self) -> None:
        for kind, owner_kind in ((REPLICA_SETS, DEPLOYMENTS), (PODS, REPLICA_SETS)):
            owners = {o["metadata"]["uid"] for o in self._all(owner_kind)}
            for obj in self._all(kind):
                refs = [
                    r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")
                ]
                if refs and refs[0].get("uid") not in owners:
                    self.store.delete(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _kubelet(self) -> None:
        for pod in self._all(PODS):
            status = pod.get("status") or {}
            if status.get("phase") == "Running":
                continue
            images = [c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []]
            broken = [i for i in images if i in self.broken_images]
            now = self.store.clock.stamp()
            if broken:
                waiting = {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{broken[0]}"',
                }
                new = {
                    "phase": "Pending",
                    "conditions": [
                        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
                    ],
                    "containerStatuses": [
                        {
                            "name": c.get("name"),
                            "image": c.get("image"),
                            "ready": False,
                            "restartCount": 0,
                            "state": {"waiting": waiting},
                        }
                        for c in pod["spec"].get("containers") or []
                    ],
                }
            else:
                new = {
                    "phase": "Running",
                    "startTime": now,
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                    "containerStatuses": [
                        {
                            "name": c.get("name"),
                            "image": c.get("image"),
                            "ready": True,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": now}},
                        }
                        for c in pod["spec"].get("containers") or []
                    ],
                }
            if status != new:
                self._set(PODS, pod, ("status",), new, "status")

    # -- replica sets ----------------------------------------------------------------------

    def _sync_replica_set(self, rs: Obj) -> None:
        pods = self._owned(PODS, rs)
        want = int(rs["spec"].get("replicas", 1))
        namespace = rs["metadata"]["namespace"]
        if len(pods) > want:
            doomed = sorted(pods, key=lambda p: (_pod_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in doomed[: len(pods) - want]:
                self.store.delete(PODS, namespace, pod["metadata"]["name"])
        for _ in range(want - len(pods)):
            self._pods_made += 1
            template = copy.deepcopy(rs["spec"]["template"])
            rs_name = rs["metadata"]["name"]
            name = f"{rs_name}-{safe_hash(rs_name + str(self._pods_made), 5)}"
            meta = template.get("metadata") or {}
            self.store.create(
                PODS,
                namespace,
                {
                    "metadata": {**meta, "name": name, "ownerReferences": [_owner_ref(rs)]},
                    "spec": template.get("spec") or {},
                    "status": {"phase": "Pending"},
                },
            )

    def _replica_set_status(self, rs: Obj) -> None:
        pods = self._owned(PODS, rs)
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        ready = [p for p in pods if _pod_ready(p)]
        available = [p for p in ready if self._ready_for(p) >= min_ready]
        status = _without_zeros(
            {
                "replicas": len(pods),
                "fullyLabeledReplicas": len(pods),
                "readyReplicas": len(ready),
                "availableReplicas": len(available),
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
        )
        if (rs.get("status") or {}) != status:
            self._set(REPLICA_SETS, rs, ("status",), status, "status")

    def _ready_for(self, pod: Obj) -> float:
        since = next(
            c.get("lastTransitionTime") for c in pod["status"]["conditions"] if c["type"] == "Ready"
        )
        import datetime

        born = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        return (self.store.clock.now() - born).total_seconds()

    # -- deployments -----------------------------------------------------------------------

    def _sync_deployment(self, deployment: Obj) -> None:
        spec = deployment["spec"]
        if spec.get("paused"):
            return
        sets = self._owned(REPLICA_SETS, deployment)
        new = next((rs for rs in sets if _template_of(rs) == spec["template"]), None)
        old = [rs for rs in sets if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
        desired = int(spec.get("replicas", 1))
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            if any(int(rs["spec"].get("replicas", 0)) for rs in old):
                for rs in old:
                    self._set(REPLICA_SETS, rs, ("spec", "replicas"), 0)
                return
            if any(int((rs.get("status") or {}).get("replicas", 0)) for rs in old):
                return  # old pods still running
            new = new or self._create_replica_set(deployment, sets, 0)
            if int(new["spec"].get("replicas", 0)) != desired:
                self._set(REPLICA_SETS, new, ("spec", "replicas"), desired)
            self._revision(deployment, new, sets)
            return
        rolling = strategy.get("rollingUpdate") or {}
        surge = _resolve(rolling.get("maxSurge", "25%"), desired, up=True)
        unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        if new is None:
            total = sum(int(rs["spec"].get("replicas", 0)) for rs in old)
            first = desired if not old else max(0, min(desired, desired + surge - total))
            new = self._create_replica_set(deployment, sets, first)
            self._revision(deployment, new, sets)
            return
        self._revision(deployment, new, sets)
        if self._scale_new(new, old, desired, surge):
            return
        self._scale_old(new, old, desired, unavailable)
        self._prune_history(deployment, old)

    def _scale_new(self, new: Obj, old: list[Obj], desired: int, surge: int) -> bool:
        current = int(new["spec"].get("replicas", 0))
        if current > desired:
            target = desired
        else:
            total = current + sum(int(rs["spec"].get("replicas", 0)) for rs in old)
            target = min(desired, current + max(0, desired + surge - total))
        if target == current:
            return False
        self._set(REPLICA_SETS, new, ("spec", "replicas"), target)
        return True

    def _scale_old(self, new: Obj, old: list[Obj], desired: int, unavailable: int) -> None:
        active = sorted(
            (rs for rs in old if int(rs["spec"].get("replicas", 0)) > 0),
            key=lambda rs: rs["metadata"]["creationTimestamp"],
        )
        if not active:
            return
        everything = [new, *active]
        min_available = desired - unavailable
        new_spec = int(new["spec"].get("replicas", 0))
        new_unavailable = new_spec - int((new.get("status") or {}).get("availableReplicas", 0))
        room = (
            sum(int(rs["spec"].get("replicas", 0)) for rs in everything)
            - min_available
            - new_unavailable
        )
        if room <= 0:
            return
        for rs in active:  # unhealthy old pods go first: removing them costs no availability
            replicas = int(rs["spec"].get("replicas", 0))
            unhealthy = replicas - int((rs.get("status") or {}).get("availableReplicas", 0))
            cut = min(room, max(0, unhealthy))
            if cut:
                self._set(REPLICA_SETS, rs, ("spec", "replicas"), replicas - cut)
                rs["spec"]["replicas"] = replicas - cut
                room -= cut
        available = sum(
            int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in everything
        )
        budget = min(room, available - min_available)
        for rs in active:
            if budget <= 0:
                break
            replicas = int(rs["spec"].get("replicas", 0))
            cut = min(replicas, budget)
            if cut:
                self._set(REPLICA_SETS, rs, ("spec", "replicas"), replicas - cut)
                budget -= cut

    def _create_replica_set(self, deployment: Obj, sets: list[Obj], replicas: int) -> Obj:
        template = copy.deepcopy(deployment["spec"]["template"])
        pod_hash = safe_hash(json.dumps(template, sort_keys=True))
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        meta = deployment["metadata"]
        return self.store.create(
            REPLICA_SETS,
            meta["namespace"],
            {
                "metadata": {
                    "name": f"{meta['name']}-{pod_hash}",
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {
                        REVISION: str(_max_revision(sets) + 1),
                        "deployment.kubernetes.io/desired-replicas": str(
                            deployment["spec"]["replicas"]
                        ),
                    },
                    "ownerReferences": [_owner_ref(deployment)],
                },
                "spec": {
                    "replicas": replicas,
                    "selector": selector,
                    "template": template,
                    "minReadySeconds": deployment["spec"].get("minReadySeconds", 0),
                },
            },
        )

    def _revision(self, deployment: Obj, new: Obj, sets: list[Obj]) -> None:
        """The new ReplicaSet carries the highest revision; the Deployment repeats it."""
        others = [rs for rs in sets if rs["metadata"]["uid"] != new["metadata"]["uid"]]
        revision = _revision_of(new)
        if revision <= _max_revision(others):
            revision = _max_revision(others) + 1
            self._set(REPLICA_SETS, new, ("metadata", "annotations", REVISION), str(revision))
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != str(revision):
            self._set(DEPLOYMENTS, deployment, ("metadata", "annotations", REVISION), str(revision))

    def _prune_history(self, deployment: Obj, old: list[Obj]) -> None:
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = sorted(
            (
                rs
                for rs in old
                if not int(rs["spec"].get("replicas", 0))
                and not int((rs.get("status") or {}).get("replicas", 0))
            ),
            key=_revision_of,
        )
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.delete(REPLICA_SETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, deployment: Obj) -> None:
        spec = deployment["spec"]
        sets = self._owned(REPLICA_SETS, deployment)
        new = next((rs for rs in sets if _template_of(rs) == spec["template"]), None)
        desired = int(spec.get("replicas", 1))

        def total(field: str, among: list[Obj]) -> int:
            return sum(int((rs.get("status") or {}).get(field, 0)) for rs in among)

        updated = total("replicas", [new]) if new else 0
        available = total("availableReplicas", sets)
        replicas = total("replicas", sets)
        old = status = deployment.get("status") or {}
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, up=False)
        status = _without_zeros(
            {
                "observedGeneration": deployment["metadata"].get("generation", 1),
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": total("readyReplicas", sets),
                "availableReplicas": available,
                "unavailableReplicas": max(0, desired - available),
            }
        )
        if "collisionCount" in old:
            status["collisionCount"] = old["collisionCount"]
        conditions = {c["type"]: c for c in old.get("conditions") or []}
        now = self.store.clock.stamp()
        if available >= desired - unavailable:
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
        complete = (
            new is not None
            and updated == desired
            and replicas == desired
            and available == desired
            and int(new["spec"].get("replicas", 0)) == desired
        )
        progressed = _counts(old) != _counts(status) or new is None
        if spec.get("paused"):
            _condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
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
            or progressing.get("reason") in ("NewReplicaSetAvailable", "DeploymentPaused")
            or progressed
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
        elif progressing.get("reason") != "ProgressDeadlineExceeded":
            deadline = int(spec.get("progressDeadlineSeconds", 600))
            last = progressing.get("lastUpdateTime", now)
            if _seconds_between(last, now) > deadline:
                _condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{name}" has timed out progressing.',
                    now,
                )
        status["conditions"] = [
            conditions[t] for t in ("Available", "Progressing") if t in conditions
        ]
        if old != status:
            self._set(DEPLOYMENTS, deployment, ("status",), status, "status")


def _counts(status: Obj) -> tuple[int, ...]:
    return tuple(
        int(status.get(f, 0))
        for f in ("replicas", "updatedReplicas", "availableReplicas", "observedGeneration")
    )


def _condition(
    conditions: dict[str, Obj],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    refresh: bool = False,
) -> None:
    """Set a condition the way the controller does: lastTransitionTime moves when the status
    does, lastUpdateTime when anything does (or on ``refresh``: progress was made)."""
    current = conditions.get(kind)
    if (
        current
        and (current["status"], current["reason"], current["message"]) == (status, reason, message)
        and not refresh
    ):
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


def _seconds_between(earlier: str, later: str) -> float:
    import datetime

    def parse(stamp: str) -> datetime.datetime:
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")

    return (parse(later) - parse(earlier)).total_seconds()


def _resolve(value: int | str, total: int, up: bool) -> int:
    """maxSurge (rounded up) / maxUnavailable (rounded down): an int or a percentage."""
    if isinstance(value, int):
        return value
    percent = float(str(value).rstrip("%")) * total / 100
    return math.ceil(percent) if up else math.floor(percent)


def _template_of(rs: Obj) -> Obj:
    template: Obj = copy.deepcopy(rs["spec"]["template"])
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return template


def _revision_of(rs: Obj) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def _max_revision(sets: list[Obj]) -> int:
    return max((_revision_of(rs) for rs in sets), default=0)


def _owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _without_zeros(status: dict[str, int]) -> Obj:
    """Status fields as the API serialises them (``omitempty``: zero counts are absent)."""
    return {k: v for k, v in status.items() if v}
