"""Blue-green, rolling and recreate on a stub fleet, with time skipping."""

from __future__ import annotations

import itertools
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.errors import MIGRATION_FAILED
from activities.routing.base import Weights
from tests.fixtures.harness import worker
from tests.workflows.fleet import CANARY, STABLE, Fleet, fleet_rollout
from tests.workflows.harness import wait_for_status
from workflows.core.verbs import OperatorInput
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.registry import BY_STRATEGY, workflow_type
from workflows.rollouts.spec import Rollout

ANALYSIS = {"templates": [{"templateName": "error-rate"}]}


def fleet_worker(env: WorkflowEnvironment, fleet: Fleet) -> AbstractAsyncContextManager[str]:
    return worker(env, list(BY_STRATEGY.values()), fleet.activities())


async def start(env: WorkflowEnvironment, tq: str, spec: Rollout) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        workflow_type(spec), spec, id=spec.workflow_id, task_queue=tq, result_type=RolloutResult
    )


async def run(env: WorkflowEnvironment, fleet: Fleet, spec: Rollout) -> RolloutResult:
    async with fleet_worker(env, fleet) as tq:
        result: RolloutResult = await (await start(env, tq, spec)).result()
        return result


# -- blue-green ---------------------------------------------------------------------


async def test_blue_green_deploys_checks_switches_then_scales_down(temporal_env):
    fleet = Fleet()
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}))
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.weights.canary == 100
    kinds = [c[0] for c in fleet.calls]
    switch = kinds.index("weights")
    assert set(kinds[:switch]) == {"deploy", "health", "smoke"}
    assert [c for c in fleet.calls if c[0] == "deploy"] == [("deploy", h, "v2") for h in CANARY]
    assert fleet.calls[switch + 1 :] == [("stop", h, None) for h in STABLE]
    assert {p.name: p.role for p in result.pools} == {"stable": "preview", "canary": "active"}


async def test_blue_green_next_rollout_deploys_to_the_other_pool(temporal_env):
    fleet = Fleet(weights=Weights(stable=0, canary=100))
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}, version="v3"))
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.actions("deploy") == [("deploy", h, "v3") for h in STABLE]
    assert fleet.weights.stable == 100


async def test_blue_green_failing_pre_promotion_analysis_never_switches(temporal_env):
    fleet = Fleet(measure_values=lambda n: [0.5])
    spec = fleet_rollout({"blueGreen": {"prePromotionAnalysis": ANALYSIS}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert "analysis pre-promotion Failed" in result.reason
    assert fleet.actions("weights") == []
    assert fleet.actions("stop") == [("stop", h, None) for h in CANARY]


async def test_blue_green_failing_post_promotion_analysis_switches_back(temporal_env):
    fleet = Fleet(measure_values=lambda n: [0.5])
    spec = fleet_rollout({"blueGreen": {"postPromotionAnalysis": ANALYSIS}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert fleet.actions("weights") == [("weights", 100), ("weights", 0)]
    assert fleet.weights.stable == 100
    assert fleet.actions("stop") == [("stop", h, None) for h in CANARY]


async def test_blue_green_failing_smoke_test_leaves_traffic_on_the_active_pool(temporal_env):
    fleet = Fleet(smoke_failures={CANARY[1]})
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}))
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason.startswith(f"smoke tests failed on {CANARY[1]}")
    assert fleet.actions("weights") == []


async def test_blue_green_unhealthy_preview_never_switches(temporal_env):
    fleet = Fleet(unhealthy={(CANARY[0], "v2")})
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}))
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason == f"health check failed on {CANARY[0]}: HTTP 503 (expected 200)"
    assert fleet.actions("weights") == []


async def test_blue_green_without_auto_promotion_waits_for_promote(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout({"blueGreen": {"autoPromotionEnabled": False}})
    async with fleet_worker(temporal_env, fleet) as tq:
        handle = await start(temporal_env, tq, spec)
        status = await wait_for_status(
            handle, lambda s: s.step == "promotion" and s.phase is RolloutPhase.PAUSED
        )
        assert fleet.actions("weights") == []
        assert "until promoted" in status.message
        await handle.execute_update("promote", OperatorInput(by="alice"), result_type=str)
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.actions("weights") == [("weights", 100)]


async def test_blue_green_old_pool_that_will_not_stop_still_ends_promoted(temporal_env):
    fleet = Fleet(platform_failures={("stop", STABLE[0])})
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}))
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.weights.canary == 100
    assert any(
        e.kind == "scale-down" and "connection refused (PlatformCommandFailed)" in e.message
        for e in result.events
    )


