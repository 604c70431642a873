"""The floor for bench/step_overhead.py: a bare workflow that only calls ``set_weight``.

Same activity, same input type and the same one-activity-per-step shape as
``CanaryRollout`` with ``setWeight`` steps, but no timeline, status, search attributes or
phase bookkeeping. Whatever it costs per step is Temporal + the Python SDK, not deployflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.routing.base import Weights
    from activities.routing.models import SetWeightInput
    from workflows.rollouts.spec import Rollout


@workflow.defn(name="BenchBareSetWeightLoop")
class BareSetWeightLoop:
    @workflow.run
    async def run(self, rollout: Rollout) -> int:
        spec = rollout.spec
        canary = spec.strategy.canary
        if canary is None:
            raise ValueError("the bare loop runs canary steps only")
        done = 0
        for step in canary.steps:
            if step.set_weight is None:
                continue
            await workflow.execute_activity(
                "set_weight",
                SetWeightInput(
                    router=spec.router, weights=Weights.canary_at(step.set_weight), key="bench"
                ),
                result_type=Weights,
                start_to_close_timeout=timedelta(seconds=60),
            )
            done += 1
        return done
