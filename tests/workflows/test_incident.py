"""IncidentRunbook with time skipping: escalation, acknowledgement, approval gates,
resolution, and repeated notifications that must not page twice."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.workflows.harness import activity_scheduled
from tests.workflows.incident_harness import (
    Notifiers,
    incident_worker,
    notification,
    open_incident,
    rejection,
    runbook,
    status_when,
)
from workflows.core.verbs import OperatorInput
from workflows.incidents.models import RESOLVED_SIGNAL, ApproveInput, IncidentPhase
from workflows.incidents.runbook import IncidentRunbook
from workflows.incidents.spec import Runbook
from workflows.rollouts.emergency_models import RollbackRequest, rollback_workflow_id

LEVELS = {
    "levels": [
        {"name": "primary", "routingKeyEnv": "PD_PRIMARY", "ackTimeout": "5m"},
        {"name": "secondary", "routingKeyEnv": "PD_SECONDARY", "ackTimeout": "10m"},
        {"name": "manager", "routingKeyEnv": "PD_MANAGER"},
    ]
}
ALICE = OperatorInput(by="alice", reason="looking")


async def test_unacknowledged_page_escalates_level_by_level_after_each_timeout(temporal_env):
    stubs = Notifiers()
    book = runbook([{"page": {}}], escalation=LEVELS)
    async with incident_worker(temporal_env, stubs) as tq:
        handle = await open_incident(temporal_env, tq, book)
        status = await status_when(handle, lambda s: len(s.paged_levels) == 3)
        await handle.execute_update(IncidentRunbook.resolve, ALICE)
        result = await handle.result()
    assert status.paged_levels == ["primary", "secondary", "manager"]
    triggers = [e for e in result.timeline if e.kind == "page" and e.message.startswith("paged")]
    assert triggers[1].at - triggers[0].at >= timedelta(minutes=5)
    assert triggers[2].at - triggers[1].at >= timedelta(minutes=10)
    assert {p.dedup_key for p in stubs.pages} == {result.dedup_key}
    assert stubs.page_log() == [
        ("trigger", "PD_PRIMARY"),
        ("trigger", "PD_SECONDARY"),
        ("trigger", "PD_MANAGER"),
        ("resolve", "PD_PRIMARY"),
        ("resolve", "PD_SECONDARY"),
        ("resolve", "PD_MANAGER"),
    ]
    assert result.resolved_by == "alice"


async def test_acknowledgement_stops_escalation(temporal_env):
    stubs = Notifiers()
    book = runbook([{"page": {}}], escalation=LEVELS)
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book)
        await status_when(handle, lambda s: s.paged_levels == ["primary"])
        await handle.execute_update(IncidentRunbook.acknowledge, ALICE)
        assert "already acknowledged by alice" in await rejection(
            handle, IncidentRunbook.acknowledge, ALICE
        )
        assert "acknowledged by alice" in await rejection(
            handle, IncidentRunbook.escalate, OperatorInput()
        )
        await temporal_env.fast_forward(handle, timedelta(minutes=30))
        status = await handle.query(IncidentRunbook.status)
        await handle.execute_update(IncidentRunbook.resolve, ALICE)
        result = await handle.result()
    assert status.paged_levels == ["primary"]
    assert status.phase is IncidentPhase.ACKNOWLEDGED
    assert status.time_to_acknowledge_seconds is not None
    assert stubs.page_log() == [
        ("trigger", "PD_PRIMARY"),
        ("acknowledge", "PD_PRIMARY"),
        ("resolve", "PD_PRIMARY"),
    ]
    assert result.time_to_resolve_seconds is not None
    assert result.time_to_resolve_seconds >= status.time_to_acknowledge_seconds


async def test_escalate_pages_the_next_level_at_once(temporal_env):
    stubs = Notifiers()
    book = runbook([{"page": {}}], escalation=LEVELS)
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book)
        await status_when(handle, lambda s: s.paged_levels == ["primary"])
        await handle.execute_update(IncidentRunbook.escalate, OperatorInput(by="bob"))
        status = await status_when(handle, lambda s: len(s.paged_levels) == 2)
        await handle.execute_update(IncidentRunbook.resolve, ALICE)
        await handle.result()
    assert status.paged_levels == ["primary", "secondary"]


async def test_approve_gate_blocks_the_rollback_until_approved(temporal_env):
    stubs = Notifiers()
    book = runbook(
        [
            {"notify": {"text": "{{alertname}}: {{summary}}"}},
            {"approve": {"description": "roll checkout back?", "approvers": ["alice"]}},
            {"rollback": {}},
        ]
    )
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book)
        waiting = await status_when(handle, lambda s: "approval" in (s.waiting_for or ""))
        assert stubs.rollback_plans == []
        assert "by: must be one of alice" in await rejection(
            handle, IncidentRunbook.approve, ApproveInput(by="mallory")
        )
        await handle.execute_update(IncidentRunbook.approve, ApproveInput(by="alice"))
        done = await status_when(
            handle, lambda s: any(e.kind == "rollback" and "done" in e.message for e in s.timeline)
        )
        await handle.signal(RESOLVED_SIGNAL, notification("resolved"))
        result = await handle.result()
    assert waiting.step == 2
    assert [p.service for p in stubs.rollback_plans] == ["checkout"]
    # The fleet already runs v1, the plan's target: the rollback ran and changed nothing.
    rolled_back = [e.message for e in done.timeline if e.kind == "rollback"]
    assert rolled_back[-1] == "rollback done — v1: v1 is live: nothing more to do"
    assert stubs.fleet.actions("deploy") == []
    assert result.resolved_by == "alertmanager"
    thread = [p for p in stubs.posts if p.thread_ts]
    assert any("approved by alice" in p.text for p in thread)
    assert any("rollback done" in p.text for p in thread)


async def test_a_rollback_step_waits_for_the_operators_rollback_already_running(temporal_env):
    stubs = Notifiers()
    spec = stubs.rollback_rollout.spec
    # The operator's rollback of the service, on a queue no worker polls: it runs until
    # terminated, and the incident must wait for it rather than start a second one.
    operators = await temporal_env.client.start_workflow(
        "EmergencyRollback",
        RollbackRequest(rollout=stubs.rollback_rollout, target="v1"),
        id=rollback_workflow_id(spec.service, spec.environment),
        task_queue=f"nobody-{uuid.uuid4().hex}",
    )
    book = runbook([{"rollback": {}}, {"notify": {"text": "after the rollback"}}])
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book)
            await status_when(
                handle, lambda s: any(e.message.startswith("rolling") for e in s.timeline)
            )
            await activity_scheduled(handle, "await_closed")
            await operators.terminate("the operator gave up")
            done = await status_when(handle, lambda s: s.slack is not None)
        await handle.execute_update(IncidentRunbook.resolve, ALICE)
        await handle.result()
    rollback = [e.message for e in done.timeline if e.kind == "rollback"]
    assert rollback[-1] == (
        f"rollback done — a rollback already running ({operators.id}) closed: terminated"
    )


async def test_rejected_approval_skips_the_gated_step_only(temporal_env):
    stubs = Notifiers()
    book = runbook(
        [
            {"approve": {}},
            {"rollback": {}},
            {"notify": {"text": "still here"}},
        ]
    )
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book)
        await status_when(handle, lambda s: "approval" in (s.waiting_for or ""))
        await handle.execute_update(IncidentRunbook.approve, ApproveInput(approved=False, by="bob"))
        await status_when(handle, lambda s: s.slack is not None)
        await handle.execute_update(IncidentRunbook.resolve, OperatorInput(by="bob"))
        result = await handle.result()
    assert stubs.rollback_plans == []
    assert any(e.kind == "skipped" for e in result.timeline)
    assert stubs.posts[0].text.startswith("still here")


async def test_repeated_notifications_reach_one_incident_and_page_once(temporal_env):
    stubs = Notifiers()
    book = runbook([{"page": {}}, {"notify": {"text": "{{alertname}}"}}])
    alert = notification()
    async with incident_worker(temporal_env, stubs) as tq:
        handles = [await open_incident(temporal_env, tq, book, alert) for _ in range(3)]
        assert len({(h.id, h.result_run_id) for h in handles}) == 1
        await status_when(handles[0], lambda s: s.notifications == 3 and s.slack is not None)
        await handles[0].signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
        result = await handles[0].result()
    assert [p.action for p in stubs.pages] == ["trigger", "resolve"]
    assert len([p for p in stubs.posts if p.thread_ts is None and p.update_ts is None]) == 1
    assert result.phase is IncidentPhase.RESOLVED


async def test_alert_firing_again_in_the_quiet_period_keeps_the_incident_open(temporal_env):
    stubs = Notifiers()
    book = runbook([{"page": {}}], resolveQuietPeriod="5m")
    alert = notification()
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book, alert)
        await status_when(handle, lambda s: s.paged_levels == ["on-call"])
        with temporal_env.with_time_skipping_disabled():
            await handle.signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
            await status_when(handle, lambda s: "quiet period" in (s.waiting_for or ""))
            await open_incident(temporal_env, tq, book, alert)  # fires again
        await status_when(handle, lambda s: any(e.message == "firing again" for e in s.timeline))
        await temporal_env.fast_forward(handle, timedelta(minutes=10))
        still = await handle.query(IncidentRunbook.status)
        await handle.signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
        await temporal_env.fast_forward(handle, timedelta(minutes=6))
        result = await handle.result()
    assert still.phase is IncidentPhase.TRIGGERED
    assert result.resolved_by == "alertmanager"
    assert [p.action for p in stubs.pages] == ["trigger", "resolve"]


async def test_restart_step_restarts_every_target_server(temporal_env):
    stubs = Notifiers()
    target = {
        "platform": {"command": {"deploy": ["true"], "restart": ["restart", "{host}"]}},
        "servers": ["10.0.0.1:80", "10.0.0.2:80"],
    }
    book = runbook([{"restart": {}}], service="checkout", target=target)
    async with incident_worker(temporal_env, stubs) as tq:
        handle = await open_incident(temporal_env, tq, book)
        status = await status_when(handle, lambda s: s.restarts == 2)
        await handle.execute_update(IncidentRunbook.resolve, ALICE)
        await handle.result()
    assert stubs.fleet.actions("restart") == [
        ("restart", "10.0.0.1:80", None),
        ("restart", "10.0.0.2:80", None),
    ]
    assert status.restarts == 2


async def test_a_restart_is_skipped_once_the_alert_has_resolved_by_itself(temporal_env):
    stubs = Notifiers()
    target = {
        "platform": {"command": {"deploy": ["true"], "restart": ["restart", "{host}"]}},
        "servers": ["10.0.0.1:80"],
    }
    book = runbook(
        [{"wait": {"duration": "1m"}}, {"restart": {}}],
        target=target,
        resolveQuietPeriod="10m",
    )
    alert = notification()
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await open_incident(temporal_env, tq, book, alert)
            await status_when(handle, lambda s: "wait step" in (s.waiting_for or ""))
            await handle.signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
        await temporal_env.fast_forward(handle, timedelta(minutes=2))
        skipped = await status_when(handle, lambda s: any(e.kind == "skipped" for e in s.timeline))
        await temporal_env.fast_forward(handle, timedelta(minutes=10))
        result = await handle.result()
    assert stubs.fleet.actions("restart") == []
    assert "step 2 (restart): alert resolved" in skipped.timeline[-1].message
    assert result.resolved_by == "alertmanager"


async def test_a_long_incident_continues_as_new_keeping_its_pages_and_thread(temporal_env):
    stubs = Notifiers()
    book = runbook([{"page": {}}, {"notify": {"text": "{{alertname}}"}}], escalation=LEVELS)
    alert = notification()
    async with incident_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            first = await open_incident(temporal_env, tq, book, alert, notifications_per_run=3)
            await status_when(first, lambda s: s.slack is not None and s.paged_levels)
            await first.execute_update(IncidentRunbook.acknowledge, ALICE)
            for _ in range(3):  # Alertmanager repeating itself
                await open_incident(temporal_env, tq, book, alert, notifications_per_run=3)
            latest = temporal_env.client.get_workflow_handle_for(IncidentRunbook.run, first.id)
            carried = await status_when(
                latest, lambda s: any(e.kind == "continued" for e in s.timeline)
            )
            await latest.signal(RESOLVED_SIGNAL, notification("resolved", alert.group_key))
            result = await latest.result()
    description = await latest.describe()
    assert description.run_id != first.result_run_id
    assert carried.acknowledged_by == "alice"
    assert result.notifications == 5
    assert result.dedup_key == carried.dedup_key
    assert stubs.page_log() == [
        ("trigger", "PD_PRIMARY"),
        ("acknowledge", "PD_PRIMARY"),
        ("resolve", "PD_PRIMARY"),
    ]
    root, *thread = stubs.posts
    assert root.thread_ts is None
    assert {p.thread_ts for p in thread if p.update_ts is None} == {"1700000000.000001"}
    assert any("resolved by alertmanager" in p.text for p in thread)


PROM = {"prometheus": {"address": "http://127.0.0.1:9", "query": "up"}}


async def failed_steps(temporal_env, stubs: Notifiers, book: Runbook) -> list[str]:
    """Run ``book`` until its first Slack post (its last step), resolve it; the messages
    of its failed steps."""
    async with incident_worker(temporal_env, stubs) as tq:
        handle = await open_incident(temporal_env, tq, book)
        status = await status_when(handle, lambda s: len(stubs.posts) == 1)
        await handle.execute_update(IncidentRunbook.resolve, ALICE)
        await handle.result()
    return [e.message for e in status.timeline if e.kind == "failed"]


async def test_a_wait_condition_that_cannot_be_evaluated_fails_its_step_and_the_runbook_goes_on(
    temporal_env,
):
    stubs = Notifiers()
    stubs.fleet.measure_values = lambda n: [0.2, 0.3]  # two series; the condition wants one
    wait = {"metric": {"provider": PROM, "successCondition": "result < 0.01"}, "timeout": "1h"}
    book = runbook([{"wait": wait}, {"notify": {"text": "after the wait"}}])
    failed = await failed_steps(temporal_env, stubs, book)
    assert len(failed) == 1
    assert failed[0].startswith(
        "step 1 (wait) failed: 'result < 0.01' cannot be evaluated on [0.2, 0.3]: No such overload"
    )
    assert stubs.fleet.measurements == 1  # not measured again until the timeout
    assert stubs.posts[0].text.startswith("after the wait")


async def test_a_notify_step_slack_refuses_fails_its_step_and_the_runbook_goes_on(temporal_env):
    stubs = Notifiers(refuse_post=lambda post: post.text.startswith("first"))
    book = runbook([{"notify": {"text": "first"}}, {"notify": {"text": "second"}}])
    failed = await failed_steps(temporal_env, stubs, book)
    assert failed == ["step 1 (notify) failed: channel_not_found (SlackError)"]
    assert stubs.posts[0].text.startswith("second")


async def test_a_query_whose_activity_keeps_failing_fails_its_step_after_two_tries(temporal_env):
    def broken(n: int) -> list[float]:
        raise RuntimeError("provider client bug")

    stubs = Notifiers()
    stubs.fleet.measure_values = broken
    book = runbook(
        [{"query": {"name": "error-rate", "provider": PROM}}, {"notify": {"text": "on"}}]
    )
    failed = await failed_steps(temporal_env, stubs, book)
    assert failed == ["step 1 (query) failed: provider client bug (RuntimeError)"]
    assert stubs.fleet.measurements == 2  # retry.MEASURE
