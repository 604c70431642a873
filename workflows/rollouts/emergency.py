"""EmergencyRollback: get a service in one environment back to a known good version, now.

1. If a rollout of it is running, cancel it and wait until it has closed — a cancelled
   rollout sends its traffic back to the version that was live before it.
2. If the live version is still not the target (the bad version was already promoted, or
   ``--to`` names another one), roll the target out as fast as safely possible, as a child
   rollout with no analysis or pauses: blue-green onto the idle list for canary and
   blue-green services, the spec's own batches for rolling, recreate for recreate. Without
   a platform to deploy with, the router is flipped to the idle list, which still runs the
   version that was live before the last promotion. On Kubernetes no child rollout runs:
   traffic goes to the stable side, the team's Deployment takes back the exact pod
   template a rollout recorded while the target was live (``request.restore``), and the
   canary Deployment goes to 0 (KUBERNETES).

Idempotent: with the target already live there is nothing to do, so running it twice is
safe (the CLI also attaches to a rollback already in progress).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from activities.platforms.models import ScaleInput, SetStableInput, StableRecord, WorkloadState
    from activities.routing.base import Weights
    from workflows.core import retry, timeline
    from workflows.core import search_attributes as sa
    from workflows.core.timeline import Event
    from workflows.core.timeouts import (
        KUBERNETES_CALL,
        KUBERNETES_HEARTBEAT,
        KUBERNETES_WAIT_SLACK,
        WORKFLOW_TASK_TIMEOUT,
    )
    from workflows.core.waits import await_closed
    from workflows.rollouts import database, host_ops, instances
    from workflows.rollouts.emergency_models import RollbackRequest, RollbackResult
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.registry import workflow_type
    from workflows.rollouts.spec import Rollout

# A rollout of the service (a person, a pipeline) may start between the cancelled one
# closing and this rollback's child taking the id ``rollout-SERVICE-ENV``. The emergency
# goes first: the newcomer is cancelled (its own rollback returns its traffic) and the child
# started again; after RACE_ATTEMPTS starts it stops and says which rollout holds the id.
RACE = "emergency-cancels-a-rollout-started-meanwhile"
RACE_ATTEMPTS = 3
# On Kubernetes the rollback restores the recorded pod template itself (set_stable) instead
# of starting a child rollout, which would build a new template from the image tag.
KUBERNETES = "emergency-restores-recorded-pod-template"
# Load balancers holding different splits (router.instances) all go to one side instead of
# failing the flip with InstancesDisagree: an emergency is no time to refuse.
DISAGREEING = "emergency-flips-disagreeing-instances"


@workflow.defn(name="EmergencyRollback")
class EmergencyRollback:
    @workflow.init
    def __init__(self, request: RollbackRequest) -> None:
        self._events: list[Event] = []
        self._flipped = False

    @workflow.run
    async def run(self, request: RollbackRequest) -> RollbackResult:
        spec = request.rollout.spec
        workflow.upsert_search_attributes(
            [
                sa.DEPLOY_SERVICE.value_set(spec.service),
                sa.DEPLOY_ENVIRONMENT.value_set(spec.environment),
                sa.DEPLOY_STRATEGY.value_set("rollback"),
            ]
        )
        self._event(
            "started",
            f"{spec.service} in {spec.environment} back to {request.target or 'what ran before'}"
            f": {request.reason}",
        )
        if request.cancel_workflow_id:
            await self._cancel_running(request.cancel_workflow_id)
        if request.target is None:
            return self._result(request, "the cancelled rollout returned traffic to stable")
        body = request.rollout.model_dump(by_alias=True)
        body["spec"]["version"] = request.target
        rollout = Rollout.model_validate(body)
        if spec.platform is None:
            reason = await self._without_platform(request, bool(request.cancel_workflow_id))
        elif spec.platform.kubernetes is not None and workflow.patched(KUBERNETES):
            reason = await self._restore_workload(rollout, request)
        elif await self._already_live(rollout):
            reason = f"{request.target} is live: nothing more to do"
        else:
            await self._roll_out(rollout)
            reason = f"{request.target} is live"
        await self._restore_database(rollout, request.database_revision)
        return self._result(request, reason)

    async def _without_platform(self, request: RollbackRequest, cancelled: bool) -> str:
        """Only a router flip is possible: do it when, and only when, the idle list runs the
        target (so a second run, finding the target live, changes nothing). After a cancel,
        the cancelled rollout already put back what was live; the idle list runs the
        cancelled version, so there is nothing to flip to."""
        if request.target == request.live:
            return f"{request.target} is live: nothing more to do"
        if cancelled and request.live is None:
            return f"the cancelled rollout returned traffic to what ran before ({request.target})"
        if cancelled:
            raise ApplicationError(
                f"the cancelled rollout restored {request.live}; without a platform "
                f"deployflow cannot deploy {request.target}",
                type=errors.ROLLBACK_IMPOSSIBLE,
                non_retryable=True,
            )
        if request.target != request.idle:
            raise ApplicationError(
                f"{request.target} runs on neither list (live: {request.live or 'unknown'}, "
                f"idle: {request.idle or 'unknown'}) and without a platform deployflow "
                "cannot deploy it",
                type=errors.ROLLBACK_IMPOSSIBLE,
                non_retryable=True,
            )
        await self._flip(request.rollout)
        self._flipped = True
        return f"{request.target} is live (router flipped to the idle list)"

    async def _restore_workload(self, rollout: Rollout, request: RollbackRequest) -> str:
        """Traffic to the team's Deployment, its recorded pod template put back exactly (and
        waited for), the canary at 0. Each step is idempotent: a second run changes nothing."""
        kubernetes = rollout.spec.platform.kubernetes if rollout.spec.platform else None
        assert kubernetes is not None
        deployment = kubernetes.deployment
        record = request.restore
        if record is None and request.cancel_workflow_id:
            return f"the cancelled rollout put back {deployment.name}'s recorded pod template"
        if record is None:
            raise ApplicationError(
                f"history has no recorded pod template of {request.target} for "
                f"{deployment.describe()}: deployflow restores only a template a rollout "
                "recorded (roll the version out with `deployflow rollout start` instead)",
                type=errors.ROLLBACK_IMPOSSIBLE,
                non_retryable=True,
            )
        applied = await host_ops.set_weights(
            rollout, Weights(stable=100, canary=0), self._key("traffic")
        )
        self._event("weights", f"stable {applied.stable} % / canary {applied.canary} %")
        state = await self._workload_call(
            "set_stable",
            SetStableInput(
                platform=kubernetes,
                template=record.template,
                strategy=record.strategy,
                progress_deadline_seconds=record.progress_deadline_seconds,
                rollout=workflow.info().workflow_id,
                key=self._key("stable"),
                uid=record.uid,
            ),
            f"restore {deployment.name}'s recorded pod template ({request.target})",
            timedelta(seconds=record.progress_deadline_seconds) + KUBERNETES_WAIT_SLACK,
        )
        self._event("restore", f"{state.deployment} on {request.target}: {state.message}")
        scaled = await self._workload_call(
            "scale_workload",
            ScaleInput(platform=kubernetes, workload="canary", replicas=0, key=self._key("scale")),
            f"scale {deployment.canary_name} to 0",
            KUBERNETES_CALL,
        )
        if scaled.changed:
            self._event("canary", f"{scaled.deployment} scaled to 0")
        if not state.changed:
            return f"{request.target} is live: nothing more to do"
        return f"{request.target} is live ({_recorded(record)})"

    async def _workload_call(
        self, activity: str, input: SetStableInput | ScaleInput, summary: str, timeout: timedelta
    ) -> WorkloadState:
        state: WorkloadState = await workflow.execute_activity(
            activity,
            input,
            result_type=WorkloadState,
            start_to_close_timeout=timeout,
            heartbeat_timeout=KUBERNETES_HEARTBEAT,
            retry_policy=retry.ROLLBACK,
            summary=summary,
        )
        return state

    async def _restore_database(self, rollout: Rollout, recorded: str | None) -> None:
        """After traffic is back, the database to the target's recorded revision, by name."""
        migrations = rollout.spec.migrations
        if migrations is None or recorded is None:
            return
        now = await database.revision(migrations, self._key("db/current"))
        if now == recorded:
            self._event("database", f"already at {recorded}")
            return
        result = await database.migrate(migrations, recorded, self._key("db/down"), down=True)
        self._event("database", f"{result.before or 'base'} → {result.after or 'base'}")

    async def _cancel_running(self, workflow_id: str) -> None:
        self._event("cancel", f"cancelling {workflow_id}; its own rollback returns traffic")
        try:
            await workflow.get_external_workflow_handle(workflow_id).cancel(
                reason=f"emergency rollback {workflow.info().workflow_id}"
            )
        except ApplicationError as exc:  # already closed, or never existed
            self._event("cancel", f"{workflow_id} could not be cancelled: {exc.message}")
        status = await await_closed(workflow_id)
        self._event("cancel", f"{workflow_id} closed: {status.lower()}")

    async def _already_live(self, rollout: Rollout) -> bool:
        """With a platform: whether every live server already runs the target."""
        weights = await host_ops.get_weights(rollout)
        live = rollout.spec.targets.serving(weights)
        if rollout.spec.strategy.rolling or rollout.spec.strategy.recreate:
            live = rollout.spec.targets.everywhere()
        versions = await host_ops.previous_versions(rollout, live, self._key("current"))
        return set(versions.values()) == {rollout.spec.version}

    async def _flip(self, rollout: Rollout) -> None:
        held = await host_ops.weights_on_each(rollout)
        splits = list(held.values())
        target = flip_target(splits)
        if any(weights != splits[0] for weights in splits):
            if not workflow.patched(DISAGREEING):
                instances.agreed("get_weights", held)  # raises InstancesDisagree, as it did
            self._event(
                "instances",
                f"the load balancers disagree ({instances.held_by(held)}): all go to "
                f"stable {target.stable} % / canary {target.canary} %",
            )
        applied = await host_ops.set_weights(rollout, target, self._key("flip"))
        self._event("weights", f"stable {applied.stable} % / canary {applied.canary} % (flip)")

    async def _roll_out(self, rollout: Rollout) -> None:
        strategy = rollout.spec.strategy
        if strategy.rolling is not None:
            fast = {
                "rolling": strategy.rolling.model_dump(
                    by_alias=True, exclude={"pause_between_batches"}
                )
            }
        elif strategy.recreate is not None:
            fast = {"recreate": {}}
        else:
            delay = strategy.blue_green.scale_down_delay_seconds if strategy.blue_green else 30
            fast = {"blueGreen": {"scaleDownDelaySeconds": delay}}
        child = Rollout.model_validate(
            {
                **rollout.model_dump(by_alias=True),
                "spec": {
                    # The child must not migrate up: this workflow restores the database.
                    **rollout.spec.model_dump(by_alias=True, exclude={"strategy", "migrations"}),
                    "strategy": fast,
                },
            }
        )
        self._event("rollout", f"{child.spec.strategy.name} of {child.spec.version}")
        started = await self._start_rollout(child)
        result: RolloutResult = await started
        self._event("rollout", f"{result.outcome.value}: {result.reason}")
        if result.outcome is not RolloutPhase.PROMOTED:
            raise ApplicationError(
                f"rolling back to {child.spec.version} failed: {result.reason}",
                type=errors.ROLLBACK_FAILED,
                non_retryable=True,
            )

    async def _start_rollout(self, child: Rollout) -> workflow.ChildWorkflowHandle[Any, Any]:
        """Start the child under ``rollout-SERVICE-ENV``, cancelling a rollout that took
        the id meanwhile (RACE)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await workflow.start_child_workflow(
                    workflow_type(child),
                    child,
                    id=child.workflow_id,
                    task_timeout=WORKFLOW_TASK_TIMEOUT,
                    result_type=RolloutResult,
                    static_summary=f"emergency rollback to {child.spec.version}",
                )
            except WorkflowAlreadyStartedError:
                if not workflow.patched(RACE):
                    raise
                if attempt == RACE_ATTEMPTS:
                    raise ApplicationError(
                        f"{child.workflow_id} was started again {attempt} times while rolling "
                        f"back; the newest is still running and {child.spec.version} was not "
                        "deployed: stop what starts it, then run `deployflow rollback` again",
                        type=errors.ROLLBACK_CONFLICT,
                        non_retryable=True,
                    ) from None
                self._event("conflict", f"a rollout started as {child.workflow_id} meanwhile")
                await self._cancel_running(child.workflow_id)

    def _key(self, label: str) -> str:
        return f"{workflow.info().workflow_id}/{label}"

    def _event(self, kind: str, message: str) -> None:
        timeline.record(self._events, kind, message)
        workflow.set_current_details(message)

    def _result(self, request: RollbackRequest, reason: str) -> RollbackResult:
        self._event("finished", reason)
        return RollbackResult(
            service=request.rollout.spec.service,
            environment=request.rollout.spec.environment,
            version=request.target,
            reason=reason,
            events=self._events,
            flipped=self._flipped,
        )


def flip_target(held: list[Weights]) -> Weights:
    """The one split a flip sends every load balancer to, from what each holds. Those
    sending all traffic to one list say which list is live: all go to the other. When none
    does (a split: a rollout stopped mid-shift) or they name different lists, all go to
    stable."""
    flips = [
        Weights(stable=weights.canary, canary=weights.stable)
        for weights in held
        if weights.stable in (0, 100)
    ]
    if flips and all(flip == flips[0] for flip in flips):
        return flips[0]
    return Weights(stable=100, canary=0)


def _recorded(record: StableRecord) -> str:
    return f"{record.deployment}'s pod template as recorded, {record.image}"