async def test_blue_green_scale_down_delay_is_honoured(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout({"blueGreen": {"scaleDownDelaySeconds": 600}})
    result = await run(temporal_env, fleet, spec)
    switched = next(e.at for e in result.events if e.kind == "weights")
    scaled = next(e.at for e in result.events if e.kind == "scale-down")
    assert scaled - switched >= timedelta(seconds=600)


async def test_blue_green_refuses_a_split_router(temporal_env):
    fleet = Fleet(weights=Weights(stable=70, canary=30))
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}))
    assert result.outcome is RolloutPhase.ABORTED
    assert "traffic is split 70/30" in result.reason
    assert fleet.calls == []


# -- rolling ----------------------------------------------------------------------


async def test_rolling_drains_deploys_checks_and_readies_each_batch(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout({"rolling": {"maxUnavailable": 1, "maxSurge": 0}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.PROMOTED
    assert set(fleet.versions.values()) == {"v2"}
    batch_starts = [e.at for e in result.events if e.kind == "step"]
    assert all(b - a >= timedelta(seconds=10) for a, b in itertools.pairwise(batch_starts))
    expected: list[tuple[Any, ...]] = []
    for host in STABLE + CANARY:
        expected += [
            ("state", host, "drain"),
            ("deploy", host, "v2"),
            ("health", host, True),
            ("state", host, "ready"),
        ]
    assert fleet.calls == expected
    assert [b.state for b in result.batches] == ["done"] * 4


async def test_rolling_aborted_midway_restores_updated_hosts_newest_first(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout(
        {
            "rolling": {
                "maxUnavailable": 1,
                "maxSurge": 0,
                "pauseBetweenBatches": "10m",
                "drainSeconds": 0,
            }
        }
    )
    async with fleet_worker(temporal_env, fleet) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start(temporal_env, tq, spec)
        await wait_for_status(
            handle, lambda s: s.current_step == 0 and s.phase is RolloutPhase.PAUSED
        )
        await handle.execute_update("promote", OperatorInput(), result_type=str)
        await wait_for_status(
            handle, lambda s: s.current_step == 1 and s.phase is RolloutPhase.PAUSED
        )
        await handle.execute_update("abort", OperatorInput(reason="latency"), result_type=str)
        result = await handle.result()
    assert result.outcome is RolloutPhase.ABORTED
    restores = [c for c in fleet.actions("deploy") if c[2] == "v1"]
    assert restores == [("deploy", STABLE[1], "v1"), ("deploy", STABLE[0], "v1")]
    assert set(fleet.versions.values()) == {"v1"}
    assert fleet.states[STABLE[0]] is fleet.states[STABLE[1]]
    assert fleet.states[STABLE[0]].value == "ready"


async def test_rolling_unhealthy_batch_rolls_back_every_touched_host(temporal_env):
    fleet = Fleet(unhealthy={(CANARY[0], "v2")})
    spec = fleet_rollout({"rolling": {"maxUnavailable": 2, "maxSurge": 0, "drainSeconds": 0}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert "health check failed on 10.0.0.3:80" in result.reason
    restores = [c[1] for c in fleet.actions("deploy") if c[2] == "v1"]
    assert restores == [CANARY[1], CANARY[0], STABLE[1], STABLE[0]]
    assert set(fleet.versions.values()) == {"v1"}


async def test_rolling_router_failure_mid_rollout_restores_the_hosts_already_updated(
    temporal_env,
):
    fleet = Fleet(router_failures={"batch-1/drain"})
    spec = fleet_rollout({"rolling": {"maxUnavailable": 1, "maxSurge": 0, "drainSeconds": 0}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert "admin.sock (RouterCommandFailed)" in result.reason
    # Batch 1 was touched (its drain failed): it is restored too, newest first.
    restores = [c[1] for c in fleet.actions("deploy") if c[2] == "v1"]
    assert restores == [STABLE[1], STABLE[0]]
    assert set(fleet.versions.values()) == {"v1"}
    assert {fleet.states[h].value for h in STABLE} == {"ready"}


# -- recreate -----------------------------------------------------------------------


async def test_recreate_stops_everything_then_brings_the_new_version_up(temporal_env):
    fleet = Fleet()
    result = await run(temporal_env, fleet, fleet_rollout({"recreate": {}}))
    assert result.outcome is RolloutPhase.PROMOTED
    kinds = [c[0] for c in fleet.calls]
    assert kinds == ["stop"] * 4 + ["deploy"] * 4 + ["start"] * 4 + ["health"] * 4
    assert set(fleet.versions.values()) == {"v2"}


async def test_recreate_failure_restores_the_previous_version(temporal_env):
    fleet = Fleet(unhealthy={(STABLE[0], "v2")})
    result = await run(temporal_env, fleet, fleet_rollout({"recreate": {}}))
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert set(fleet.versions.values()) == {"v1"}
    # Every host gets v1 back once; the hosts are restored in parallel, in no fixed order.
    restored = [c[1] for c in fleet.actions("deploy") if c[2] == "v1"]
    assert sorted(restored) == sorted(STABLE + CANARY)


# -- canary on two server lists -------------------------------------------------------


async def test_canary_after_a_promotion_goes_to_the_other_list(temporal_env):
    fleet = Fleet(weights=Weights(stable=0, canary=100))
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 25}, {"setWeight": 60}]}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.actions("deploy") == [("deploy", h, "v2") for h in STABLE]
    assert fleet.actions("weights") == [("weights", 75), ("weights", 40), ("weights", 0)]
    assert fleet.weights.stable == 100


async def test_canary_rollback_after_a_flip_returns_traffic_to_the_live_list(temporal_env):
    fleet = Fleet(weights=Weights(stable=0, canary=100), measure_values=lambda n: [0.5])
    spec = fleet_rollout(
        {"canary": {"steps": [{"setWeight": 25}, {"analysis": ANALYSIS}, {"setWeight": 60}]}}
    )
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert fleet.actions("weights") == [("weights", 75), ("weights", 100)]


async def test_canary_with_a_platform_checks_the_new_hosts_before_any_traffic(temporal_env):
    fleet = Fleet(unhealthy={(CANARY[1], "v2")})
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 25}]}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason == f"health check failed on {CANARY[1]}: HTTP 503 (expected 200)"
    # The only weight change is the rollback's "canary 0 %", which changes nothing.
    assert fleet.actions("weights") == [("weights", 0)]


async def test_canary_refuses_a_split_router(temporal_env):
    fleet = Fleet(weights=Weights(stable=50, canary=50))
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 25}]}})
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ABORTED
    assert "traffic is split 50/50" in result.reason
    assert fleet.calls == []


