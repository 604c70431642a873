"""Recording stand-ins for everything a rollout touches, registered under the real
activities' names: a router that only remembers weights and server states, a platform that
only remembers which version each host runs, health checks, smoke tests and migrations
that pass, and a ``measure`` that answers from the scenario at the rollout's simulated
time (``activity.info().scheduled_time`` is the time-skipped clock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity

from activities.health.activities import CheckHealthInput, HealthReport, SmokeReport, SmokeTestInput
from activities.metrics.activities import MeasureInput, MeasureOutput
from activities.migrations.models import MigrateInput, MigrationResult, RevisionInput
from activities.platforms.base import ActionResult
from activities.platforms.models import CurrentVersionInput, PlatformActionInput
from activities.routing.base import ServerState, Weights
from activities.routing.models import (
    GetServerStatesInput,
    GetWeightsInput,
    SetServerStatesInput,
    SetWeightInput,
)
from starters.simulation.scenario import Scenario
from workflows.analysis.plan import PlannedMetric
from workflows.analysis.run import AnalysisPhase, Measurement, measurement_of
from workflows.rollouts.spec import Rollout


@dataclass
class Call:
    """One stand-in call at simulated time ``at`` (since the rollout started)."""

    at: timedelta
    activity: str
    detail: str
    measurement: Measurement | None = None


@dataclass
class StandIns:
    rollout: Rollout
    scenario: Scenario
    metrics: dict[str, PlannedMetric]
    """The spec's analysis metrics by name, to show each measurement's phase."""
    started: datetime | None = None
    """When the rollout started (server time); set once it has."""
    calls: list[Call] = field(default_factory=list)
    weights: Weights = field(default_factory=lambda: Weights(stable=100, canary=0))
    states: dict[str, ServerState] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    revision: str | None = None

    def __post_init__(self) -> None:
        live = self.rollout.spec.stable_version or "the stable version"
        self.versions = dict.fromkeys(self.rollout.spec.targets.everywhere(), live)
        self.states = dict.fromkeys(self.rollout.spec.targets.everywhere(), ServerState.READY)

    def elapsed(self) -> timedelta:
        if self.started is None or not activity.in_activity():
            return timedelta(0)
        return max(activity.info().current_attempt_scheduled_time - self.started, timedelta(0))

    def _record(self, name: str, detail: str, measurement: Measurement | None = None) -> None:
        self.calls.append(Call(self.elapsed(), name, detail, measurement))

    def answer(self, input: MeasureInput) -> MeasureOutput:
        """The scenario's reading for ``input.metric`` now."""
        piece = self.scenario.piece(input.metric, self.elapsed())
        if piece.error is not None:
            return MeasureOutput(error=piece.error)
        if piece.result is not None:
            return MeasureOutput(result=piece.result)
        values = piece.value if isinstance(piece.value, list) else [float(piece.value or 0)]
        judge = input.provider.judge
        if judge is None:
            return MeasureOutput(values=values)
        score = values[0]
        thresholds = judge.thresholds
        verdict = (
            AnalysisPhase.SUCCESSFUL
            if score >= thresholds.pass_
            else AnalysisPhase.INCONCLUSIVE
            if score >= thresholds.marginal
            else AnalysisPhase.FAILED
        )
        return MeasureOutput(values=[score], phase=verdict.value)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="set_weight")
        async def set_weight(input: SetWeightInput) -> Weights:
            self.weights = input.weights
            self._record(
                "set_weight", f"stable {input.weights.stable} / canary {input.weights.canary}"
            )
            return input.weights

        @activity.defn(name="get_weights")
        async def get_weights(input: GetWeightsInput) -> Weights:
            return self.weights

        @activity.defn(name="set_server_states")
        async def set_server_states(input: SetServerStatesInput) -> dict[str, ServerState]:
            self.states.update(input.states)
            shown = ", ".join(f"{h} {s.value}" for h, s in input.states.items())
            self._record("set_server_states", shown)
            return dict(self.states)

        @activity.defn(name="get_server_states")
        async def get_server_states(input: GetServerStatesInput) -> dict[str, ServerState]:
            return dict(self.states)

        @activity.defn(name="platform_action")
        async def platform_action(input: PlatformActionInput) -> ActionResult:
            if input.action == "deploy":
                self.versions[input.target] = input.version
            elif input.action == "stop":
                self.versions[input.target] = None
            self._record(
                "platform_action", f"{input.action} {input.version or ''} on {input.target}"
            )
            return ActionResult(
                action=input.action, target=input.target, changed=True, duration_ms=0
            )

        @activity.defn(name="current_version")
        async def current_version(input: CurrentVersionInput) -> str | None:
            return self.versions.get(input.target)

        @activity.defn(name="check_health")
        async def check_health(input: CheckHealthInput) -> HealthReport:
            self._record("check_health", f"{input.target} healthy")
            return HealthReport(target=input.target, healthy=True, probes=1, message="simulated")

        @activity.defn(name="run_smoke_tests")
        async def run_smoke_tests(input: SmokeTestInput) -> SmokeReport:
            self._record("run_smoke_tests", f"{len(input.tests)} passed on {input.base_url}")
            return SmokeReport(passed=True, results=[])

        @activity.defn(name="current_revision")
        async def current_revision(input: RevisionInput) -> str | None:
            return self.revision

        @activity.defn(name="resolve_target")
        async def resolve_target(input: RevisionInput) -> str | None:
            return input.migrations.target

        @activity.defn(name="migrate")
        async def migrate(input: MigrateInput) -> MigrationResult:
            before, self.revision = self.revision, input.revision
            self._record("migrate", f"{input.direction} to {input.revision or 'base'}")
            return MigrationResult(before=before, after=input.revision, changed=True)

        @activity.defn(name="measure")
        async def measure(input: MeasureInput) -> MeasureOutput:
            output = self.answer(input)
            planned = self.metrics.get(input.metric)
            shown = None
            if planned is not None:
                at = self.started + self.elapsed() if self.started else datetime.now()
                shown = measurement_of(planned.metric, output, at, at)
            self._record("measure", input.metric, shown)
            return output

        return [
            set_weight,
            get_weights,
            set_server_states,
            get_server_states,
            platform_action,
            current_version,
            check_health,
            run_smoke_tests,
            current_revision,
            resolve_target,
            migrate,
            measure,
        ]
