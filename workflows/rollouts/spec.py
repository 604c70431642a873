"""The rollout spec: Argo Rollouts' vocabulary as pydantic models, plus loading and linting.

A spec file holds one ``kind: Rollout`` document (deployflow/v1, or an Argo Rollout manifest,
argoproj.io/v1alpha1, translated by ``workflows/rollouts/argo_rollout.py``) and, optionally,
``kind: AnalysisTemplate``
and ``kind: ClusterAnalysisTemplate`` documents (deployflow/v1 or Argo's
argoproj.io/v1alpha1, so templates pasted from Argo docs work; the analysis vocabulary is
``workflows/analysis/spec.py``). ``load_rollout`` returns a validated ``Rollout`` or raises
``SpecError`` whose messages each start with the path of the offending field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from activities.health.spec import HealthCheck, SmokeTest
from activities.migrations.spec import MigrationSpec
from activities.model import Model, OneOf
from activities.platforms.spec import PlatformSpec
from activities.routing.base import HeaderMatch, HeaderRoute
from activities.routing.kube_spec import ReplicasRouterSpec
from activities.routing.spec import RouterSpec
from workflows.analysis.plan import reference_problems, template_problems
from workflows.analysis.spec import (
    AnalysisTemplate,
    BackgroundAnalysis,
    StepAnalysis,
)
from workflows.core.durations import Duration, parse_duration
from workflows.core.spec import (
    Metadata,
    Name,
    SpecError,
    Version,
    validation_problems,
    yaml_documents,
)
from workflows.notifications.spec import Notifications, OnRollback, notification_problems
from workflows.rollouts.argo_rollout import (
    Translation,
    is_argo_rollout,
    is_kubernetes_object,
    translate,
)
from workflows.rollouts.groups import Groups
from workflows.rollouts.rolling_plan import batch_size, parse_int_or_percent, resolve
from workflows.rollouts.targets import Targets, targets_for

TEMPLATE_KINDS = {
    "AnalysisTemplate": "analysisTemplates",
    "ClusterAnalysisTemplate": "clusterAnalysisTemplates",
}


class Pause(Model):
    """``pause: {duration: 30m}`` is a timer; ``pause: {}`` waits for ``promote``."""

    duration: Duration | None = None

    @property
    def timeout(self) -> timedelta | None:
        return None if self.duration is None else parse_duration(self.duration)


class SetHeaderRoute(Model):
    """Argo's ``setHeaderRoute``: with ``match``, requests whose headers all match go to the
    canary whatever the weights; without, the route called ``name`` is removed. Header
    routes end with the rollout (promoted or rolled back)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    match: list[HeaderMatch] | None = None

    @property
    def route(self) -> HeaderRoute | None:
        """The route to hold, or None to remove it."""
        return HeaderRoute(name=self.name, match=self.match) if self.match else None


class CanaryStep(Model):
    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None
    analysis: StepAnalysis | None = None
    set_header_route: SetHeaderRoute | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryStep:
        kinds = ("set_weight", "pause", "analysis", "set_header_route")
        chosen = [n for n in kinds if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "a step is exactly one of setWeight, pause, analysis or setHeaderRoute"
            )
        return self

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"setWeight {self.set_weight}"
        if self.pause is not None:
            return (
                f"pause {self.pause.duration}" if self.pause.duration else "pause (until promoted)"
            )
        if self.set_header_route is not None:
            route = self.set_header_route
            return f"setHeaderRoute {route.name}" + ("" if route.match else " (remove)")
        assert self.analysis is not None
        return "analysis " + ", ".join(t.template_name for t in self.analysis.templates)


class CanaryStrategy(Model):
    steps: list[CanaryStep] = Field(min_length=1)
    analysis: BackgroundAnalysis | None = None


DRAIN_SECONDS = 10
IntOrPercent = Annotated[int | str, AfterValidator(parse_int_or_percent)]


class BlueGreenStrategy(Model):
    """Argo's blueGreen: deploy to the idle pool, check it, switch all traffic at once.

    The router's two server lists are the two pools; whichever has 100 % is active.
    """

    auto_promotion_enabled: bool = True
    auto_promotion_seconds: int | None = Field(default=None, ge=0)
    pre_promotion_analysis: StepAnalysis | None = None
    post_promotion_analysis: StepAnalysis | None = None
    scale_down_delay_seconds: int = Field(default=30, ge=0)
    abort_scale_down_delay_seconds: int = Field(default=30, ge=0)


