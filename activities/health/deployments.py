"""The ``check_readiness`` activity: a monitor's look at a Kubernetes Deployment's pods.

Sync ``def`` on the worker's thread pool: one GET with the client's timeout
(``activities/kubeconfig.py``), judged by :func:`activities.health.readiness.readiness`. An
unready or missing Deployment is a result; an API server that cannot answer (5xx, 403, a
broken connection) raises the platform's ``ApplicationError``, which the monitor turns
into an inconclusive finding once its retries are spent.
"""

from __future__ import annotations

import time

import structlog
from temporalio import activity

from activities.clients import Clients
from activities.health.readiness import CheckReadinessInput, ReadinessReport, missing, readiness
from activities.log_fields import attempt, ms_since
from activities.platforms.factory import deployments_for

log = structlog.get_logger()


class ReadinessActivities:
    """The readiness check, reading Deployments with the worker's ``clients``."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    @activity.defn(name="check_readiness")
    def check_readiness(self, input: CheckReadinessInput) -> ReadinessReport:
        """Whether every replica of the Deployment is available (or it is rolling out)."""
        started = time.monotonic()
        where = input.platform.deployment.describe()
        found = deployments_for(input.platform, self.clients).read("stable")
        report = missing(where) if found is None else readiness(found, where)
        log.info(
            "kubernetes_readiness",
            key=input.key,
            deployment=where,
            healthy=report.healthy,
            rolling_out=report.rolling_out,
            message=report.message,
            attempt=attempt(),
            duration_ms=ms_since(started),
        )
        return report
