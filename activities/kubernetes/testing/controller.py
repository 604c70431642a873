"""A Deployment controller, ReplicaSet controller, garbage collector and kubelet, simulated.

Tests advance it explicitly: :meth:`DeploymentController.step` runs one round (the clock
moves ``step_seconds``), :meth:`DeploymentController.settle` runs rounds until nothing
changes. With :meth:`DeploymentController.auto_advance` it runs a round before each API
request and whenever a watch has nothing to send (deterministic: no timers, no threads).
The arithmetic (budgets, sizes, status, conditions) is in :mod:`.rollouts`; here are the
rounds and the writes, all through the store, so watchers see every change. Pods of an
image declared broken never become ready (as with ``ImagePullBackOff``).
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from typing import TYPE_CHECKING

from activities.kubernetes.testing import rollouts
from activities.kubernetes.testing.resources import DEPLOYMENTS, PODS, REPLICA_SETS, Kind
from activities.kubernetes.testing.rollouts import (
    HASH_LABEL,
    REVISION,
    max_revision,
    owner_reference,
    pod_ready,
    replicas_of,
    revision_of,
    status_count,
    template_of,
)
from activities.kubernetes.testing.store import Obj, Store, safe_hash

if TYPE_CHECKING:
    from activities.kubernetes.testing.api import ApiServerDouble


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

    def fail_readiness(self, namespace: str, deployment: str) -> list[str]:
        """The pods ``deployment`` runs now fail their readiness probe (Running, not Ready)
        and stay so until they are replaced (a restart, a new template); their names."""
        with self.store.lock:
            found = self.store.get(DEPLOYMENTS, namespace, deployment)
            now = self.store.clock.stamp()
            failed = []
            for rs in self._owned(REPLICA_SETS, found):
                for pod in self._owned(PODS, rs):
                    status = copy.deepcopy(pod.get("status") or {})
                    status["conditions"] = [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "ContainersNotReady",
                            "lastTransitionTime": now,
                        }
                    ]
                    for container in status.get("containerStatuses") or []:
                        container["ready"] = False
                    self._set(PODS, pod, ("status",), status, "status")
                    failed.append(pod["metadata"]["name"])
            return failed

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
        """Step until nothing changes, not even a pending progress deadline (the clock then
        jumps to it); the number of rounds that changed something."""
        changed = 0
        for _ in range(max_steps):
            if self.step():
                changed += 1
                continue
            now = self.store.clock.stamp()
            wait = min(
                (rollouts.deadline_in(d, now) for d in self._all(DEPLOYMENTS)), default=math.inf
            )
            if wait == math.inf:
                return changed
            self.store.clock.advance(max(0.0, wait))
        raise RuntimeError(f"the simulated cluster did not settle within {max_steps} steps")

    def _before_request(self) -> None:
        if self._auto:
            self.step()

    def _on_idle_watch(self) -> bool:
        return self._auto and self.step()

    # -- helpers ---------------------------------------------------------------------------

    def _all(self, kind: Kind) -> list[Obj]:
        return self.store.objects(kind, None)[0]

    def _owned(self, kind: Kind, owner: Obj) -> list[Obj]:
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
        self,
        kind: Kind,
        obj: Obj,
        path: tuple[str, ...],
        value: object,
        subresource: str | None = None,
    ) -> None:
        def mutate(target: Obj) -> None:
            node = target
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value

        meta = obj["metadata"]
        self.store.write(kind, meta.get("namespace", ""), meta["name"], mutate, subresource)

    def _resize(self, rs: Obj, replicas: int) -> None:
        self._set(REPLICA_SETS, rs, ("spec", "replicas"), replicas)

    # -- garbage collector and kubelet -----------------------------------------------------

    def _collect_garbage(self) -> None:
        """Dependents whose controlling owner is gone are deleted (background propagation)."""
        for kind, owner_kind in ((REPLICA_SETS, DEPLOYMENTS), (PODS, REPLICA_SETS)):
            owners = {o["metadata"]["uid"] for o in self._all(owner_kind)}
            for obj in self._all(kind):
                refs = [
                    r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")
                ]
                if refs and refs[0].get("uid") not in owners:
                    self.store.delete(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _kubelet(self) -> None:
        """Pods start (Running, Ready) one round after they are created, unless an image is
        broken: then they wait in ImagePullBackOff, not ready, for good."""
        now = self.store.clock.stamp()
        for pod in self._all(PODS):
            status = pod.get("status") or {}
            if status.get("phase") == "Running":
                continue
            containers = (pod.get("spec") or {}).get("containers") or []
            broken = next(
                (c["image"] for c in containers if c.get("image") in self.broken_images), None
            )
            if broken is not None:
                state: Obj = {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{broken}"',
                    }
                }
                new: Obj = {
                    "phase": "Pending",
                    "conditions": [
                        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
                    ],
                }
            else:
                state = {"running": {"startedAt": now}}
                new = {
                    "phase": "Running",
                    "startTime": now,
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                }
            new["containerStatuses"] = [
                {
                    "name": c.get("name"),
                    "image": c.get("image"),
                    "ready": broken is None,
                    "restartCount": 0,
                    "state": state,
                    "imageID": ""
                    if broken
                    else f"{c.get('image')}@sha256:{safe_hash(str(c.get('image')), 64)}",
                }
                for c in containers
            ]
            if status != new:
                self._set(PODS, pod, ("status",), new, "status")

    # -- replica sets ----------------------------------------------------------------------

    def _sync_replica_set(self, rs: Obj) -> None:
        """Create or delete pods to match ``spec.replicas`` (not-ready and newest go first)."""
        pods = self._owned(PODS, rs)
        want = replicas_of(rs)
        namespace, rs_name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        doomed = sorted(pods, key=lambda p: (pod_ready(p), p["metadata"]["creationTimestamp"]))
        for pod in doomed[: max(0, len(pods) - want)]:
            self.store.delete(PODS, namespace, pod["metadata"]["name"])
        for _ in range(want - len(pods)):
            self._pods_made += 1
            template = copy.deepcopy(rs["spec"]["template"])
            name = f"{rs_name}-{safe_hash(rs_name + str(self._pods_made), 5)}"
            self.store.create(
                PODS,
                namespace,
                {
                    "metadata": {
                        **(template.get("metadata") or {}),
                        "name": name,
                        "ownerReferences": [owner_reference(rs)],
                    },
                    "spec": template.get("spec") or {},
                },
            )

    def _replica_set_status(self, rs: Obj) -> None:
        pods = self._owned(PODS, rs)
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        now = self.store.clock.now()
        ready = [p for p in pods if pod_ready(p)]
        available = [p for p in ready if (now - _ready_since(p)).total_seconds() >= min_ready]
        status = {"replicas": len(pods)} | rollouts.without_zeros(
            {
                "fullyLabeledReplicas": len(pods),
                "readyReplicas": len(ready),
                "availableReplicas": len(available),
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
        )
        if (rs.get("status") or {}) != status:
            self._set(REPLICA_SETS, rs, ("status",), status, "status")

    # -- deployments -----------------------------------------------------------------------

    def _sync_deployment(self, deployment: Obj) -> None:
        spec = deployment["spec"]
        if spec.get("paused"):
            return
        sets = self._owned(REPLICA_SETS, deployment)
        new = next((rs for rs in sets if template_of(rs) == spec["template"]), None)
        old = [rs for rs in sets if rs is not new]
        desired = int(spec.get("replicas", 1))
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            if any(replicas_of(rs) for rs in old):  # first every old pod goes
                for rs in old:
                    self._resize(rs, 0)
            elif not any(status_count(rs, "replicas") for rs in old):  # then the new ones come
                new = new or self._create_replica_set(deployment, sets, 0)
                if replicas_of(new) != desired:
                    self._resize(new, desired)
                self._revision(deployment, new, sets)
            return
        surge, unavailable = rollouts.budgets(spec)
        if new is None:
            created = self._create_replica_set(
                deployment, sets, rollouts.first_size(desired, surge, old)
            )
            self._revision(deployment, created, sets)
            return
        self._revision(deployment, new, sets)
        by_name = {rs["metadata"]["name"]: rs for rs in sets}
        for name, size in rollouts.rolling_sizes(new, old, desired, surge, unavailable).items():
            self._resize(by_name[name], size)
        self._prune_history(deployment, old)

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
                        REVISION: str(max_revision(sets) + 1),
                        "deployment.kubernetes.io/desired-replicas": str(
                            deployment["spec"]["replicas"]
                        ),
                    },
                    "ownerReferences": [owner_reference(deployment)],
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
        """The new ReplicaSet carries the highest revision (an old one that becomes new again
        gets the next one); the Deployment repeats it."""
        others = max_revision(
            [rs for rs in sets if rs["metadata"]["uid"] != new["metadata"]["uid"]]
        )
        revision = revision_of(new)
        if revision <= others:
            revision = others + 1
            self._set(REPLICA_SETS, new, ("metadata", "annotations", REVISION), str(revision))
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != str(revision):
            self._set(DEPLOYMENTS, deployment, ("metadata", "annotations", REVISION), str(revision))

    def _prune_history(self, deployment: Obj, old: list[Obj]) -> None:
        """Old ReplicaSets without pods beyond ``revisionHistoryLimit`` go, oldest first."""
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = sorted(
            (rs for rs in old if not replicas_of(rs) and not status_count(rs, "replicas")),
            key=revision_of,
        )
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.delete(REPLICA_SETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, deployment: Obj) -> None:
        sets = self._owned(REPLICA_SETS, deployment)
        new = next((rs for rs in sets if template_of(rs) == deployment["spec"]["template"]), None)
        status = rollouts.deployment_status(deployment, sets, new, self.store.clock.stamp())
        if (deployment.get("status") or {}) != status:
            self._set(DEPLOYMENTS, deployment, ("status",), status, "status")


def _ready_since(pod: Obj) -> datetime.datetime:
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    return rollouts.parse_stamp(ready["lastTransitionTime"])