class RollingStrategy(Model):
    """Batches of hosts drained at the router, updated, health-checked and put back."""

    max_unavailable: IntOrPercent = "25%"
    max_surge: IntOrPercent = "25%"
    pause_between_batches: Duration | None = None
    # After a batch is drained, wait this long for its requests in flight to finish
    # before deploying (a load balancer's deregistration delay).
    drain_seconds: int = Field(default=DRAIN_SECONDS, ge=0)


class RecreateStrategy(Model):
    """Stop every host, deploy, start, health-check: downtime accepted."""


class Strategy(OneOf):
    label: ClassVar[str] = "strategy"

    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    rolling: RollingStrategy | None = None
    recreate: RecreateStrategy | None = None

    @property
    def name(self) -> str:
        """``canary``, ``blueGreen``, ``rolling`` or ``recreate``."""
        return self.kind


class RolloutSpec(Model):
    service: Name
    environment: Name
    version: Version
    groups: Groups = Field(default_factory=list)
    """What ``deployflow rollback --scope GROUP`` matches (workflows/rollouts/groups.py)."""
    stable_version: Version | None = None
    """The version the stable servers run now: ``{{stableVersion}}`` in analysis queries (the
    baseline of a comparison), ``podTemplateHashValue: Stable`` in args."""
    router: RouterSpec
    strategy: Strategy
    platform: PlatformSpec | None = None
    health_check: HealthCheck | None = None
    smoke_tests: list[SmokeTest] = Field(default_factory=list)
    migrations: MigrationSpec | None = None
    analysis_templates: list[AnalysisTemplate] = Field(default_factory=list)
    cluster_analysis_templates: list[AnalysisTemplate] = Field(default_factory=list)
    """``kind: ClusterAnalysisTemplate`` documents: referred to with ``clusterScope: true``."""
    progress_deadline_seconds: int | None = Field(default=None, ge=1)
    notifications: Notifications | None = None
    on_rollback: OnRollback | None = None

    @property
    def targets(self) -> Targets:
        """Where the stable and the canary version run (see workflows/rollouts/targets.py)."""
        return targets_for(self.router, self.platform)


class Rollout(Model):
    api_version: Literal["deployflow/v1"]
    kind: Literal["Rollout"]
    metadata: Metadata
    spec: RolloutSpec
    carried: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    """Set only by a canary that continues as new (its ``CanaryCarry``); never in a file."""

    @property
    def workflow_id(self) -> str:
        """One rollout per service and environment at a time: the id says which."""
        return rollout_workflow_id(self.spec.service, self.spec.environment)

    def template(self, name: str) -> AnalysisTemplate | None:
        """The (cluster) analysis template called ``name`` (names are unique across both)."""
        templates = [*self.spec.analysis_templates, *self.spec.cluster_analysis_templates]
        return next((t for t in templates if t.name == name), None)


def rollout_workflow_id(service: str, environment: str) -> str:
    return f"rollout-{service}-{environment}"


def analysis_references(rollout: Rollout) -> list[tuple[str, StepAnalysis, bool]]:
    """Every reference to analysis templates in the strategy: (spec path, reference,
    whether it blocks — a step's, which must finish — or runs in the background)."""
    refs: list[tuple[str, StepAnalysis, bool]] = []
    canary, blue_green = rollout.spec.strategy.canary, rollout.spec.strategy.blue_green
    if canary is not None:
        refs += [
            (f"spec.strategy.canary.steps[{i}].analysis", s.analysis, True)
            for i, s in enumerate(canary.steps)
            if s.analysis is not None
        ]
        if canary.analysis is not None:
            refs.append(("spec.strategy.canary.analysis", canary.analysis, False))
    if blue_green is not None:
        for field, analysis in (
            ("prePromotionAnalysis", blue_green.pre_promotion_analysis),
            ("postPromotionAnalysis", blue_green.post_promotion_analysis),
        ):
            if analysis is not None:
                refs.append((f"spec.strategy.blueGreen.{field}", analysis, True))
    return refs


