"""Rollout notifications on the dev server (time skipping): the real ``notify_slack`` and
``notify_webhook`` activities, through slack-sdk to the local Slack server and through
aiohttp to a receiver that checks signatures; routing and metrics stubbed by name."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.notify.activities import page, post_slack
from activities.notify.local_slack import SlackServer
from activities.notify.rollout import RolloutNotices
from tests.fixtures.harness import poll, worker
from tests.fixtures.notify import SLACK_TOKEN, rollback_incident
from tests.fixtures.webhooks import WEBHOOK_SECRET, WEBHOOK_SECRET_ENV, WebhookReceiver
from tests.workflows.harness import Stubs, rollout, start, wait_for_status
from tests.workflows.test_pipeline import pipeline as pipeline_of
from tests.workflows.test_pipeline import stage
from workers.rollout_incident import RUNBOOKS_ENV, RollbackIncidents
from workflows.core.verbs import OperatorInput
from workflows.incidents.runbook import IncidentRunbook
from workflows.notifications.spec import RollbackIncident
from workflows.promotion.models import ApprovalInput, PipelineOutcome, PipelineRequest
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase
from workflows.rollouts.registry import BY_STRATEGY
from workflows.rollouts.spec import Rollout

UI = "http://ui.test:8233"
RUNBOOK = """
apiVersion: deployflow/v1
kind: Runbook
metadata: {name: rollout-rolled-back}
spec:
  match: {alertname: RolloutRolledBack, team: payments}
  steps:
    - page: {}