async def test_blue_green_refuses_verbs_while_the_old_pool_winds_down(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout({"blueGreen": {"scaleDownDelaySeconds": 600}})
    async with fleet_worker(temporal_env, fleet) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PROMOTED)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("abort", OperatorInput(), result_type=str)
        await temporal_env.fast_forward(handle, timedelta(minutes=11))
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.weights.canary == 100


async def test_blue_green_without_a_stop_command_leaves_the_old_pool_running(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout(
        {"blueGreen": {"scaleDownDelaySeconds": 0}},
        platform={"command": {"deploy": ["deploy", "{version}"]}},
    )
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.actions("stop") == []
    assert any("no stop command" in e.message for e in result.events)


# -- database migrations ----------------------------------------------------------------

MIGRATIONS = {"alembic": {"config": "/srv/checkout/alembic.ini"}}


async def test_migrations_run_before_anything_else_and_stay_on_success(temporal_env):
    fleet = Fleet()
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}, migrations=MIGRATIONS))
    assert result.outcome is RolloutPhase.PROMOTED
    assert fleet.calls[0] == ("migrate", "upgrade", "0003")
    assert result.database is not None
    assert (result.database.before, result.database.now) == ("0001", "0003")


async def test_a_rollback_returns_the_database_to_the_recorded_revision_by_name(temporal_env):
    fleet = Fleet(unhealthy={(CANARY[0], "v2")})
    result = await run(temporal_env, fleet, fleet_rollout({"blueGreen": {}}, migrations=MIGRATIONS))
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert fleet.actions("migrate") == [
        ("migrate", "upgrade", "0003"),
        ("migrate", "downgrade", "0001"),
    ]
    assert fleet.revision == "0001"


async def test_a_failing_migration_stops_before_any_host_is_touched(temporal_env):
    fleet = Fleet(failing_revision="0003")
    spec = fleet_rollout({"rolling": {"maxUnavailable": 1}}, migrations=MIGRATIONS)
    result = await run(temporal_env, fleet, spec)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    # The reason is the rollout's ("migration failed: ..."), with the migrator's error and its
    # type passed on; what the stub says inside it is the stub's business.
    assert result.reason.startswith("migration failed: ")
    assert result.reason.endswith(f"({MIGRATION_FAILED})")
    assert fleet.actions("deploy", "state") == []
    assert fleet.revision == "0001"