def rollout_problems(rollout: Rollout) -> list[str]:
    """Cross-field checks pydantic cannot express per field; empty when the spec is sound."""
    problems: list[str] = template_problems(rollout)
    spec = rollout.spec
    canary = spec.strategy.canary
    starting = canary.analysis.starting_step if canary and canary.analysis else None
    if canary is not None and starting is not None and starting >= len(canary.steps):
        problems.append(
            f"spec.strategy.canary.analysis.startingStep: {starting} is past the last step "
            f"(there are {len(canary.steps)} steps, numbered from 0)"
        )
    rolling = spec.strategy.rolling
    if spec.targets.workloads is not None:
        problems += kubernetes_problems(spec)
    elif rolling is not None:
        try:
            batch_size(len(spec.targets.everywhere()), rolling.max_unavailable, rolling.max_surge)
        except ValueError as exc:
            problems.append(f"spec.strategy.rolling.maxUnavailable: {exc}")
    if spec.strategy.name != "canary" and spec.platform is None:
        problems.append(
            f"spec.platform: required by strategy {spec.strategy.name} "
            "(it says how a version is deployed onto a host)"
        )
    command = spec.platform.command if spec.platform else None
    if spec.strategy.recreate is not None and command is not None and not command.stop:
        problems.append("spec.platform.command.stop: required by strategy recreate")
    for path, analysis, blocking in analysis_references(rollout):
        problems += reference_problems(rollout, path, analysis, blocking)
    if canary is not None:
        problems += traffic_problems(spec.router, canary)
    if spec.router.replicas is not None:
        problems += replica_count_problems(spec, spec.router.replicas)
    if spec.platform is not None and spec.platform.kubernetes is None and not spec.targets.stable:
        problems.append(
            f"spec.platform: router {spec.router.kind} lists no hosts for platform "
            f"{spec.platform.kind} to deploy to (use platform kubernetes)"
        )
    return problems + notification_problems(spec)


def traffic_problems(router: RouterSpec, canary: CanaryStrategy) -> list[str]:
    """What the steps ask of the router that it cannot do: a split of a router that only
    switches, header routes it cannot hold (checked with every route set so far)."""
    problems = []
    held: dict[str, HeaderRoute] = {}
    for index, step in enumerate(canary.steps):
        path = f"spec.strategy.canary.steps[{index}]"
        if step.set_weight is not None and step.set_weight not in (0, 100) and not router.splits:
            problems.append(
                f"{path}.setWeight: router {router.kind} moves all traffic at once "
                "(0 or 100 only; use blueGreen, or a router that splits)"
            )
        header = step.set_header_route
        if header is None:
            continue
        route = header.route
        if route is None:
            held.pop(header.name, None)
        else:
            held[header.name] = route
        problem = router.header_routes_problem(list(held.values()))
        if problem is not None:
            problems.append(f"{path}.setHeaderRoute: {problem}")
    return problems


def replica_count_problems(spec: RolloutSpec, router: ReplicasRouterSpec) -> list[str]:
    """The replica-count canary scales the platform's two Deployments, so it needs them."""
    where = "spec.router.replicas"
    if spec.strategy.canary is None:
        return [f"{where}: weights by replica counts are for strategy canary"]
    deployment = spec.targets.workloads
    if deployment is None:
        return [f"{where}: scales Deployments: needs platform kubernetes"]
    problems = []
    mine = (router.deployment, router.namespace, router.context)
    if mine != (deployment.name, deployment.namespace, deployment.context):
        problems.append(
            f"{where}.deployment: must be the platform's Deployment "
            f"({deployment.describe()}), got {router.context or 'default'}/{router.namespace}/"
            f"deployment/{router.deployment}"
        )
    if deployment.canary_replicas is not None:
        problems.append(
            "spec.platform.kubernetes.deployment.canaryReplicas: not used with router replicas "
            "(each setWeight sets the canary's pods)"
        )
    return problems


