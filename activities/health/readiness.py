"""Pure: a Deployment's health as its pods' readiness, judged on the API server's JSON.

A monitor asks ``check_readiness`` (:mod:`activities.health.deployments`) about a Deployment
it names; the answer is a :class:`ReadinessReport`, never an exception for an unhealthy or
missing Deployment. Healthy is what the Deployment controller says: the ``Available``
condition True and ``availableReplicas`` at ``spec.replicas`` (a Deployment scaled to 0 is
healthy, as Kubernetes judges it). A Deployment in the middle of a rollout (its spec not
yet observed, or fewer updated replicas than wanted, old ones still running) is
``rollingOut``: not healthy, but not something a restart should interrupt. One past its
progress deadline is unhealthy.
"""

from __future__ import annotations

from typing import Any

from activities.model import Model
from activities.platforms.deployments import rollout_progress
from activities.platforms.spec import KubernetesPlatformSpec


class CheckReadinessInput(Model):
    """The Deployment (``platform.kubernetes.deployment``'s name, namespace, context)."""

    platform: KubernetesPlatformSpec
    key: str


class ReadinessReport(Model):
    """``error`` set: the API server could not be asked (the check is inconclusive)."""

    deployment: str
    healthy: bool
    rolling_out: bool = False
    replicas: int = 0
    available_replicas: int = 0
    message: str
    error: str | None = None


def readiness(deployment: dict[str, Any], where: str) -> ReadinessReport:
    """Judge ``deployment`` (the API server's JSON); ``where`` names it for people."""
    meta, spec = deployment.get("metadata", {}), deployment.get("spec", {})
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    available = int(status.get("availableReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    report = ReadinessReport(
        deployment=where,
        healthy=False,
        replicas=wanted,
        available_replicas=available,
        message=f"{available} of {wanted} replicas available",
    )
    progress = rollout_progress(deployment)
    if progress.failed:
        return report.model_copy(update={"message": progress.message})
    rolling = (
        meta.get("generation", 0) > status.get("observedGeneration", 0)
        or updated < wanted
        or int(status.get("replicas", 0)) > updated
    )
    if rolling:
        return report.model_copy(
            update={"rolling_out": True, "message": f"rolling out: {progress.message}"}
        )
    available_condition = conditions.get("Available") or {}
    if wanted > 0 and available_condition.get("status") != "True":
        why = available_condition.get("message") or "no Available condition"
        return report.model_copy(update={"message": f"{report.message}; {why}"})
    if available < wanted:
        return report
    return report.model_copy(update={"healthy": True})


def missing(where: str) -> ReadinessReport:
    """A Deployment that does not exist: nothing serves."""
    return ReadinessReport(deployment=where, healthy=False, message="deployment not found")
