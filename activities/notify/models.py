"""What the notify activities take and return: the contract incident runbooks are written
against.

Secrets never travel through Temporal: an input names the *environment variable* on the
worker that holds the PagerDuty routing key or the Slack bot token (``routingKeyEnv``,
``tokenEnv``), so histories, the UI and logs only ever show the name.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from activities.model import Model

Severity = Literal["critical", "error", "warning", "info"]

ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
SUMMARY_MAX = 1024  # PagerDuty's limit for payload.summary


class Link(Model):
    href: str
    text: str


class PageInput(Model):
    """One PagerDuty Events v2 event. ``dedupKey`` names the incident: a retried trigger
    for an open incident adds nothing, so retries are exactly-once in effect."""

    action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str = Field(min_length=1, max_length=255)
    routing_key_env: str = Field(default="PAGERDUTY_ROUTING_KEY", pattern=ENV_NAME_PATTERN)
    summary: str = ""
    source: str = "deployflow"
    severity: Severity = "critical"
    component: str | None = None
    custom_details: dict[str, Any] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)

    @field_validator("summary")
    @classmethod
    def _truncate(cls, value: str) -> str:
        return value[:SUMMARY_MAX]

    @model_validator(mode="after")
    def _trigger_has_summary(self) -> Self:
        if self.action == "trigger" and not self.summary.strip():
            raise ValueError("summary: required when action is trigger")
        return self


class PageResult(Model):
    """``status`` and ``message`` are PagerDuty's (``success``, ``Event processed``)."""

    action: str
    dedup_key: str
    status: str
    message: str | None = None


class SlackPostInput(Model):
    """Post ``text`` to ``channel`` (a name or an id), as a reply in ``threadTs`` if set;
    with ``updateTs``, edit that message instead of posting."""

    channel: str = Field(min_length=1)
    text: str = Field(min_length=1)
    thread_ts: str | None = None
    update_ts: str | None = None
    token_env: str = Field(default="SLACK_BOT_TOKEN", pattern=ENV_NAME_PATTERN)
    key: str | None = Field(default=None, max_length=255)
    """Posted as the message's metadata: a retry whose worker died before it could
    heartbeat finds the message by it (``conversations.history``/``.replies``) and edits it."""


class SlackMessage(Model):
    """``channel`` is the id Slack returned (use it, not a name, to update the message)."""

    channel: str
    ts: str
    thread_ts: str | None = None
