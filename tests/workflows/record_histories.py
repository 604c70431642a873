"""Record the workflow histories that test_replay.py replays.

    .venv/bin/python -m tests.workflows.record_histories

Run it only when adding a history for a new workflow version; committed histories are the
old versions that the current code must still replay (changes go behind
``workflow.patched``).
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.health.certificates import check_certificate
from activities.health.dns import resolve_names
from activities.routing.base import Weights
from tests.fixtures.harness import worker
from tests.fixtures.parts import free_port
from tests.workflows import record_notify_history
from tests.workflows.fleet import CANARY, STABLE, Fleet, fleet_rollout
from tests.workflows.harness import (
    ERROR_RATE_TEMPLATE,
    Stubs,
    canary_worker,
    rollout,
    start,
    wait_for_status,
)
from tests.workflows.incident_harness import (
    Notifiers,
    incident_worker,
    notification,
    open_incident,
    runbook,
    status_when,
)
from tests.workflows.test_emergency import emergency_worker
from tests.workflows.test_interleavings import (
    abort_before_the_next_shift_starts,
    rollback_failing_three_times,
)
from tests.workflows.test_monitor import PROM, Pager, monitor, monitor_worker
from tests.workflows.test_pipeline import paused, pipeline, pipeline_worker, rollout_when, stage
from tests.workflows.test_pipeline import start as start_pipeline
from tests.workflows.test_scope_rollback import scope_worker
from tests.workflows.test_scope_rollback import start as start_scope_rollback
from tests.workflows.test_vm_strategies import fleet_worker
from tests.workflows.test_vm_strategies import start as start_vm
from workflows.core.search_attributes import ALL
from workflows.core.verbs import OperatorInput
from workflows.incidents.models import RESOLVED_SIGNAL, ApproveInput
from workflows.incidents.runbook import IncidentRunbook
from workflows.monitors.models import healer_workflow_id
from workflows.monitors.monitor import ServiceMonitorRun
from workflows.promotion.models import Submission
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import RollbackRequest, rollback_workflow_id
from workflows.rollouts.models import RolloutPhase
from workflows.rollouts.registry import workflow_type

HISTORIES = Path(__file__).parent.parent / "histories"
ANALYSIS_REF = {"templates": [{"templateName": "error-rate"}]}
ANALYSIS = {"analysis": ANALYSIS_REF}


def save(name: str, history: WorkflowHistory) -> None:
    """Write a history once: an existing file is an older version the code must replay."""
    path = HISTORIES / f"{name}.json"
    if path.exists():
        print(f"kept {path} (delete it to record it again)")
        return
    path.write_text(history.to_json())
    print(f"recorded {path}")


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=list(ALL),
        data_converter=pydantic_data_converter,
    )
    async with env:
        promoted = rollout(
            [
                {"setWeight": 5},
                {"pause": {"duration": "30m"}},
                ANALYSIS,
                {"setWeight": 50},
                {"pause": {}},
                {"setWeight": 100},
            ],
            canary={"analysis": {"templates": [{"templateName": "error-rate"}], "startingStep": 1}},
        )
        stubs = Stubs(measure_values=lambda n: [0.001])
        async with canary_worker(env, stubs) as tq:
            handle = await start(env, tq, promoted)
            await wait_for_status(handle, lambda s: s.current_step == 4)
            await handle.execute_update(CanaryRollout.promote, OperatorInput(by="alice"))
            await handle.result()
            history = await handle.fetch_history()
            save("canary-promoted", history)

        await record_safety(env)
        await record_kubernetes_workloads(env)
        await record_kubernetes_emergency(env)
        await record_kubernetes_incident_restart(env)
        await record_argo_analysis(env)
        await record_argo_replica_count(env)
        await record_rolling_paused_mid_update(env)
        await record_kubernetes_replaced(env)
        await record_vm_strategies(env)
        await record_pipeline_and_rollback(env)
        await record_incident_and_monitor(env)
        await record_notify_history.record(env, save)
        await record_notify_history.record_pipeline(env, save)
        await record_kube_traffic(env)
        await record_scope_rollback(env)
        await record_monitor_security_checks(env)
        await record_kubernetes_monitor(env)

        failing = rollout([{"setWeight": 20}, ANALYSIS, {"setWeight": 100}])
        stubs = Stubs(measure_values=lambda n: [0.5])
        async with canary_worker(env, stubs) as tq:
            handle = await start(env, tq, failing)
            await handle.result()
            history = await handle.fetch_history()
            save("canary-rolled-back", history)


async def record_kube_traffic(env: WorkflowEnvironment) -> None:
    """Canaries through the Kubernetes routers with a header route, and blue-green by
    Service selector (the kapi double)."""
    from tests.workflows import kube_traffic
    from tests.workflows.test_kube_traffic import CANARY, blue_green

    with tempfile.TemporaryDirectory() as directory:
        for name, router, error_rate in (
            ("canary-kube-istio-header-route-promoted", "istio", 0.001),
            ("canary-kube-gateway-header-route-rolled-back", "gatewayAPI", 0.5),
        ):
            async with kube_traffic.cluster(Path(directory)) as found:
                found.measure_values = lambda n, rate=error_rate: [rate]
                spec = kube_traffic.traffic_rollout(router, CANARY)
                handle = await kube_traffic.run(env, found, spec)
                save(name, await handle.fetch_history())
        async with kube_traffic.cluster(Path(directory)) as found:
            spec = kube_traffic.traffic_rollout("service", blue_green())
            handle = await kube_traffic.run(env, found, spec)
            save("blue-green-kube-service-promoted", await handle.fetch_history())


async def record_argo_analysis(env: WorkflowEnvironment) -> None:
    """Issue 12: template args, a dry-run metric and a condition handling NaN (the
    analysis-raw-values patch), in a step and in the background."""
    template = {
        "name": "error-rate",
        "args": [{"name": "threshold", "value": "0.01"}],
        "dryRun": [{"metricName": "latency"}],
        "metrics": [
            ERROR_RATE_TEMPLATE["metrics"][0]
            | {"successCondition": "isNaN(result) || result < {{args.threshold}}"},
            ERROR_RATE_TEMPLATE["metrics"][0]
            | {"name": "latency", "successCondition": "result < 0.1"},
        ],
    }
    spec = rollout(
        [{"setWeight": 20}, {"pause": {"duration": "10m"}}, ANALYSIS, {"setWeight": 100}],
        canary={"analysis": {**ANALYSIS_REF, "args": [{"name": "threshold", "value": "0.05"}]}},
        analysisTemplates=[template],
    )
    stubs = Stubs(measure_values=lambda n: [math.nan] if n % 3 == 0 else [0.001])
    async with canary_worker(env, stubs) as tq:
        handle = await start(env, tq, spec)
        await handle.result()
        save("canary-argo-analysis", await handle.fetch_history())


async def record_argo_replica_count(env: WorkflowEnvironment) -> None:
    """Argo's basic canary (no trafficRouting): each setWeight scales the two Deployments."""
    from tests.workflows import test_argo_rollouts as argo

    with tempfile.TemporaryDirectory() as directory:
        async with argo.cluster(env, Path(directory)) as (found, tq):
            found.apply("canary-steps.yaml")
            handle = await argo.start(env, tq, [argo.manifest("canary-steps.yaml")])
            await argo.paused(handle)
            await argo.promoted(handle)
            save("canary-argo-replica-count-promoted", await handle.fetch_history())


