"""The runbook spec: what an incident does, step by step, as YAML (``kind: Runbook``).

    apiVersion: deployflow/v1
    kind: Runbook
    metadata: {name: checkout-errors}
    spec:
      match: {alertname: CheckoutHighErrorRate, severity: critical}
      service: checkout                 # else the alert's ``service`` label
      environment: production           # else the alert's ``environment`` label
      slack: {channel: "#incidents"}
      escalation:
        levels:
          - {name: primary, routingKeyEnv: PAGERDUTY_ROUTING_KEY, ackTimeout: 5m}
          - {name: secondary, routingKeyEnv: PAGERDUTY_ROUTING_KEY_SECONDARY, ackTimeout: 10m}
      resolveQuietPeriod: 1m
      steps:
        - page: {}
        - notify: {text: "{{alertname}} on {{service}}: {{summary}}"}
        - query: {name: error-rate, provider: {prometheus: {address: ..., query: ...}}}
        - approve: {description: roll back checkout?}
        - rollback: {}
        - wait: {until: alertResolved, timeout: 10m}

A runbook file may hold several Runbook documents; an alert gets the first whose ``match``
labels all equal the alert's. Routing keys and tokens are never in a runbook: it names the
worker's environment variables that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from activities.metrics.activities import MetricProviderSpec
from activities.model import Model, OneOf
from activities.notify.models import Severity
from activities.platforms.spec import PlatformSpec
from workflows.core.durations import Duration
from workflows.core.spec import (
    Condition,
    Metadata,
    Name,
    SpecError,
    validation_problems,
    yaml_documents,
)

ENV_NAME = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=128)]
TEMPLATE_FIELDS = (
    "alertname",
    "service",
    "environment",
    "severity",
    "summary",
    "description",
    "incident",
    "url",
)
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_LABEL = re.compile(r"^labels\.[A-Za-z_][A-Za-z0-9_]*$")


def _check_template(text: str) -> str:
    for name in _PLACEHOLDER.findall(text):
        if name not in TEMPLATE_FIELDS and not _LABEL.match(name):
            known = ", ".join(TEMPLATE_FIELDS)
            raise ValueError(f"unknown placeholder {{{{{name}}}}}; known: {known}, labels.NAME")
    return text


def render(text: str, values: Mapping[str, str]) -> str:
    """``{{service}}`` etc. replaced from ``values``; a missing label renders empty."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)


class PageStep(Model):
    """Page the first escalation level (PagerDuty Events v2) and start escalating."""

    severity: Severity | None = None  # default: from the alert's severity label
    summary: str | None = Field(default=None, max_length=1024)


class NotifyStep(Model):
    """Post to the incident's Slack thread (the first one opens it)."""

    text: str = Field(min_length=1, max_length=3000)
    channel: str | None = None  # default: spec.slack.channel


class QueryStep(Model):
    """Run a diagnostic query and attach the values to the timeline and the thread."""

    name: Name
    provider: MetricProviderSpec


class RestartStep(Model):
    """Restart the service on its servers through the platform (one at a time)."""

    servers: list[str] = Field(default_factory=list)  # default: spec.target.servers
    platform: PlatformSpec | None = None  # default: spec.target.platform


class RollbackStep(Model):
    """Emergency rollback of the service's current or last rollout."""

    to: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=1000)


class WaitMetric(Model):
    provider: MetricProviderSpec
    success_condition: Condition
    interval: Duration = "30s"


