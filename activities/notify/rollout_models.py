"""What the rollout-notice activities take (``notify_slack``, ``notify_webhook``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from activities.model import Model
from activities.notify.models import ENV_NAME_PATTERN, SlackMessage
from activities.notify.notice import Notice


class SlackNoticeInput(Model):
    """``part: root`` posts the thread's root line (or edits ``root`` when given);
    ``part: reply`` replies in ``root``'s thread. ``key`` finds an earlier attempt's post."""

    channel: str = Field(min_length=1)
    token_env: str = Field(default="SLACK_BOT_TOKEN", pattern=ENV_NAME_PATTERN)
    notice: Notice
    part: Literal["root", "reply"] = "root"
    root: SlackMessage | None = None
    key: str | None = None


class WebhookNoticeInput(Model):
    """POST ``notice`` to ``url`` signed with the secret in ``secretEnv``; ``delivery`` is
    the same on every retry, so the receiver can drop repeats."""

    url: str
    secret_env: str = Field(pattern=ENV_NAME_PATTERN)
    notice: Notice
    delivery: str = Field(min_length=1, max_length=512)