async def record_rolling_paused_mid_update(env: WorkflowEnvironment) -> None:
    """A rolling update on Kubernetes paused inside the Deployment's rollout, then resumed."""
    from tests.workflows import kube_cluster
    from tests.workflows.test_kubernetes_strategies import ROLLING, paused_mid_update

    with tempfile.TemporaryDirectory() as directory:
        async with (
            kube_cluster.cluster(Path(directory)) as found,
            kube_cluster.kube_worker(env, found) as tq,
        ):
            spec = kube_cluster.kube_rollout(ROLLING)
            handle = await kube_cluster.start(env, tq, spec)
            await paused_mid_update(found, handle)
            await handle.execute_update("resume", OperatorInput(by="alice"))
            await handle.result()
            save("rolling-kube-paused-mid-update-promoted", await handle.fetch_history())


async def record_kubernetes_replaced(env: WorkflowEnvironment) -> None:
    """A canary on Kubernetes whose Deployment was deleted and created again before its
    promotion: the promotion and the restore refused, rolled back."""
    from tests.workflows import kube_cluster
    from tests.workflows.test_kubernetes_replaced import (
        HELD,
        promoted_onto_a_recreated_deployment,
    )

    with tempfile.TemporaryDirectory() as directory:
        async with kube_cluster.cluster(Path(directory)) as found:
            spec = kube_cluster.kube_rollout(HELD)
            handle, _ = await promoted_onto_a_recreated_deployment(env, found, spec)
            save("canary-kube-replaced-rolled-back", await handle.fetch_history())


