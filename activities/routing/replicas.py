"""Replica-count router: Argo's basic canary, where a weight is a number of pods.

    router:
      replicas: {deployment: checkout, namespace: shop, replicas: 4, service: checkout}

No traffic router: one Service selects the pods of the team's Deployment and of
deployflow's ``checkout-canary`` alike, so each version gets the share of requests its pods
are of all pods. ``set_weights`` scales the two Deployments to the split
(``replica_counts``, as Argo's controller rounds it) keeping the total at ``replicas``: the
side that grows first, waited for until its pods are available, then the side that
shrinks, so the service never runs on fewer pods than it had. A rollback's ``stable 100``
scales the stable Deployment back up and the canary to zero. Each change is a merge patch
of one Deployment's ``spec.replicas`` guarded by the resourceVersion just read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

import structlog
from temporalio.exceptions import ApplicationError

from activities import errors
from activities.errors import INVALID_SPEC, failure
from activities.kubeconfig import KubeClients
from activities.platforms.deployments import rollout_progress
from activities.platforms.kubernetes import KubernetesDeployments
from activities.platforms.spec import DeploymentTarget
from activities.routing.base import Weights
from activities.routing.kube import MERGE_PATCH, Api, Obj, Patch, namespaced, optimistically
from activities.routing.kube_spec import ReplicasRouterSpec

log = structlog.get_logger()

TOTAL: Final = "deployflow.io/replicas"
"""Annotation on the stable Deployment while the canary has pods and the spec names no
``replicas``: the total both keep, so a retry after a lost worker splits the same count."""
WAIT_SECONDS: Final = 50
"""How long one ``set_weights`` waits for pods to become available before it fails
retryably (inside the router activities' 75 s start-to-close; the retry waits again)."""


def replica_counts(canary_weight: int, total: int) -> tuple[int, int]:
    """``(stable, canary)`` pods for ``canary_weight`` % of ``total``: the canary count
    nearest the weight (a tie rounds up), and between 1 and 99 % at least one pod on each
    side — with a single replica that is one pod each, as Argo's default surge allows."""
    if canary_weight == 0 or total == 0:
        return total, 0
    if canary_weight == 100:
        return 0, total
    if total == 1:
        return 1, 1
    canary = min(max((total * canary_weight + 50) // 100, 1), total - 1)
    return total - canary, canary


def replica_weights(stable: int, canary: int) -> Weights:
    """The split ``stable`` and ``canary`` pods give a Service selecting both (no pods at
    all: stable 100); a side with pods never reads as 0 %."""
    if canary == 0:
        return Weights(stable=100, canary=0)
    if stable == 0:
        return Weights(stable=0, canary=100)
    share = min(max((100 * canary + (stable + canary) // 2) // (stable + canary), 1), 99)
    return Weights.canary_at(share)


def replicas_patch(
    deployment: Obj, replicas: int | None, annotations: Mapping[str, str | None] | None = None
) -> Patch | None:
    """The merge patch giving ``deployment`` ``replicas`` (None: as it is) and
    ``annotations`` (None removes one), guarded by its resourceVersion; None when it
    already has them."""
    metadata: Obj = {}
    current = deployment["metadata"].get("annotations") or {}
    changed = {k: v for k, v in (annotations or {}).items() if current.get(k) != v}
    if changed:
        metadata["annotations"] = changed
    body: Obj = {}
    if replicas is not None and deployment["spec"].get("replicas", 1) != replicas:
        body["spec"] = {"replicas": replicas}
    if not body and not metadata:
        return None
    metadata["resourceVersion"] = deployment["metadata"]["resourceVersion"]
    return Patch({"metadata": metadata, **body}, MERGE_PATCH)


def _replicas(deployment: Obj | None) -> int:
    return 0 if deployment is None else int(deployment["spec"].get("replicas", 1))


class ReplicasRouter:
    """Scales the stable Deployment and ``<deployment>-canary`` to a weight's pod counts."""

    def __init__(self, spec: ReplicasRouterSpec, clusters: KubeClients) -> None:
        self.spec = spec
        client = clusters.api(spec.context)
        self.api = Api(client)
        target = DeploymentTarget(
            name=spec.deployment, namespace=spec.namespace, context=spec.context
        )
        self.deployments = KubernetesDeployments(target, client)

    def set_weights(self, weights: Weights) -> None:
        stable, canary = self._read()
        total = self._total(stable, canary)
        stable_wanted, canary_wanted = replica_counts(weights.canary, total)
        if canary is None and canary_wanted:
            raise failure(
                errors.KUBERNETES_OBJECT_MISSING,
                f"{self._what(self.spec.canary_deployment)} does not exist: the rollout creates "
                "it before the first setWeight",
            )
        recorded = str(total) if canary_wanted and self.spec.replicas is None else None
        mark = {TOTAL: recorded}
        ends = time.monotonic() + WAIT_SECONDS
        if canary_wanted > _replicas(canary):
            # The total is recorded before the canary grows: a retry splits the same count.
            self._scale(self.spec.deployment, None, mark)
            self._scale(self.spec.canary_deployment, canary_wanted)
        if stable_wanted > _replicas(stable):
            self._scale(self.spec.deployment, stable_wanted, mark)
        # Whatever is to serve is available before anything shrinks (also on a retry that
        # finds the growth already made).
        if canary_wanted:
            self._available(self.spec.canary_deployment, ends)
        if stable_wanted:
            self._available(self.spec.deployment, ends)
        if canary is not None and canary_wanted < _replicas(canary):
            self._scale(self.spec.canary_deployment, canary_wanted)
        self._scale(self.spec.deployment, stable_wanted, mark)
        log.info(
            "replicas_set",
            deployment=self._what(self.spec.deployment),
            stable=stable_wanted,
            canary=canary_wanted,
        )

    def get_weights(self) -> Weights:
        stable, canary = self._read()
        return replica_weights(_replicas(stable), _replicas(canary))

    # -- machinery ---------------------------------------------------------------------

    def _read(self) -> tuple[Obj, Obj | None]:
        name, canary_name = self.spec.deployment, self.spec.canary_deployment
        stable = self.api.get(self._path(name), self._what(name))
        canary = self.api.find(self._path(canary_name), self._what(canary_name))
        if self.spec.service is not None:
            self._check_service(stable, canary)
        return stable, canary

    def _total(self, stable: Obj, canary: Obj | None) -> int:
        """The spec's ``replicas``, else the total recorded on the stable Deployment, else
        every pod both run now (at rest: the stable Deployment's own count)."""
        if self.spec.replicas is not None:
            return self.spec.replicas
        recorded = (stable["metadata"].get("annotations") or {}).get(TOTAL, "")
        if recorded.isdigit():
            return int(recorded)
        return _replicas(stable) + _replicas(canary)

    def _scale(
        self, name: str, replicas: int | None, annotations: Mapping[str, str | None] | None = None
    ) -> bool:
        path, what = self._path(name), self._what(name)

        def attempt() -> bool:
            patch = replicas_patch(self.api.get(path, what), replicas, annotations)
            if patch is None:
                return False
            self.api.patch(path, patch, what)
            return True

        return optimistically(f"scale {what}", attempt)

    def _available(self, name: str, ends: float) -> None:
        """Until ``name``'s pods are all available; ``KubernetesRolloutFailed`` past its
        progress deadline, retryable ``KubernetesRequestFailed`` after ``WAIT_SECONDS``."""
        try:
            self.deployments.wait(name, max(1.0, ends - time.monotonic()))
        except ApplicationError as exc:
            if exc.type != errors.KUBERNETES_ROLLOUT_FAILED:
                raise
            deployment = self.api.get(self._path(name), self._what(name))
            if rollout_progress(deployment).failed:
                raise
            raise failure(
                errors.KUBERNETES_REQUEST_FAILED,
                f"{self._what(name)}: pods not available within {WAIT_SECONDS} s "
                f"({rollout_progress(deployment).message}); waiting again",
            ) from None

    def _check_service(self, stable: Obj, canary: Obj | None) -> None:
        """The spec's Service selects the pods of both Deployments, or no weight is real."""
        name = self.spec.service
        assert name is not None
        what = f"Service {self.spec.namespace}/{name}"
        service = self.api.get(namespaced("v1", self.spec.namespace, "services", name), what)
        selector: dict[str, str] = service.get("spec", {}).get("selector") or {}
        for deployment in (stable, canary):
            if deployment is None:
                continue
            labels = deployment["spec"]["template"].get("metadata", {}).get("labels") or {}
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                raise failure(
                    INVALID_SPEC,
                    f"router replicas: {what} selects {selector}, which does not match the "
                    f"pods of {self._what(deployment['metadata']['name'])} ({labels}): "
                    "select a label both Deployments' pods carry (not one of the stable "
                    "selector's, which the canary's pods carry suffixed -canary)",
                )

    def _path(self, name: str) -> str:
        return namespaced("apps/v1", self.spec.namespace, "deployments", name)

    def _what(self, name: str) -> str:
        return f"deployment {self.spec.context or 'default'}/{self.spec.namespace}/{name}"
