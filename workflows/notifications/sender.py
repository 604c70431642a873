"""Delivery of a run's notices: one Slack thread and signed webhooks, in order, durably.

A sender task beside the run's own work takes notices off a queue and delivers each as
activities keyed by the run and the notice number, retried with ``retry.NOTIFY`` for
``ROLLOUT_NOTIFY_DEADLINE``; one that still fails is recorded in the timeline and the run
goes on. Used by rollouts (``rollout_notifier``) and pipelines (``pipeline_notifier``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from activities.notify.models import SlackMessage
    from activities.notify.notice import Notice
    from activities.notify.rollout_models import SlackNoticeInput, WebhookNoticeInput
    from workflows.core import retry
    from workflows.core.waits import until
    from workflows.notifications.spec import Notifications, NotifierState, Trigger

DRAIN_TIMEOUT = timedelta(minutes=5)
"""How long a finished run waits for its last notices before it closes without them."""
SLACK_START_TO_CLOSE = timedelta(seconds=30)
SLACK_HEARTBEAT = timedelta(seconds=10)
"""``post_slack`` heartbeats the message's ts as soon as it is posted; a worker killed
mid-post is noticed after this, and the retry finds the post by its key and edits it."""
WEBHOOK_START_TO_CLOSE = timedelta(seconds=30)


class NoticeSender:
    """The queue, the sender task and the thread's state of one run."""

    def __init__(
        self,
        notifications: Notifications,
        record: Callable[[str, str], None],
        state: NotifierState,
        run_key: str,
    ) -> None:
        self._notifications = notifications
        self._record = record
        self._state = state
        self._run_key = run_key
        self._queue: list[Notice] = []
        self._sending = False
        self._sender: asyncio.Task[None] | None = None
        self._shows = state.root_shows  # what the newest queued notice will show

    def shows_differ(self, phase: str, step: int | None) -> bool:
        """Whether the root line would change for this phase and step."""
        return _shows(phase, step) != self._shows

    def push(self, trigger: Trigger | None, **fields: Any) -> None:
        """Queue a notice (``fields`` are ``Notice``'s, less what the run itself says)."""
        info = workflow.info()
        self._state.seq += 1
        self._shows = _shows(fields["phase"], fields.get("step"))
        self._queue.append(
            Notice(
                seq=self._state.seq,
                trigger=None if trigger is None else trigger.value,
                at=workflow.now(),
                rollout_id=info.workflow_id,
                run_id=info.first_execution_run_id,
                **fields,
            )
        )
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())

    async def flush(self) -> None:
        """Send what is queued, for at most ``DRAIN_TIMEOUT``; then stop the sender."""
        busy = bool(self._queue or self._sending)
        if busy and not await until(
            lambda: not self._queue and not self._sending, DRAIN_TIMEOUT, "last notifications"
        ):
            self._record("notify", f"gave up on {len(self._queue)} notice(s) at the end")
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    async def _send_all(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._queue))
            notice = self._queue.pop(0)
            if notice.trigger is None and any(n.trigger is None for n in self._queue):
                continue  # a later root-line change supersedes this one
            self._sending = True
            try:
                await self._deliver(notice)
            finally:
                self._sending = False

    async def _deliver(self, notice: Notice) -> None:
        notifications = self._notifications
        sends: list[Awaitable[None]] = []
        if notifications.slack is not None:
            sends.append(self._to_slack(notice, notice.trigger in notifications.slack_triggers()))
        for index, hook in enumerate(notifications.webhooks):
            if notice.trigger in notifications.webhook_triggers(hook):
                delivery = f"{self._run_key}/{notice.seq}/{index}"
                request = WebhookNoticeInput(
                    url=str(hook.url), secret_env=hook.secret_env, notice=notice, delivery=delivery
                )
                sends.append(self._webhook(request, hook.label(index)))
        await asyncio.gather(*sends)

    async def _to_slack(self, notice: Notice, reply: bool) -> None:
        slack = self._notifications.slack
        assert slack is not None
        state = self._state
        shows = _shows(notice.phase, notice.step)
        base = SlackNoticeInput(channel=slack.channel, token_env=slack.token_env, notice=notice)
        if state.root is None:
            key = f"{self._run_key}/root"
            root = await self._slack(base.model_copy(update={"key": key}), "post the thread")
            if root is None:
                return
            state.root, state.root_shows = root, shows
        root = state.root
        if reply:
            key = f"{self._run_key}/{notice.seq}"
            await self._slack(
                base.model_copy(update={"part": "reply", "root": root, "key": key}),
                f"reply: {notice.trigger}",
            )
        if shows != state.root_shows:
            edit = base.model_copy(update={"root": root})
            if await self._slack(edit, f"root line: {notice.phase}") is not None:
                state.root_shows = shows

    async def _slack(self, request: SlackNoticeInput, summary: str) -> SlackMessage | None:
        try:
            message: SlackMessage = await workflow.execute_activity(
                "notify_slack",
                request,
                result_type=SlackMessage,
                start_to_close_timeout=SLACK_START_TO_CLOSE,
                heartbeat_timeout=SLACK_HEARTBEAT,
                schedule_to_close_timeout=retry.ROLLOUT_NOTIFY_DEADLINE,
                retry_policy=retry.NOTIFY,
                summary=f"Slack {summary}",
            )
        except ActivityError as exc:
            self._record("notify", f"Slack {summary} not sent: {root_cause(exc)}")
            return None
        return message

    async def _webhook(self, request: WebhookNoticeInput, label: str) -> None:
        try:
            await workflow.execute_activity(
                "notify_webhook",
                request,
                result_type=int,
                start_to_close_timeout=WEBHOOK_START_TO_CLOSE,
                schedule_to_close_timeout=retry.ROLLOUT_NOTIFY_DEADLINE,
                retry_policy=retry.NOTIFY,
                summary=f"{label}: {request.notice.trigger}",
            )
        except ActivityError as exc:
            self._record("notify", f"{label} {request.notice.trigger} not sent: {root_cause(exc)}")


def _shows(phase: str, step: int | None) -> str:
    return f"{phase}/{step}"
