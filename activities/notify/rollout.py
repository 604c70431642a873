"""The ``notify_slack`` and ``notify_webhook`` activities of rollout notifications.

Rendering happens here, on the worker, because the Temporal UI link is the worker's
configuration. Slack posts go through ``post_slack`` (heartbeat of the posted ts, and the
notice's key as message metadata), so a retry edits what an earlier attempt posted;
webhooks keep their delivery id across retries and the receiver drops repeats. Secrets are
read from the worker's environment by name at call time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from temporalio import activity

from activities.log_fields import attempt, ms_since
from activities.notify import webhook
from activities.notify.activities import post_slack, secret
from activities.notify.models import SlackMessage, SlackPostInput
from activities.notify.notice import reply_text, root_text, webhook_body
from activities.notify.rollout_models import SlackNoticeInput, WebhookNoticeInput

log = structlog.get_logger()

WorkflowUrl = Callable[[str, str | None], str]
"""The run's Temporal UI page for (workflow id, run id)."""


class RolloutNotices:
    """Registered as bound methods; ``workflow_url`` links notices to the run's UI page."""

    def __init__(self, workflow_url: WorkflowUrl | None = None) -> None:
        self._workflow_url = workflow_url

    def _url(self, workflow_id: str, run_id: str) -> str | None:
        return None if self._workflow_url is None else self._workflow_url(workflow_id, run_id)

    @activity.defn(name="notify_slack")
    def notify_slack(self, input: SlackNoticeInput) -> SlackMessage:
        """Post or edit the thread's root line, or reply in the thread."""
        notice = input.notice
        if input.part == "reply":
            assert input.root is not None, "a reply needs the thread's root"
            post = SlackPostInput(
                channel=input.root.channel,
                text=reply_text(notice),
                thread_ts=input.root.ts,
                token_env=input.token_env,
                key=input.key,
            )
        else:
            root = input.root
            post = SlackPostInput(
                channel=root.channel if root else input.channel,
                text=root_text(notice, self._url(notice.rollout_id, notice.run_id)),
                update_ts=root.ts if root else None,
                token_env=input.token_env,
                key=input.key,
            )
        return post_slack(post)

    @activity.defn(name="notify_webhook")
    async def notify_webhook(self, input: WebhookNoticeInput) -> int:
        """POST the notice as signed JSON; the receiver's HTTP status."""
        started = time.monotonic()
        notice = input.notice
        key = secret(input.secret_env, "webhook signing secret")
        body = webhook.encode(
            webhook_body(notice, input.delivery, self._url(notice.rollout_id, notice.run_id))
        )
        fields = {"delivery": input.delivery, "trigger": notice.trigger, "attempt": attempt()}
        try:
            status = await webhook.send(input.url, key, notice.trigger or "", input.delivery, body)
        except Exception as e:
            log.warning(
                "notify_webhook_failed", **fields, error=str(e), duration_ms=ms_since(started)
            )
            raise
        log.info("notify_webhook", **fields, status=status, duration_ms=ms_since(started))
        return status