class WaitStep(Model):
    """Wait a ``duration``; or ``until: alertResolved``; or until ``metric`` succeeds,
    for at most ``timeout`` (then the runbook goes on)."""

    duration: Duration | None = None
    until: Literal["alertResolved"] | None = None
    metric: WaitMetric | None = None
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WaitStep:
        chosen = [k for k in ("duration", "until", "metric") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of duration, until, metric; got {chosen or 'none'}")
        if self.duration is not None and self.timeout is not None:
            raise ValueError("timeout applies to until/metric, not to a duration")
        return self


class ApproveStep(Model):
    """A human gate: the next step runs only once someone approves (``approve`` update).
    Rejected or timed out, the gated step is skipped."""

    description: str = Field(default="approve the next step", max_length=1000)
    timeout: Duration | None = None
    approvers: list[str] = Field(default_factory=list)  # empty: anyone


class RunbookStep(OneOf):
    label: ClassVar[str] = "step"

    page: PageStep | None = None
    notify: NotifyStep | None = None
    query: QueryStep | None = None
    restart: RestartStep | None = None
    rollback: RollbackStep | None = None
    wait: WaitStep | None = None
    approve: ApproveStep | None = None


class EscalationLevel(Model):
    name: Name
    routing_key_env: ENV_NAME = "PAGERDUTY_ROUTING_KEY"
    ack_timeout: Duration | None = None  # None: the last level waits for a human


class Escalation(Model):
    levels: list[EscalationLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def _timeouts(self) -> Escalation:
        for index, level in enumerate(self.levels[:-1]):
            if level.ack_timeout is None:
                following = self.levels[index + 1].name
                raise ValueError(f"levels[{index}].ackTimeout: needed to escalate to {following}")
        return self


class SlackTarget(Model):
    channel: str = Field(min_length=1, max_length=200)
    token_env: ENV_NAME = "SLACK_BOT_TOKEN"


class RestartTarget(Model):
    """Servers on a platform; on ``platform: kubernetes`` the Deployment (no servers)."""

    platform: PlatformSpec
    servers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _servers_fit_the_platform(self) -> RestartTarget:
        if self.platform.kubernetes is not None and self.servers:
            raise ValueError("servers: on platform kubernetes the Deployment is restarted whole")
        if self.platform.kubernetes is None and not self.servers:
            raise ValueError("servers: at least one server to restart")
        return self


class RunbookSpec(Model):
    match: dict[str, str] = Field(default_factory=dict)
    service: Name | None = None
    environment: Name | None = None
    slack: SlackTarget | None = None
    escalation: Escalation = Escalation(levels=[EscalationLevel(name="on-call")])
    resolve_quiet_period: Duration | None = None
    target: RestartTarget | None = None
    steps: list[RunbookStep] = Field(min_length=1, max_length=100)


class Runbook(Model):
    api_version: Literal["deployflow/v1"]
    kind: Literal["Runbook"]
    metadata: Metadata
    spec: RunbookSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.spec.match.items())


def runbook_problems(runbook: Runbook) -> list[str]:
    """What the models alone cannot check: templates, and restart steps that have nowhere
    to restart, notify steps with nowhere to post."""
    problems: list[str] = []
    spec = runbook.spec
    for index, step in enumerate(spec.steps):
        path = f"spec.steps[{index}]"
        if step.notify is not None:
            try:
                _check_template(step.notify.text)
            except ValueError as exc:
                problems.append(f"{path}.notify.text: {exc}")
            if step.notify.channel is None and spec.slack is None:
                problems.append(f"{path}.notify.channel: no channel here and no spec.slack")
        if step.page is not None and step.page.summary is not None:
            try:
                _check_template(step.page.summary)
            except ValueError as exc:
                problems.append(f"{path}.page.summary: {exc}")
        if step.restart is not None:
            platform = step.restart.platform or (spec.target.platform if spec.target else None)
            on_kubernetes = platform is not None and platform.kubernetes is not None
            if on_kubernetes and step.restart.servers:
                problems.append(
                    f"{path}.restart.servers: on platform kubernetes the Deployment is "
                    "restarted whole"
                )
            if not step.restart.servers and spec.target is None and not on_kubernetes:
                problems.append(f"{path}.restart.servers: none here and no spec.target")
            if step.restart.platform is None and spec.target is None:
                problems.append(f"{path}.restart.platform: none here and no spec.target")
        if step.approve is not None and index == len(spec.steps) - 1:
            problems.append(f"{path}.approve: gates the next step, and there is none")
    return problems


def parse_runbooks(documents: list[Any], source: str = "<runbooks>") -> list[Runbook]:
    """Validate parsed YAML documents, each ``kind: Runbook``; names must be unique."""
    problems: list[str] = []
    runbooks: list[Runbook] = []
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        prefix = f"document {number}: "
        try:
            runbook = Runbook.model_validate(document)
        except ValidationError as exc:
            problems += [prefix + p for p in validation_problems(exc)]
            continue
        problems += [prefix + p for p in runbook_problems(runbook)]
        runbooks.append(runbook)
    names = [r.name for r in runbooks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"metadata.name: runbook {name!r} appears twice")
    if not runbooks and not problems:
        problems.append("(top level): no kind: Runbook document")
    if problems:
        raise SpecError(source, problems)
    return runbooks


def load_runbooks(text: str, source: str = "<runbooks>") -> list[Runbook]:
    return parse_runbooks(yaml_documents(text, source), source)


def choose(runbooks: list[Runbook], labels: Mapping[str, str]) -> Runbook | None:
    """The first runbook whose ``match`` labels all equal the alert's labels."""
    return next((r for r in runbooks if r.matches(labels)), None)