async def record_safety(env: WorkflowEnvironment) -> None:
    """Issue 9's rollback-always patch: an abort cancelling a shift before it started, a
    rollback retried until the router takes it, a rolling update whose router failed."""
    handle = await abort_before_the_next_shift_starts(env, Stubs())
    save("canary-aborted-before-shift-started", await handle.fetch_history())
    handle, _, _ = await rollback_failing_three_times(env)
    save("canary-rollback-retried", await handle.fetch_history())
    fleet = Fleet(router_failures={"batch-1/drain"})
    spec = fleet_rollout({"rolling": {"maxUnavailable": 1, "maxSurge": 0, "drainSeconds": 0}})
    async with fleet_worker(env, fleet) as tq:
        handle = await start_vm(env, tq, spec)
        await handle.result()
        save("rolling-router-failed-rolled-back", await handle.fetch_history())


async def record_vm_strategies(env: WorkflowEnvironment) -> None:
    """One promoted run per VM strategy, and a rolled-back rolling update."""
    cases = {
        "blue-green-promoted": (Fleet(), fleet_rollout({"blueGreen": {}})),
        "blue-green-promoted-before-scale-down": (
            Fleet(),
            fleet_rollout({"blueGreen": {"postPromotionAnalysis": ANALYSIS_REF}}),
        ),
        "rolling-promoted": (Fleet(), fleet_rollout({"rolling": {"maxUnavailable": 2}})),
        "rolling-rolled-back": (
            Fleet(unhealthy={(CANARY[0], "v2")}),
            fleet_rollout({"rolling": {"maxUnavailable": 2}}),
        ),
        "recreate-promoted": (Fleet(), fleet_rollout({"recreate": {}})),
        "canary-flipped-promoted": (
            Fleet(weights=Weights(stable=0, canary=100)),
            fleet_rollout({"canary": {"steps": [{"setWeight": 25}, {"setWeight": 60}]}}),
        ),
    }
    for name, (fleet, spec) in cases.items():
        async with fleet_worker(env, fleet) as tq:
            handle = await start_vm(env, tq, spec)
            await handle.result()
            history = await handle.fetch_history()
            save(name, history)


async def record_pipeline_and_rollback(env: WorkflowEnvironment) -> None:
    """A two-stage pipeline with a soak, and an emergency rollback with a platform."""
    p = pipeline(stage("staging"), stage("production", requiredSoakTime="1h"))
    async with pipeline_worker(env, Stubs()) as tq:
        handle = await start_pipeline(env, tq, p)
        await handle.result()
        save("pipeline-succeeded", await handle.fetch_history())
    fleet = Fleet(
        weights=Weights(stable=0, canary=100),
        versions={**dict.fromkeys(STABLE, "v1"), **dict.fromkeys(CANARY, "v2")},
    )
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 50}]}})
    async with emergency_worker(env, fleet) as tq:
        handle = await env.client.start_workflow(
            EmergencyRollback.run,
            RollbackRequest(rollout=spec, target="v1"),
            id=f"rollback-{spec.spec.environment}",
            task_queue=tq,
        )
        await handle.result()
        save("emergency-rollback", await handle.fetch_history())
    await record_superseded_pipeline_and_cancelling_rollback(env)


