"""The ``spec.notifications`` and ``spec.onRollback`` vocabulary of rollouts and pipelines.

    spec:
      notifications:
        triggers: [on-rollout-started, on-paused, on-rolled-back, on-promoted]  # default: all
        slack:
          channel: C0123ABCD            # a channel id (or #name); one thread per run
          tokenEnv: SLACK_BOT_TOKEN     # the worker's environment variable with the bot token
        webhooks:
          - url: https://ci.example.com/hooks/deploy
            secretEnv: DEPLOY_WEBHOOK_SECRET   # HMAC-SHA256 key, from the worker's environment
            triggers: [on-rolled-back, on-promoted]                # else the section's list
      onRollback:
        incident:
          labels: {alertname: RolloutRolledBack, team: payments}  # choose the worker's runbook
          severity: critical

Trigger names are Argo Rollouts' where Argo has the event (its ``on-rollout-*`` and
``on-analysis-run-*`` spellings are accepted too). Secrets never appear in a spec: a field
that holds one inline (``token``, ``secret``, a URL with a password) is refused, naming the
``...Env`` field to use instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AnyHttpUrl, BeforeValidator, Field, field_validator

from activities.model import NOT_SERIALISED, Model, refuse
from activities.notify.models import ENV_NAME_PATTERN, Severity, SlackMessage


class Trigger(StrEnum):
    """When a notification is sent."""

    ROLLOUT_STARTED = "on-rollout-started"
    STEP_COMPLETED = "on-step-completed"
    ANALYSIS_COMPLETED = "on-analysis-completed"
    ANALYSIS_FAILED = "on-analysis-failed"
    PAUSED = "on-paused"
    RESUMED = "on-resumed"
    APPROVED = "on-approved"
    ABORTED = "on-aborted"
    ROLLED_BACK = "on-rolled-back"
    PROMOTED = "on-promoted"


ARGO_ALIASES: Final = {
    "on-rollout-step-completed": Trigger.STEP_COMPLETED,
    "on-rollout-paused": Trigger.PAUSED,
    "on-rollout-aborted": Trigger.ABORTED,
    "on-rollout-completed": Trigger.PROMOTED,
    "on-analysis-run-failed": Trigger.ANALYSIS_FAILED,
    "on-analysis-run-error": Trigger.ANALYSIS_FAILED,
}
"""Argo Rollouts' built-in trigger names (docs/features/notifications.md) that mean the same
event here. Argo's ``on-rollout-updated``, ``on-scaling-replica-set`` and
``on-analysis-run-running`` watch Kubernetes objects deployflow does not have."""

ALL_TRIGGERS: Final = tuple(Trigger)


def _trigger(value: object) -> object:
    if not isinstance(value, str) or value in Trigger._value2member_map_:
        return value
    if value in ARGO_ALIASES:
        return ARGO_ALIASES[value]
    known = ", ".join(t.value for t in Trigger)
    raise ValueError(
        f"unknown trigger {value!r}; known: {known} (or Argo's {', '.join(ARGO_ALIASES)})"
    )


TriggerName = Annotated[Trigger, BeforeValidator(_trigger)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN, max_length=128)]


def _env_name(field: str) -> BeforeValidator:
    """An ``...Env`` field must name a variable; a value that looks like the secret itself
    gets told so (and is never echoed back)."""

    def check(value: object) -> object:
        if isinstance(value, str) and not _looks_like_env_name(value):
            raise ValueError(
                f"must name an environment variable of the worker (like {field}), "
                "not hold the secret itself"
            )
        return value

    return BeforeValidator(check)


def _looks_like_env_name(value: str) -> bool:
    return (
        bool(value)
        and value[0] in "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
        and value.isascii()
        and all(c.isupper() or c.isdigit() or c == "_" for c in value)
    )


class SlackNotifications(Model):
    """One thread per run in ``channel``: a root message edited with the phase, and replies."""

    channel: str = Field(min_length=1, max_length=80, pattern=r"^#?[\w.-]+$")
    token_env: Annotated[EnvName, _env_name("SLACK_BOT_TOKEN")] = "SLACK_BOT_TOKEN"
    triggers: list[TriggerName] | None = None
    token: Annotated[
        None, refuse("a token inline; name its variable in tokenEnv"), NOT_SERIALISED
    ] = None


class Webhook(Model):
    """A JSON POST per notice, signed with HMAC-SHA256 keyed by ``secretEnv``'s value."""

    url: AnyHttpUrl
    secret_env: Annotated[EnvName, _env_name("DEPLOY_WEBHOOK_SECRET")]
    name: str | None = Field(default=None, max_length=63)
    triggers: list[TriggerName] | None = None
    secret: Annotated[
        None, refuse("a secret inline; name its variable in secretEnv"), NOT_SERIALISED
    ] = None

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if url.password:
            raise ValueError("holds a password; sign with secretEnv instead of credentials")
        return url

    def label(self, index: int) -> str:
        return self.name or f"webhook {index} ({self.url.host})"


