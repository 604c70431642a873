"""Canary, rolling and recreate on Kubernetes, end to end under time skipping: the real
platform activities against the API server double (its controller advancing on its own)
and the nop router; assertions on the Deployments as stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from activities.platforms.deployments import with_image
from tests.fixtures.harness import poll
from tests.workflows.kube_cluster import cluster, finished, kube_rollout, kube_worker, start
from workflows.core.verbs import OperatorInput
from workflows.rollouts.models import RolloutPhase, RolloutResult

NEW_IMAGE = "registry.example.com/shop/checkout:v2"
BROKEN_IMAGE = "registry.example.com/shop/checkout:v9"
ANALYSIS = {"analysis": {"templates": [{"templateName": "error-rate"}]}}
CANARY = {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30m"}}, ANALYSIS]}}
HELD = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
ROLLING = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}


def images(deployment: dict[str, Any]) -> list[str]:
    return [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]


async def test_a_canary_on_kubernetes_is_promoted_the_flagger_way(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        before = found.deployment()
        spec = kube_rollout(CANARY)
        _, result = await finished(temporal_env, found, spec)

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        stable = found.deployment()
        wanted = with_image(before["spec"]["template"], "app", NEW_IMAGE, "v2")
        assert stable["spec"]["template"] == wanted
        assert stable["status"]["updatedReplicas"] == stable["status"]["availableReplicas"] == 3
        canary = found.deployment("checkout-canary")
        assert images(canary) == [NEW_IMAGE, "envoy:1.30"]
        assert canary["spec"]["replicas"] == 0
        assert found.weights(spec).stable == 100  # traffic back on the (promoted) stable
        kinds = [e.kind for e in result.events]
        # recorded, canary up, traffic shifted, then the stable Deployment promoted
        shifted = kinds.index("weights")
        assert (
            kinds.index("stable") < kinds.index("canary") < shifted < kinds.index("stable", shifted)
        )


async def test_an_aborted_canary_restores_nothing_changed_and_scales_the_canary_to_zero(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        before = found.deployment()

        async def canary_is_up() -> None:
            assert found.deployment("checkout-canary")["spec"]["replicas"] == 3

        spec = kube_rollout(HELD)
        _, result = await finished(temporal_env, found, spec, when_paused=canary_is_up)

        assert result.outcome is RolloutPhase.ABORTED
        stable = found.deployment()
        assert stable["spec"]["template"] == before["spec"]["template"]
        assert stable["metadata"]["generation"] == before["metadata"]["generation"]
        assert found.deployment("checkout-canary")["spec"]["replicas"] == 0
        assert found.weights(spec).canary == 0


async def test_a_canary_failing_analysis_rolls_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        found.measure_values = lambda n: [0.5]
        before = found.deployment()
        spec = kube_rollout({"canary": {"steps": [{"setWeight": 20}, ANALYSIS]}})
        _, result = await finished(temporal_env, found, spec)

        assert result.outcome is RolloutPhase.ROLLED_BACK
        assert "analysis step-1 Failed" in result.reason
        assert found.deployment()["spec"]["template"] == before["spec"]["template"]
        assert found.deployment("checkout-canary")["spec"]["replicas"] == 0
        assert found.weights(spec).canary == 0


async def test_rolling_on_kubernetes_is_the_deployments_own_rolling_update(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        spec = kube_rollout(ROLLING)
        _, result = await finished(temporal_env, found, spec)

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        stable = found.deployment()
        assert images(stable) == [NEW_IMAGE, "envoy:1.30"]
        assert stable["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
        assert stable["status"]["availableReplicas"] == 3


async def test_a_stuck_rollout_passes_its_progress_deadline_and_is_rolled_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        before = found.deployment()
        found.server.controller.break_image(BROKEN_IMAGE)
        spec = kube_rollout({"recreate": {}}, version="v9", progressDeadlineSeconds=20)
        _, result = await finished(temporal_env, found, spec)

        assert result.outcome is RolloutPhase.ROLLED_BACK
        assert "deployment 'checkout' exceeded its progress deadline" in result.reason
        stable = found.deployment()
        assert stable["spec"]["template"] == before["spec"]["template"]
        assert stable["spec"]["strategy"] == before["spec"]["strategy"]
        assert stable["spec"]["progressDeadlineSeconds"] == 60
        assert stable["status"]["availableReplicas"] == 3


async def paused_mid_update(found: Any, handle: Any) -> dict[str, Any]:
    """Hold the controller until the rolling update has begun, then ``pause``: the
    Deployment is paused where it is (``kubectl rollout pause``)."""
    found.server.controller.auto_advance(False)
    await poll(lambda: images(found.deployment())[0] == NEW_IMAGE, "the update begun")
    found.server.controller.step()  # one round: the update is under way, not done
    await handle.execute_update("pause", OperatorInput(by="alice", reason="latency"))
    await poll(lambda: found.deployment()["spec"].get("paused"), "the Deployment paused")
    found.server.controller.auto_advance()
    held = found.deployment()
    found.server.controller.step()
    found.server.controller.step()
    after = found.deployment()
    assert after["status"].get("updatedReplicas") == held["status"].get("updatedReplicas")
    reasons = [c.get("reason") for c in after["status"]["conditions"]]
    assert "DeploymentPaused" in reasons
    return after


async def test_pause_during_a_rolling_update_pauses_the_deployment_and_resume_finishes_it(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found, kube_worker(temporal_env, found) as tq:
        spec = kube_rollout(ROLLING)
        handle = await start(temporal_env, tq, spec)
        held = await paused_mid_update(found, handle)
        assert held["status"]["updatedReplicas"] < 3

        await handle.execute_update("resume", OperatorInput(by="alice", reason="fine"))
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        stable = found.deployment()
        assert stable["spec"].get("paused") is False
        assert images(stable) == [NEW_IMAGE, "envoy:1.30"]
        assert stable["status"]["availableReplicas"] == 3
        said = [e.message for e in result.events if e.kind == "stable"]
        assert any("paused mid-update" in m for m in said)
        assert any("resumed" in m for m in said)


async def test_an_abort_while_paused_mid_update_unpauses_and_restores_the_template(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found, kube_worker(temporal_env, found) as tq:
        before = found.deployment()
        spec = kube_rollout(ROLLING)
        handle = await start(temporal_env, tq, spec)
        await paused_mid_update(found, handle)

        await handle.execute_update("abort", OperatorInput(by="alice", reason="bad"))
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ABORTED, result.reason
        stable = found.deployment()
        assert stable["spec"].get("paused") is False
        assert stable["spec"]["template"] == before["spec"]["template"]
        assert stable["status"]["availableReplicas"] == 3


async def test_promote_full_while_paused_mid_update_unpauses_and_finishes_it(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found, kube_worker(temporal_env, found) as tq:
        handle = await start(temporal_env, tq, kube_rollout(ROLLING))
        await paused_mid_update(found, handle)
        found.server.controller.auto_advance(False)  # the update cannot end before the pause

        await handle.execute_update("promote_full", OperatorInput(by="alice", reason="ship"))
        await poll(lambda: found.deployment()["spec"].get("paused") is False, "unpaused")
        # A pause after promote_full holds nothing: the update runs to its end.
        await handle.execute_update("pause", OperatorInput(by="alice", reason="oops"))
        found.server.controller.auto_advance()
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        stable = found.deployment()
        assert stable["spec"].get("paused") is False
        assert stable["status"]["availableReplicas"] == 3
        assert images(stable) == [NEW_IMAGE, "envoy:1.30"]