"""
ANALYSIS = {"analysis": {"templates": [{"templateName": "error-rate"}]}}


def ui_link(workflow_id: str, run_id: str | None) -> str:
    return f"{UI}/namespaces/default/workflows/{workflow_id}/{run_id}"


def notify_worker(env: WorkflowEnvironment, stubs: Stubs) -> AbstractAsyncContextManager[str]:
    """CanaryRollout and IncidentRunbook with stub routing/metrics and the real notifiers."""
    task_queue = f"tq-{uuid.uuid4().hex}"
    notices = RolloutNotices(ui_link)
    incidents = RollbackIncidents(env.client, task_queue, UI)
    return worker(
        env,
        [*BY_STRATEGY.values(), PromotionPipeline, IncidentRunbook],
        [
            *stubs.activities(),
            notices.notify_slack,
            notices.notify_webhook,
            incidents.open_rollout_incident,
            page,
            post_slack,
        ],
        task_queue=task_queue,
    )


def notifying(steps: list[dict[str, Any]], receiver: WebhookReceiver, **spec: Any) -> Rollout:
    hook: dict[str, Any] = {"url": receiver.url, "secretEnv": WEBHOOK_SECRET_ENV}
    hook |= spec.pop("hook", {})
    notifications = {"slack": {"channel": "#deploys"}, "webhooks": [hook]}
    return rollout(steps, notifications=notifications, **spec)


def thread(slack: SlackServer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The channel's one root message and its replies (fails if there are more roots)."""
    messages = slack.messages("#deploys")
    [root] = [m for m in messages if m["thread_ts"] is None]
    return root, [m for m in messages if m["thread_ts"] == root["ts"]]


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll what another process (the Slack or PagerDuty server) saw, bounded."""
    await poll(check, "the notification server to see it", timeout, every_s=0.05)


async def test_a_canary_tells_one_slack_thread_its_whole_life(
    temporal_env, notify_env, webhook_receiver
):
    stubs = Stubs()
    spec = notifying([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}], webhook_receiver)
    async with notify_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED)
        await until(lambda: any("paused" in r["text"] for r in thread(notify_env.slack)[1]))
        _, replies = thread(notify_env.slack)
        paused = next(r for r in replies if r["text"].startswith("paused"))
        assert "waiting for: someone with an operate token" in paused["text"]
        assert (
            f"deployflow rollout promote checkout --env {spec.spec.environment}" in paused["text"]
        )
        await handle.execute_update(CanaryRollout.promote, OperatorInput(by="alice"))
        result = await handle.result()

    assert result.outcome is RolloutPhase.PROMOTED
    root, replies = thread(notify_env.slack)
    assert root["text"].startswith(":white_check_mark: *checkout* v2 →")
    assert "*Promoted*" in root["text"]
    assert f"<{ui_link(spec.workflow_id, handle.result_run_id)}|{spec.workflow_id}>" in root["text"]
    assert root["edits"], "the root line is edited in place, not posted again"
    assert [r["text"].split(":")[0] for r in replies] == [
        "started",
        "step 1/3 completed",
        "paused",
        "promoted by alice",
        "step 2/3 completed",
        "step 3/3 completed",
        "Promoted",
    ]
    accepted = webhook_receiver.accepted()
    assert all(d.signed_ok for d in webhook_receiver.deliveries)
    assert [d.body["trigger"] for d in accepted] == [
        "on-rollout-started",
        "on-step-completed",
        "on-paused",
        "on-resumed",
        "on-step-completed",
        "on-step-completed",
        "on-promoted",
    ]
    history = (await handle.fetch_history()).to_json()
    assert WEBHOOK_SECRET not in history
    assert SLACK_TOKEN not in history
    assert all(WEBHOOK_SECRET.encode() not in d.raw for d in webhook_receiver.deliveries)
    final = accepted[-1].body
    assert final["rolloutId"] == spec.workflow_id
    assert final["url"] == ui_link(spec.workflow_id, handle.result_run_id)
    assert final["weights"] == {"stable": 0, "canary": 100}


async def test_a_failed_analysis_reaches_only_the_triggers_a_webhook_chose(
    temporal_env, notify_env, webhook_receiver
):
    stubs = Stubs(measure_values=lambda n: [0.5])
    hook = {"triggers": ["on-analysis-run-failed", "on-rolled-back"]}  # Argo's name, and ours
    spec = notifying([{"setWeight": 20}, ANALYSIS, {"setWeight": 100}], webhook_receiver, hook=hook)
    async with notify_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, spec)).result()

    assert result.outcome is RolloutPhase.ROLLED_BACK
    failed, rolled_back = (d.body for d in webhook_receiver.accepted())
    assert failed["trigger"] == "on-analysis-failed"
    assert failed["analysis"]["name"] == "step-1"
    assert failed["analysis"]["phase"] == "Failed"
    assert rolled_back["trigger"] == "on-rolled-back"
    assert "analysis step-1 Failed" in rolled_back["message"]
    root, replies = thread(notify_env.slack)
    assert "*RolledBack*" in root["text"]
    assert replies[-1]["text"].startswith("RolledBack: analysis step-1 Failed")


async def test_retried_deliveries_edit_and_redeliver_instead_of_duplicating(
    temporal_env, notify_env, webhook_receiver
):
    notify_env.slack.fail(500, times=3)  # the client's own two retries, then the activity's
    webhook_receiver.answer(503, times=1)
    spec = notifying([{"setWeight": 100}], webhook_receiver)
    async with notify_worker(temporal_env, Stubs()) as tq:
        result = await (await start(temporal_env, tq, spec)).result()

    assert result.outcome is RolloutPhase.PROMOTED
    _, replies = thread(notify_env.slack)
    texts = [r["text"].split(":")[0] for r in replies]
    assert texts == ["started", "step 1/1 completed", "Promoted"]
    first, retry, *_ = webhook_receiver.deliveries
    assert (first.answered, retry.answered) == (503, 200)
    assert first.headers["X-Deployflow-Delivery"] == retry.headers["X-Deployflow-Delivery"]
    assert first.raw == retry.raw
    assert [d.body["trigger"] for d in webhook_receiver.accepted()] == [
        "on-rollout-started",
        "on-step-completed",
        "on-promoted",
    ]


async def test_a_broken_notifier_is_recorded_and_never_holds_the_rollout(
    temporal_env, notify_env, webhook_receiver, monkeypatch
):
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    webhook_receiver.answer(404, times=100)  # refused: not retried
    spec = notifying([{"setWeight": 50}, {"setWeight": 100}], webhook_receiver)
    async with notify_worker(temporal_env, Stubs()) as tq:
        result = await (await start(temporal_env, tq, spec)).result()

    assert result.outcome is RolloutPhase.PROMOTED
    failures = [e.message for e in result.events if e.kind == "notify"]
    assert any("SLACK_BOT_TOKEN is not set on the worker" in f for f in failures)
    assert any("refused with HTTP 404" in f for f in failures)
    assert notify_env.slack.messages() == []


async def test_an_automatic_rollback_pages_through_the_workers_runbook(
    temporal_env, notify_env, tmp_path: Path, monkeypatch
):
    rollback_runbook(tmp_path, monkeypatch)
    stubs = Stubs(measure_values=lambda n: [0.5])
    incident = {"incident": {"labels": {"team": "payments"}, "severity": "error"}}
    spec = rollout([{"setWeight": 20}, ANALYSIS, {"setWeight": 100}], onRollback=incident)
    async with notify_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        result = await handle.result()
        await until(lambda: bool(notify_env.pagerduty.incidents()))

    assert result.outcome is RolloutPhase.ROLLED_BACK
    [opened] = [e.message for e in result.events if e.kind == "incident"]
    assert opened.startswith("incident ")
    assert opened.endswith(" opened for the rollback")
    [paged] = notify_env.pagerduty.incidents()
    assert paged["state"] == "triggered"
    assert paged["payload"]["severity"] == "error"
    details = paged["payload"]["custom_details"]
    assert details["annotations"]["rollout_id"] == spec.workflow_id
    assert details["labels"]["team"] == "payments"
    rollout_url = ui_link(spec.workflow_id, handle.result_run_id)
    assert {"href": rollout_url, "text": "alert source"} in paged["links"]


def rollback_runbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runbooks = tmp_path / "runbooks.yaml"
    runbooks.write_text(RUNBOOK)
    monkeypatch.setenv(RUNBOOKS_ENV, str(runbooks))


async def test_a_repeated_rollback_incident_is_the_same_incident(
    temporal_env, notify_env, tmp_path: Path, monkeypatch
):
    rollback_runbook(tmp_path, monkeypatch)
    request = rollback_incident(
        rollout_id=f"rollout-checkout-{uuid.uuid4().hex[:8]}",
        run_id="run-1",
        reason="progress deadline of 60s exceeded at step 0",
    )
    async with notify_worker(temporal_env, Stubs()) as tq:
        incidents = RollbackIncidents(temporal_env.client, tq, UI)
        first = await incidents.open_rollout_incident(request)
        again = await incidents.open_rollout_incident(request)  # a retry of the activity
        await until(lambda: bool(notify_env.pagerduty.incidents()))
        other = request.model_copy(update={"incident": RollbackIncident(labels={"team": "web"})})
        unmatched = await incidents.open_rollout_incident(other)

    assert first == again
    assert len(notify_env.pagerduty.incidents()) == 1
    assert unmatched.startswith("no incident opened: no runbook matches labels")


async def test_an_aborted_rollout_opens_no_incident(temporal_env, notify_env, monkeypatch):
    monkeypatch.setenv(RUNBOOKS_ENV, "/nonexistent/runbooks.yaml")  # never read
    incident = {"incident": {"labels": {"team": "payments"}}}
    spec = rollout([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}], onRollback=incident)
    async with notify_worker(temporal_env, Stubs()) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED)
        await handle.execute_update(CanaryRollout.abort, OperatorInput(by="bob"))
        result = await handle.result()

    assert result.outcome is RolloutPhase.ABORTED
    assert [e for e in result.events if e.kind == "incident"] == []


async def test_a_pipeline_thread_shows_its_gate_who_approved_and_the_end(
    temporal_env, notify_env, webhook_receiver
):
    gate = {"approval": {"approvers": ["alice", "bob"]}}
    pipeline = pipeline_of(
        stage("staging"),
        stage("production", **gate),
        notifications={"slack": {"channel": "#deploys"}},
    )
    service = pipeline.spec.service
    async with notify_worker(temporal_env, Stubs()) as tq:
        handle = await temporal_env.client.start_workflow(
            PromotionPipeline.run,
            PipelineRequest(pipeline=pipeline, version="v2"),
            id=pipeline.workflow_id,
            task_queue=tq,
        )

        def gate_posted() -> bool:
            messages = notify_env.slack.messages("#deploys")
            return any("waiting for: approval by alice, bob" in m["text"] for m in messages)

        await until(gate_posted)
        await handle.execute_update(
            PromotionPipeline.approve, ApprovalInput(approver="alice", comment="go")
        )
        result = await handle.result()

    assert result.outcome is PipelineOutcome.SUCCEEDED
    messages = notify_env.slack.messages("#deploys")
    roots = [m for m in messages if m["thread_ts"] is None]
    pipeline_root = next(m for m in roots if "(pipeline)" in m["text"])
    assert len(roots) == 3  # the pipeline's thread and one per stage rollout
    assert "*Succeeded*" in pipeline_root["text"]
    replies = [m["text"] for m in messages if m["thread_ts"] == pipeline_root["ts"]]
    assert [r.split(":")[0] for r in replies] == [
        "started",
        "step 1/2 completed",
        "paused",
        "production approved by alice",
        "step 2/2 completed",
        "Succeeded",
    ]
    assert "deployflow pipeline approve " + service in replies[2]
