"""A stub fleet for the VM strategies: hosts with versions, a router, health and smoke
verdicts — the activities registered by name as the real ones are."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.health.activities import (
    CheckHealthInput,
    HealthReport,
    SmokeReport,
    SmokeTestInput,
)
from activities.health.smoke import SmokeResult
from activities.metrics.activities import MeasureInput, MeasureOutput
from activities.migrations.models import MigrateInput, MigrationResult, RevisionInput
from activities.platforms.base import ActionResult
from activities.platforms.models import CurrentVersionInput, PlatformActionInput
from activities.routing.base import ServerState, Weights
from activities.routing.models import GetWeightsInput, SetServerStatesInput, SetWeightInput
from tests.workflows.harness import ERROR_RATE_TEMPLATE
from workflows.rollouts.spec import Rollout, parse_rollout

STABLE = ["10.0.0.1:80", "10.0.0.2:80"]
CANARY = ["10.0.0.3:80", "10.0.0.4:80"]


def fleet_rollout(strategy: dict[str, Any], **spec: Any) -> Rollout:
    body: dict[str, Any] = {
        "service": "checkout",
        "environment": f"test-{uuid.uuid4().hex[:8]}",
        "version": "v2",
        "router": {
            "nginx": {
                "upstream": "checkout",
                "configPath": "/nonexistent/upstream.conf",
                "stable": STABLE,
                "canary": CANARY,
            }
        },
        "platform": {
            "command": {
                "deploy": ["deploy", "{host}", "{port}", "{version}"],
                "start": ["start", "{host}"],
                "stop": ["stop", "{host}"],
                "current": ["current", "{host}"],
            }
        },
        "healthCheck": {"http": {"path": "/healthz"}, "periodSeconds": 1},
        "smokeTests": [{"name": "home", "path": "/", "bodyContains": "checkout"}],
        "strategy": strategy,
        "analysisTemplates": [ERROR_RATE_TEMPLATE],
    }
    body.update(spec)
    doc = {"apiVersion": "deployflow/v1", "kind": "Rollout", "metadata": {"name": "checkout"}}
    return parse_rollout([{**doc, "spec": body}])


@dataclass
class Fleet:
    versions: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(STABLE + CANARY, "v1")
    )
    weights: Weights = field(default_factory=lambda: Weights(stable=100, canary=0))
    states: dict[str, ServerState] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    unhealthy: set[tuple[str, str | None]] = field(default_factory=set)
    smoke_failures: set[str] = field(default_factory=set)
    measure_values: Callable[[int], list[float]] = lambda n: [0.0]
    measure_error: str | None = None  # set: every measurement is an Error (no data, NaN)
    measurements: int = 0
    revision: str | None = "0001"
    failing_revision: str | None = None
    # set_server_states fails (the HAProxy socket is gone) for keys containing one of these.
    router_failures: set[str] = field(default_factory=set)
    # platform_action fails for these (action, host) pairs, as after its last retry.
    platform_failures: set[tuple[str, str]] = field(default_factory=set)

    def actions(self, *kinds: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] in kinds]

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="set_weight")
        async def set_weight(input: SetWeightInput) -> Weights:
            self.weights = input.weights
            self.calls.append(("weights", input.weights.canary))
            return input.weights

        @activity.defn(name="get_weights")
        async def get_weights(input: GetWeightsInput) -> Weights:
            return self.weights

        @activity.defn(name="set_server_states")
        async def set_server_states(input: SetServerStatesInput) -> dict[str, ServerState]:
            if any(part in input.key for part in self.router_failures):
                raise ApplicationError(
                    "haproxy runtime API: cannot connect to /run/haproxy/admin.sock",
                    type="RouterCommandFailed",
                    non_retryable=True,  # as after the retry policy's last attempt
                )
            self.states.update(input.states)
            for host, state in input.states.items():
                self.calls.append(("state", host, state.value))
            return dict(self.states)

        @activity.defn(name="platform_action")
        async def platform_action(input: PlatformActionInput) -> ActionResult:
            host = input.target
            if (input.action, host) in self.platform_failures:
                raise ApplicationError(
                    f"ssh {host}: connection refused",
                    type="PlatformCommandFailed",
                    non_retryable=True,
                )
            if input.action == "deploy":
                self.versions[host] = input.version
            elif input.action == "stop":
                self.versions[host] = None
            self.calls.append((input.action, host, input.version))
            return ActionResult(
                action=input.action, target=host, changed=True, output=[], duration_ms=1.0
            )

        @activity.defn(name="current_version")
        async def current_version(input: CurrentVersionInput) -> str | None:
            return self.versions.get(input.target)

        @activity.defn(name="check_health")
        async def check_health(input: CheckHealthInput) -> HealthReport:
            healthy = (input.target, self.versions.get(input.target)) not in self.unhealthy
            self.calls.append(("health", input.target, healthy))
            return HealthReport(
                target=input.target,
                healthy=healthy,
                probes=1,
                message="ok" if healthy else "HTTP 503 (expected 200)",
            )

        @activity.defn(name="run_smoke_tests")
        async def run_smoke_tests(input: SmokeTestInput) -> SmokeReport:
            target = input.base_url.removeprefix("http://")
            passed = target not in self.smoke_failures
            self.calls.append(("smoke", target, passed))
            result = SmokeResult(
                name="home",
                passed=passed,
                status=200 if passed else 500,
                message="ok" if passed else "GET /: HTTP 500 (expected 200)",
            )
            return SmokeReport(passed=passed, results=[result])

        @activity.defn(name="measure")
        async def measure(input: MeasureInput) -> MeasureOutput:
            self.measurements += 1
            if self.measure_error is not None:
                return MeasureOutput(values=[], error=self.measure_error)
            return MeasureOutput(values=self.measure_values(self.measurements))

        @activity.defn(name="current_revision")
        async def current_revision(input: RevisionInput) -> str | None:
            return self.revision

        @activity.defn(name="resolve_target")
        async def resolve_target(input: RevisionInput) -> str | None:
            return "0003"

        @activity.defn(name="migrate")
        async def migrate(input: MigrateInput) -> MigrationResult:
            before = self.revision
            if input.revision == self.failing_revision:
                raise ApplicationError(
                    f"0003 failed; the schema was left at {before}",
                    type="MigrationFailed",
                    non_retryable=True,
                )
            self.revision = input.revision
            self.calls.append(("migrate", input.direction, input.revision))
            return MigrationResult(before=before, after=input.revision, changed=True)

        return [
            current_revision,
            resolve_target,
            migrate,
            set_weight,
            get_weights,
            set_server_states,
            platform_action,
            current_version,
            check_health,
            run_smoke_tests,
            measure,
        ]
