"""A rollout's own promotion and rollback write only onto the Deployment the run recorded:
the team's Deployment deleted and created again mid-run (another uid) is someone else's
object, left as it is, and the run ends saying so, naming both uids. Under time skipping,
the real platform activities against the API server double."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kubernetes import client
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.errors import KUBERNETES_REQUEST_FAILED
from activities.kubernetes.testing import DEFAULT_CONTEXT
from activities.platforms.models import SetStableInput, WorkloadState
from tests.workflows.harness import wait_for_status
from tests.workflows.kube_cluster import (
    NAMESPACE,
    Cluster,
    cluster,
    finished,
    kube_rollout,
    kube_worker,
    start,
    team_deployment,
)
from workflows.core.verbs import OperatorInput
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.spec import Rollout

HELD = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
ROLLING = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}


def recreate(found: Cluster) -> dict[str, Any]:
    """What a team does by hand: delete its Deployment and apply it again (another pod
    template this time); returns the new one as stored."""
    apps = client.AppsV1Api(found.clients.kubernetes.api(DEFAULT_CONTEXT))
    apps.delete_namespaced_deployment("checkout", NAMESPACE)
    again = team_deployment()
    again["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "c"}]
    apps.create_namespaced_deployment(NAMESPACE, again)
    found.server.controller.settle()
    return found.deployment()


def untouched(found: Cluster, replaced: dict[str, Any]) -> None:
    live = found.deployment()
    assert live["metadata"]["uid"] == replaced["metadata"]["uid"]
    assert live["spec"]["template"] == replaced["spec"]["template"]
    assert live["metadata"]["generation"] == replaced["metadata"]["generation"]
    assert "deployflow.io/rollout" not in (live["metadata"].get("annotations") or {})


async def promoted_onto_a_recreated_deployment(
    env: WorkflowEnvironment, found: Cluster, spec: Rollout
) -> tuple[WorkflowHandle[Any, Any], dict[str, Any]]:
    """``spec`` (HELD) up to its pause; the Deployment recreated; then promoted."""
    async with kube_worker(env, found) as tq:
        handle = await start(env, tq, spec)
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED, timeout=60)
        replaced = recreate(found)
        await handle.execute_update("promote", OperatorInput(by="alice", reason="ok"))
        await handle.result()
        return handle, replaced


async def test_a_promotion_onto_a_recreated_deployment_is_refused_and_rolled_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        recorded = found.deployment()["metadata"]["uid"]
        spec = kube_rollout(HELD)
        handle, replaced = await promoted_onto_a_recreated_deployment(temporal_env, found, spec)
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ROLLED_BACK, result.reason
        new = replaced["metadata"]["uid"]
        assert result.reason.startswith("promotion: roll checkout out at v2 failed: ")
        assert f"(uid {new}, recorded {recorded})" in result.reason
        assert result.reason.endswith("(KubernetesObjectReplaced)")
        untouched(found, replaced)
        assert found.weights(spec).stable == 100
        kinds = [e.kind for e in result.events]
        stopping = kinds.index("stopping")
        # traffic back on stable first; the restore is refused too, and said so
        assert kinds.index("weights", stopping) < kinds.index("restore", stopping)
        restore = next(e.message for e in result.events if e.kind == "restore")
        assert restore.startswith("recorded pod template not put back: deployment ")
        assert f"(uid {new}, recorded {recorded})" in restore
        assert result.stable is not None
        assert result.stable.uid == recorded


async def test_a_rollback_leaves_a_deployment_recreated_after_its_update_alone(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        recorded = found.deployment()["metadata"]["uid"]
        replaced: dict[str, Any] = {}
        real = next(a for a in found.activities() if getattr(a, "__name__", "") == "set_stable")
        calls: list[SetStableInput] = []

        @activity.defn(name="set_stable")
        def set_stable(input: SetStableInput) -> WorkloadState:
            """The update lands on the recorded Deployment, then the worker loses the
            answer while the team deletes and re-applies it: the retry finds another uid."""
            calls.append(copy.deepcopy(input))
            state: WorkloadState = real(input)
            if len(calls) == 1:
                replaced.update(recreate(found))
                raise ApplicationError("connection lost", type=KUBERNETES_REQUEST_FAILED)
            return state

        others = [a for a in found.activities() if getattr(a, "__name__", "") != "set_stable"]
        found.activities = lambda: [*others, set_stable]  # type: ignore[method-assign]
        spec = kube_rollout(ROLLING)
        _, result = await finished(temporal_env, found, spec)

        assert result.outcome is RolloutPhase.ROLLED_BACK, result.reason
        new = replaced["metadata"]["uid"]
        assert [c.uid for c in calls] == [recorded] * 3  # the update, its retry, the restore
        assert result.reason.count(f"(uid {new}, recorded {recorded})") == 2
        assert "; recorded pod template not put back: deployment " in result.reason
        untouched(found, replaced)
        assert result.events[-1].kind != "rollback"  # no "retrying in 300s" loop
        assert not any(e.message.startswith("rollback attempt") for e in result.events)
