"""``kind: Pipeline``: a version moves through environments, each with its rollout and gates.

```yaml
apiVersion: deployflow/v1
kind: Pipeline
metadata: {name: checkout}
spec:
  service: checkout
  policy: supersede            # or queue: what a newer version does to a running one
  stages:
    - environment: staging
      rollout: {router: ..., strategy: ...}        # a Rollout spec minus service/env/version
    - environment: production
      requiredSoakTime: 30m    # live upstream at least this long
      window: {allowed: [{days: [Mon, Tue, Wed, Thu], start: "09:00", end: "16:00"}]}
      approval: {approvers: [alice, bob], minApprovals: 1, timeout: 4h, reminderAfter: 1h,
                 escalateTo: [carol]}
      verification: {analysis: {templates: [{templateName: error-rate}]}}
      rollout: {...}
```

Gates run in that order before a stage's rollout starts: window, soak, approval.
Verification runs after the stage's rollout succeeded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from activities.model import Model
from workflows.analysis.spec import StepAnalysis
from workflows.core.durations import Duration
from workflows.core.spec import Name, SpecError, Version, validation_problems, yaml_documents
from workflows.core.windows import DAYS, check_time_zone, parse_clock
from workflows.notifications.spec import Notifications, OnRollback, inherited
from workflows.rollouts.spec import Rollout, parse_rollout


def _check_clock(value: str) -> str:
    parse_clock(value)
    return value


Clock = Annotated[str, AfterValidator(_check_clock)]


class AllowedWindow(Model):
    days: list[str] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: Clock = "00:00"
    end: Clock = "24:00"
    timezone: Annotated[str, AfterValidator(check_time_zone)] = "UTC"

    @field_validator("days")
    @classmethod
    def _known_days(cls, days: list[str]) -> list[str]:
        unknown = [d for d in days if d not in DAYS]
        if unknown:
            raise ValueError(f"unknown day(s) {', '.join(unknown)} (use {', '.join(DAYS)})")
        return days

    @model_validator(mode="after")
    def _opens(self) -> AllowedWindow:
        if parse_clock(self.start) == parse_clock(self.end):
            raise ValueError(f"start and end are both {self.start}: the window never opens")
        return self


class Freeze(Model):
    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone (e.g. 2026-12-20T00:00:00Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Window(Model):
    allowed: list[AllowedWindow] = Field(default_factory=list)
    freezes: list[Freeze] = Field(default_factory=list)

    def as_rules(
        self,
    ) -> tuple[list[tuple[list[str], Any, Any, str]], list[tuple[datetime, datetime]]]:
        allowed = [
            (w.days, parse_clock(w.start), parse_clock(w.end), w.timezone) for w in self.allowed
        ]
        freezes = [(f.start.astimezone(UTC), f.end.astimezone(UTC)) for f in self.freezes]
        return allowed, freezes


class Approval(Model):
    approvers: list[Name] = Field(min_length=1)
    min_approvals: int = Field(default=1, ge=1)
    timeout: Duration | None = None
    reminder_after: Duration | None = None
    escalate_to: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _enough_approvers(self) -> Approval:
        if self.min_approvals > len(set(self.approvers)):
            raise ValueError(
                f"minApprovals {self.min_approvals} needs at least that many approvers "
                f"(have {len(set(self.approvers))})"
            )
        if self.escalate_to and self.timeout is None:
            raise ValueError("escalateTo needs a timeout (escalation happens when it expires)")
        return self


class Verification(Model):
    analysis: StepAnalysis


class Stage(Model):
    environment: Name
    rollout: dict[str, Any]
    required_soak_time: Duration | None = None
    window: Window | None = None
    approval: Approval | None = None
    verification: Verification | None = None


class PipelineSpec(Model):
    service: Name
    version: Version | None = None
    policy: Literal["supersede", "queue"] = "supersede"
    stages: list[Stage] = Field(min_length=1)
    notifications: Notifications | None = None
    """Every stage's rollout notifies so unless its own ``rollout`` sets notifications."""
    on_rollback: OnRollback | None = None


class Pipeline(Model):
    api_version: Literal["deployflow/v1"]
    kind: Literal["Pipeline"]
    metadata: dict[str, str]
    spec: PipelineSpec

    @property
    def name(self) -> str:
        return self.metadata.get("name") or self.spec.service

    @property
    def workflow_id(self) -> str:
        return f"pipeline-{self.name}"

    def stage_rollout(self, index: int, version: str) -> Rollout:
        """The full Rollout of stage ``index`` for ``version`` (validated)."""
        stage = self.spec.stages[index]
        body = {
            "apiVersion": "deployflow/v1",
            "kind": "Rollout",
            "metadata": {"name": f"{self.name}-{stage.environment}"},
            "spec": {
                **inherited(self.spec, stage.rollout),
                **stage.rollout,
                "service": self.spec.service,
                "environment": stage.environment,
                "version": version,
            },
        }
        return parse_rollout([body], source=f"stage {stage.environment}")


def pipeline_problems(pipeline: Pipeline) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for index, stage in enumerate(pipeline.spec.stages):
        path = f"spec.stages[{index}]"
        if stage.environment in seen:
            problems.append(f"{path}.environment: {stage.environment!r} appears twice")
        seen.add(stage.environment)
        clash = {"service", "environment", "version"} & set(stage.rollout)
        if clash:
            problems.append(
                f"{path}.rollout: {', '.join(sorted(clash))} come(s) from the pipeline; remove"
            )
            continue
        try:
            rollout = pipeline.stage_rollout(index, pipeline.spec.version or "0.0.0")
        except SpecError as exc:
            problems += [p.replace("spec.", f"{path}.rollout.", 1) for p in exc.problems]
            continue
        if stage.verification is not None:
            known = {t.name for t in rollout.spec.analysis_templates}
            for r, ref in enumerate(stage.verification.analysis.templates):
                if ref.template_name not in known:
                    problems.append(
                        f"{path}.verification.analysis.templates[{r}].templateName: no "
                        f"analysisTemplate named {ref.template_name!r} in this stage's rollout"
                    )
        if index == 0 and stage.required_soak_time is not None:
            problems.append(f"{path}.requiredSoakTime: the first stage has nothing upstream")
    return problems


def parse_pipeline(document: Any, source: str = "<pipeline>") -> Pipeline:
    try:
        pipeline = Pipeline.model_validate(document)
    except ValidationError as exc:
        raise SpecError(source, validation_problems(exc)) from None
    problems = pipeline_problems(pipeline)
    if problems:
        raise SpecError(source, problems)
    return pipeline


def load_pipeline(text: str, source: str = "<pipeline>") -> Pipeline:
    """Parse and validate a pipeline file's text: one YAML document."""
    documents = [d for d in yaml_documents(text, source) if d is not None]
    if len(documents) > 1:
        raise SpecError(
            source, [f"(top level): expected one kind: Pipeline document, found {len(documents)}"]
        )
    return parse_pipeline(documents[0] if documents else None, source)