async def record_superseded_pipeline_and_cancelling_rollback(env: WorkflowEnvironment) -> None:
    """A pipeline superseded while its stage's rollout pauses (the rollout is cancelled by
    id, the run continues as new); an emergency rollback that cancels a soaking canary."""
    p = pipeline(stage("staging", steps=[{"setWeight": 50}, {"pause": {}}]))
    async with pipeline_worker(env, Stubs()) as tq:
        with env.with_time_skipping_disabled():
            handle = await start_pipeline(env, tq, p)
        child_id = f"rollout-{p.spec.service}-staging"
        await rollout_when(env, child_id, paused)
        await handle.execute_update(PromotionPipeline.submit, Submission(version="v3"))
        first = env.client.get_workflow_handle(p.workflow_id, run_id=handle.result_run_id)
        await rollout_when(env, child_id, lambda s: s.version == "v3" and paused(s))
        save("pipeline-superseded", await first.fetch_history())
        await handle.cancel()
    fleet = Fleet()
    canary = fleet_rollout(
        {"canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "30m"}}]}}
    )
    async with emergency_worker(env, fleet) as tq:
        with env.with_time_skipping_disabled():
            running = await env.client.start_workflow(
                workflow_type(canary), canary, id=canary.workflow_id, task_queue=tq
            )
        await wait_for_status(running, lambda s: s.phase is RolloutPhase.PAUSED)
        handle = await env.client.start_workflow(
            EmergencyRollback.run,
            RollbackRequest(rollout=canary, target="v1", cancel_workflow_id=canary.workflow_id),
            id=rollback_workflow_id(canary.spec.service, canary.spec.environment),
            task_queue=tq,
        )
        await handle.result()
        save("emergency-cancelled-canary", await handle.fetch_history())


async def record_scope_rollback(env: WorkflowEnvironment) -> None:
    """A scope of four: one rolled back by a router flip, one failing, one unplannable,
    one skipped."""
    async with scope_worker(env, Clients()) as tq:
        handle = await start_scope_rollback(env, tq)
        await handle.result()
        save("scope-rollback-partly-failed", await handle.fetch_history())


async def record_monitor_security_checks(env: WorkflowEnvironment) -> None:
    """A monitor run with the certificate and DNS checks (the patch marker recorded): a
    refused TLS endpoint and localhost resolved by the system resolver."""
    checks = {
        "certificates": {"endpoints": [{"host": "localhost", "port": free_port()}]},
        "dns": {"names": [{"name": "localhost"}]},
    }
    m = monitor(healthCheck=None, selfHealing=None, incident=None, servers=[], **checks)
    queue = f"tq-{uuid.uuid4().hex}"
    async with worker(
        env, [ServiceMonitorRun], [check_certificate, resolve_names], task_queue=queue
    ):
        handle = await env.client.start_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-{uuid.uuid4().hex[:6]}", task_queue=queue
        )
        await handle.result()
        save("monitor-run-security-findings", await handle.fetch_history())


async def record_incident_and_monitor(env: WorkflowEnvironment) -> None:
    """An incident that escalates, is approved into a rollback and resolves with its alert;
    a monitor run that hands a server to the healer; the healer's restart."""
    stubs = Notifiers()
    book = runbook(
        [
            {"page": {}},
            {"notify": {"text": "{{alertname}} on {{service}}"}},
            {"query": {"name": "errors", "provider": PROM}},
            {"approve": {"description": "roll back?"}},
            {"rollback": {}},
        ],
        escalation={
            "levels": [
                {"name": "primary", "ackTimeout": "5m"},
                {"name": "secondary", "routingKeyEnv": "PD_SECONDARY"},
            ]
        },
    )
    alert = notification()
    async with incident_worker(env, stubs) as tq:
        handle = await open_incident(env, tq, book, alert)
        await status_when(handle, lambda s: s.paged_levels == ["primary", "secondary"])
        await status_when(handle, lambda s: "approval" in (s.waiting_for or ""))
        await handle.execute_update(IncidentRunbook.approve, ApproveInput(by="alice"))
        await status_when(handle, lambda s: any("rollback done" in e.message for e in s.timeline))
        await handle.signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
        await handle.result()
        save("incident-escalated-resolved", await handle.fetch_history())
    stubs = Notifiers()
    alert = notification()
    async with incident_worker(env, stubs) as tq:
        first = await open_incident(env, tq, runbook([{"page": {}}]), alert, 2)
        await status_when(first, lambda s: s.triggered_levels == ["on-call"])
        await open_incident(env, tq, runbook([{"page": {}}]), alert, 2)
        latest = env.client.get_workflow_handle(first.id)
        await status_when(latest, lambda s: any(e.kind == "continued" for e in s.timeline))
        await latest.signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
        await latest.result()
        first_run = env.client.get_workflow_handle(first.id, run_id=first.result_run_id)
        save("incident-continued-as-new", await first_run.fetch_history())
        save("incident-carried-resolved", await latest.fetch_history())
    fleet = Fleet(unhealthy={(STABLE[1], "v1")}, measure_values=lambda n: [0.2])
    m = monitor(
        slos=[{"name": "error-rate", "provider": PROM, "successCondition": "result[0] < 0.01"}]
    )
    async with monitor_worker(env, Pager(fleet)) as tq:
        run = await env.client.start_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{m.spec.environment}", task_queue=tq
        )
        await run.result()
        save("monitor-run-unhealthy", await run.fetch_history())
        healer = env.client.get_workflow_handle(
            healer_workflow_id(m.spec.service, m.spec.environment)
        )
        await healer.result()
        save("self-healer-restarted", await healer.fetch_history())


