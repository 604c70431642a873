"""PromotionPipeline: one version moves dev → staging → production through gates.

For each stage, in order: wait for its deployment window (and out of freezes), for the
version to have soaked upstream (``requiredSoakTime``), for enough named approvers; then
run the stage's rollout as a child workflow (id ``rollout-SERVICE-ENV``, so a manual
rollout of the same environment cannot run beside it); then verification. A stage that
does not succeed stops the pipeline: the version never reaches the stages after it.
The gates are in ``gates.py``; the verbs that decide them, in ``verbs.py``.

A newer version submitted to the running pipeline (update ``submit``, which the CLI sends
with update-with-start; also a signal) either supersedes it — the current stage's rollout is
cancelled, which rolls it back, and the pipeline continues as new with the newer version —
or queues behind it, by the spec's ``policy``. No submission is lost: one that arrives while
a superseded run winds down, or as the last stage finishes, is what runs next; a superseding
version that is itself superseded before it started is dropped, and the timeline and the
newer submission's answer say so.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.analysis.run import AnalysisPhase, AnalysisRun
    from workflows.analysis.runner import run_analysis
    from workflows.core import search_attributes as sa
    from workflows.core.spec import refuse_problems
    from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
    from workflows.promotion.gates import Halt, PipelineGates
    from workflows.promotion.models import (
        PipelineOutcome,
        PipelineRequest,
        PipelineResult,
        PipelineStatus,
        StageStatus,
    )
    from workflows.promotion.notifier import PipelineNotifier
    from workflows.promotion.spec import Stage, pipeline_problems
    from workflows.promotion.verbs import DRAIN_SUBMITS
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.registry import workflow_type


# A superseded stage's rollout was cancelled through its task; when the rollout closed in
# the same activation, that failed every workflow task after it (an invalid transition in
# the SDK's child state machine). Since this patch it is cancelled by workflow id.
CANCEL_ROLLOUT_BY_ID = "pipeline-cancel-rollout-by-id"


@workflow.defn(name="PromotionPipeline")
class PromotionPipeline(PipelineGates):
    @workflow.init
    def __init__(self, request: PipelineRequest) -> None:
        spec = request.pipeline.spec
        self._request = request
        self._status = PipelineStatus(
            name=request.pipeline.name,
            service=spec.service,
            version=request.version,
            policy=spec.policy,
            stages=[StageStatus(environment=s.environment) for s in spec.stages],
            queued=list(request.queued),
        )
        self._open_gate: int | None = None
        self._superseded_by: str | None = None
        self._rolling_out: str | None = None  # the stage rollout's workflow id while it runs
        self._notifier = PipelineNotifier(request, self._note)

    @workflow.run
    async def run(self, request: PipelineRequest) -> PipelineResult:
        refuse_problems("pipeline", pipeline_problems(request.pipeline))
        workflow.upsert_search_attributes(
            [
                sa.DEPLOY_SERVICE.value_set(request.pipeline.spec.service),
                sa.DEPLOY_STRATEGY.value_set("pipeline"),
            ]
        )
        self._event("started", f"{request.version} through {self._stage_names()}")
        stages = asyncio.create_task(self._run_stages())
        superseded = asyncio.create_task(
            workflow.wait_condition(lambda: self._superseded_by is not None)
        )
        await workflow.wait([stages, superseded], return_when=asyncio.FIRST_COMPLETED)
        superseded.cancel()
        if self._superseded_by is not None and not stages.done():
            await self._stop(stages)
            self._finish(PipelineOutcome.SUPERSEDED, f"superseded by {self._superseded_by}")
            await self._continue_with(self._superseded_by, self._status.queued)
        try:
            stages.result()
            result = self._finish(PipelineOutcome.SUCCEEDED, "every stage succeeded")
        except Halt as halt:
            result = self._finish(halt.outcome, halt.reason)
        if self._superseded_by is not None and workflow.patched(DRAIN_SUBMITS):
            # Submitted as the last stage finished (the same activation): it runs next.
            await self._continue_with(self._superseded_by, self._status.queued)
        if self._status.queued:
            # Queued versions run next, oldest first, as a fresh run of this pipeline.
            await self._continue_with(self._status.queued[0], self._status.queued[1:])
        await self._notifier.drain()
        return result

    async def _run_stages(self) -> None:
        for index, stage in enumerate(self._request.pipeline.spec.stages):
            await self._window(index, stage)
            await self._soak(index, stage)
            if stage.approval is not None:
                await self._approval(index, stage.approval)
            await self._roll_out(index)
            self._halt_if_superseded(index)
            if stage.verification is not None:
                await self._verify(index, stage)
            self._stage(index, "succeeded", f"{self._status.version} is live")

    async def _roll_out(self, index: int) -> None:
        rollout = self._request.pipeline.stage_rollout(index, self._status.version)
        status = self._status.stages[index]
        status.rollout_workflow_id = rollout.workflow_id
        self._stage(index, "rolling-out", f"rolling out {self._status.version}")
        self._rolling_out = rollout.workflow_id
        try:
            result: RolloutResult = await workflow.execute_child_workflow(
                workflow_type(rollout),
                rollout,
                id=rollout.workflow_id,
                result_type=RolloutResult,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                static_summary=(
                    f"{rollout.spec.strategy.name} {rollout.spec.service} {rollout.spec.version} "
                    f"→ {rollout.spec.environment} (pipeline {self._status.name})"
                ),
            )
        except asyncio.CancelledError:
            self._stage(index, "cancelled", "the pipeline was superseded or cancelled")
            raise
        except Exception as exc:  # a child that failed or could not start, or was superseded
            self._halt_if_superseded(index)
            self._fail(index, "failed", f"rollout did not finish: {root_cause(exc)}")
        finally:
            self._rolling_out = None
        status.outcome = result.outcome.value
        if result.outcome is not RolloutPhase.PROMOTED:
            self._fail(index, "failed", f"rollout {result.outcome.value}: {result.reason}")
        status.live_since = workflow.now()

    async def _verify(self, index: int, stage: Stage) -> None:
        assert stage.verification is not None
        rollout = self._request.pipeline.stage_rollout(index, self._status.version)
        self._stage(index, "verifying", "running verification analysis")
        run = AnalysisRun(
            name=f"verify-{stage.environment}",
            templates=[t.template_name for t in stage.verification.analysis.templates],
            started_at=workflow.now(),
        )
        phase = await run_analysis(rollout, run, f"{workflow.info().workflow_id}/{run.name}")
        if phase is not AnalysisPhase.SUCCESSFUL:
            detail = next((m.message for m in run.metrics if m.message), "")
            self._fail(index, "failed", f"verification {phase.value}: {detail}".rstrip(": "))

    async def _stop(self, stages: asyncio.Task[None]) -> None:
        """Stop a superseded run's stages: a running rollout is cancelled by id (its own
        rollback returns its traffic) and the stages end with it; anything else — a
        window, a soak, a gate — is cancelled at once."""
        child = self._rolling_out
        if child is not None and workflow.patched(CANCEL_ROLLOUT_BY_ID):
            reason = f"pipeline {self._status.name}: superseded by {self._superseded_by}"
            # It may have closed in the meantime: then the stages end on its outcome.
            with contextlib.suppress(ApplicationError):
                await workflow.get_external_workflow_handle(child).cancel(reason=reason)
        else:
            stages.cancel()
        with contextlib.suppress(asyncio.CancelledError, Halt):
            await stages

    def _halt_if_superseded(self, index: int) -> None:
        """After a rollout that was being cancelled by id ended (cancelled, or finished
        just before the cancel): this run stops there."""
        if self._superseded_by is None or not workflow.patched(CANCEL_ROLLOUT_BY_ID):
            return
        self._stage(index, "cancelled", f"superseded by {self._superseded_by}")
        raise Halt(PipelineOutcome.SUPERSEDED, f"superseded by {self._superseded_by}")

    def _stage_names(self) -> str:
        return " → ".join(s.environment for s in self._status.stages)

    def _finish(self, outcome: PipelineOutcome, reason: str) -> PipelineResult:
        self._status.outcome = outcome
        self._status.message = reason
        self._event("finished", f"{outcome.value}: {reason}")
        return PipelineResult(
            outcome=outcome,
            reason=reason,
            version=self._status.version,
            stages=self._status.stages,
            events=self._status.events,
        )

    async def _continue_with(self, version: str, queued: list[str]) -> NoReturn:
        await self._notifier.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            PipelineRequest(pipeline=self._request.pipeline, version=version, queued=queued)
        )