class Notifications(Model):
    triggers: list[TriggerName] | None = None
    """Default for the Slack thread and every webhook: all triggers."""
    slack: SlackNotifications | None = None
    webhooks: list[Webhook] = Field(default_factory=list, max_length=10)

    def slack_triggers(self) -> frozenset[Trigger]:
        return _chosen(self.slack.triggers if self.slack else None, self.triggers)

    def webhook_triggers(self, webhook: Webhook) -> frozenset[Trigger]:
        return _chosen(webhook.triggers, self.triggers)


def _chosen(own: list[Trigger] | None, default: list[Trigger] | None) -> frozenset[Trigger]:
    chosen = own if own is not None else default
    return frozenset(ALL_TRIGGERS if chosen is None else chosen)


class RollbackIncident(Model):
    """An incident opened when the run rolls back on its own (analysis, deadline, a failed
    step), through the runbook the worker's runbooks choose for ``labels``."""

    labels: dict[str, str] = Field(default_factory=dict)
    severity: Severity = "critical"
    summary: str | None = Field(default=None, max_length=500)


class OnRollback(Model):
    incident: RollbackIncident | None = None


def notification_problems(spec: Any, prefix: str = "spec") -> list[str]:
    """Cross-field checks: a Slack section or webhook whose triggers are empty sends nothing."""
    notifications: Notifications | None = getattr(spec, "notifications", None)
    if notifications is None:
        return []
    problems = []
    if notifications.slack is None and not notifications.webhooks:
        problems.append(f"{prefix}.notifications: set slack or webhooks (or remove the section)")
    if notifications.slack is not None and notifications.slack.triggers == []:
        problems.append(f"{prefix}.notifications.slack.triggers: empty; remove slack instead")
    for i, webhook in enumerate(notifications.webhooks):
        if webhook.triggers == []:
            problems.append(f"{prefix}.notifications.webhooks[{i}].triggers: empty")
    return problems


def inherited(pipeline_spec: Any, stage_rollout: dict[str, Any]) -> dict[str, Any]:
    """A pipeline's ``notifications``/``onRollback`` for a stage rollout that sets none."""
    fields = {"notifications": pipeline_spec.notifications, "onRollback": pipeline_spec.on_rollback}
    return {
        name: value.model_dump(mode="json")
        for name, value in fields.items()
        if value is not None and name not in stage_rollout
    }


class NotifierState(Model):
    """What a run's notifier remembers (carried when a canary continues as new)."""

    seq: int = 0
    root: SlackMessage | None = None
    """The thread's root message, once posted."""
    root_shows: str | None = None
    """The phase and step the root line last showed: edit it when they change."""
    last_step: int | None = None
    last_step_text: str | None = None
    paused: bool = False
    final_sent: bool = False


class RollbackIncidentInput(Model):
    """What ``open_rollout_incident`` needs: the run, why it rolled back, how to choose."""

    rollout_id: str
    run_id: str
    service: str
    environment: str
    version: str
    strategy: str
    reason: str
    incident: RollbackIncident