async def record_kubernetes_workloads(env: WorkflowEnvironment) -> None:
    """Rollouts on Kubernetes Deployments (issue 11), against the API server double."""
    from tests.workflows import kube_cluster
    from tests.workflows.test_kubernetes_strategies import BROKEN_IMAGE, CANARY, HELD, ROLLING

    async def nothing() -> None:
        return None

    with tempfile.TemporaryDirectory() as directory:
        for name, strategy, version, paused in (
            ("canary-kube-workloads-promoted", CANARY, "v2", None),
            ("canary-kube-workloads-aborted", HELD, "v2", nothing),
            ("rolling-kube-workloads-promoted", ROLLING, "v2", None),
            ("recreate-kube-workloads-stuck-rolled-back", {"recreate": {}}, "v9", None),
        ):
            async with kube_cluster.cluster(Path(directory)) as found:
                found.server.controller.break_image(BROKEN_IMAGE)
                spec = kube_cluster.kube_rollout(
                    strategy, version=version, progressDeadlineSeconds=20
                )
                handle, _ = await kube_cluster.finished(env, found, spec, when_paused=paused)
                save(name, await handle.fetch_history())


async def record_kubernetes_emergency(env: WorkflowEnvironment) -> None:
    """An emergency rollback restoring a recorded pod template (issue 11)."""
    from tests.workflows import kube_cluster
    from tests.workflows.test_kubernetes_emergency import planned, promoted_then_bad, roll_back

    with tempfile.TemporaryDirectory() as directory:
        async with kube_cluster.cluster(Path(directory)) as found:
            _, promoted = await promoted_then_bad(env, found)
            handle = await roll_back(env, found, planned(promoted))
            save("emergency-kube-restored-template", await handle.fetch_history())


async def record_kubernetes_incident_restart(env: WorkflowEnvironment) -> None:
    """An incident's restart step restarting a Deployment (issue 11)."""
    from tests.workflows import kube_cluster
    from tests.workflows.test_kubernetes_incident import restarted

    with tempfile.TemporaryDirectory() as directory:
        async with kube_cluster.cluster(Path(directory)) as found:
            handle, _ = await restarted(env, found)
            save("incident-kube-restarted-deployment", await handle.fetch_history())


async def record_kubernetes_monitor(env: WorkflowEnvironment) -> None:
    """A monitor finding a Deployment's pods unready; the healer restarting it (issue 11)."""
    from tests.workflows import kube_cluster
    from tests.workflows.test_kubernetes_monitor import Intake, unready_then_healed

    with tempfile.TemporaryDirectory() as directory:
        async with kube_cluster.cluster(Path(directory)) as found:
            seen = await unready_then_healed(env, found, Intake())
            save("monitor-run-kube-unready", await seen.unhealthy_run.fetch_history())
            save("self-healer-restarted-deployment", await seen.healer_run.fetch_history())


if __name__ == "__main__":
    asyncio.run(main())