def kubernetes_problems(spec: RolloutSpec) -> list[str]:
    """What a spec may not ask of Kubernetes workloads (docs/kubernetes.md)."""
    problems = []
    if spec.health_check is not None:
        problems.append(
            "spec.healthCheck: not used with platform kubernetes: health is the pods' "
            "readiness (give the container a readinessProbe)"
        )
    if spec.smoke_tests:
        problems.append(
            "spec.smokeTests: not supported with platform kubernetes (they probe host:port)"
        )
    rolling = spec.strategy.rolling
    if rolling is not None:
        # Compared with the defaults, not ``model_fields_set``: a spec that went through a
        # workflow's input has every field set.
        if rolling.pause_between_batches is not None:
            problems.append(_not_on_kubernetes("pauseBetweenBatches"))
        if rolling.drain_seconds != DRAIN_SECONDS:
            problems.append(_not_on_kubernetes("drainSeconds"))
        if all(
            resolve(value, 100, round_up=False) == 0
            for value in (rolling.max_unavailable, rolling.max_surge)
        ):
            problems.append(
                "spec.strategy.rolling.maxUnavailable: may not be 0 when maxSurge is 0 "
                "(the Deployment could never start its update)"
            )
    return problems


def _not_on_kubernetes(field: str) -> str:
    return (
        f"spec.strategy.rolling.{field}: not used with platform kubernetes "
        "(the Deployment controller paces the update)"
    )


def parse_rollout(documents: list[Any], source: str = "<spec>") -> Rollout:
    """Validate already-parsed YAML/JSON documents into a ``Rollout``."""
    problems: list[str] = []
    rollouts: list[dict[str, Any]] = []
    templates: dict[str, list[dict[str, Any]]] = {field: [] for field in TEMPLATE_KINDS.values()}
    argo: Translation | None = None
    for number, document in enumerate(documents, start=1):
        kind = document.get("kind") if isinstance(document, dict) else None
        if is_argo_rollout(document):
            argo = translate(document)
            problems += argo.problems
            rollouts.append(argo.body)
        elif kind == "Rollout":
            rollouts.append(document)
        elif isinstance(kind, str) and kind in TEMPLATE_KINDS:
            shape = _template_shape_problems(number, document)
            problems += shape
            if not shape:
                metadata, template = document.get("metadata") or {}, document.get("spec") or {}
                templates[TEMPLATE_KINDS[kind]].append({"name": metadata.get("name"), **template})
        elif is_kubernetes_object(document) and any(map(is_argo_rollout, documents)):
            continue  # a Service or route beside an Argo Rollout: kubectl applies it, not us
        elif document is not None:
            got = kind if isinstance(document, dict) else type(document).__name__
            problems.append(
                f"document {number}: kind must be Rollout, AnalysisTemplate or "
                f"ClusterAnalysisTemplate, got {got!r}"
            )
    if len(rollouts) != 1:
        problems.append(f"(top level): expected exactly one kind: Rollout, found {len(rollouts)}")
        raise SpecError(source, problems)
    body = dict(rollouts[0])
    if "carried" in body:
        problems.append("carried: written by a canary that continues as new, not part of a spec")
    spec = body.get("spec")
    for field, documents_of_kind in templates.items():
        if documents_of_kind and isinstance(spec, dict):
            inline = spec.get(field) or []
            if isinstance(inline, list):
                spec = body["spec"] = {**spec, field: [*inline, *documents_of_kind]}
    if argo is not None and argo.problems:
        raise SpecError(source, problems)  # the body is incomplete: its errors would repeat
    located = argo.located if argo is not None else str
    try:
        rollout = Rollout.model_validate(body)
    except ValidationError as exc:
        raise SpecError(source, problems + [located(p) for p in validation_problems(exc)]) from None
    problems += [located(p) for p in rollout_problems(rollout)]
    if problems:
        raise SpecError(source, problems)
    return rollout


def _template_shape_problems(number: int, document: dict[str, Any]) -> list[str]:
    """A ``kind: AnalysisTemplate`` document's metadata and spec must be mappings."""
    return [
        f"document {number}: {field}: must be a mapping (key: value), "
        f"got {type(document[field]).__name__}"
        for field in ("metadata", "spec")
        if document.get(field) is not None and not isinstance(document[field], dict)
    ]


def load_rollout(text: str, source: str = "<spec>") -> Rollout:
    """Parse and validate a spec file's text (YAML, possibly several documents)."""
    return parse_rollout(yaml_documents(text, source), source)
