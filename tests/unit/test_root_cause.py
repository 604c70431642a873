"""Walking a Temporal failure chain to its root cause, and how the CLI prints a run that
ended without a result (pure: the exceptions are built as the SDK builds them)."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    RetryState,
    TerminatedError,
    TimeoutError,
    TimeoutType,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import ROUTER_COMMAND_FAILED, ROUTER_CONFIG_FOREIGN, failure, root_cause
from starters.errors import EXIT_FAILED, print_failed

FOREIGN = "upstream file /x/y.conf was not written by deployflow: ..."


def caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def activity(name: str, cause: BaseException) -> BaseException:
    error = ActivityError(
        "Activity task failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker@host",
        activity_type=name,
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    return caused(error, cause)


def child(workflow_id: str, cause: BaseException) -> BaseException:
    error = ChildWorkflowError(
        "Child Workflow execution failed",
        namespace="default",
        workflow_id=workflow_id,
        run_id="r1",
        workflow_type="CanaryRollout",
        initiated_event_id=7,
        started_event_id=8,
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    return caused(error, cause)


def test_an_activity_s_application_error_is_the_root_with_its_type_and_where():
    failed = WorkflowFailureError(
        cause=activity("get_weights", failure(ROUTER_CONFIG_FOREIGN, FOREIGN))
    )

    root = root_cause(failed)

    assert (root.message, root.type, root.where) == (
        FOREIGN,
        ROUTER_CONFIG_FOREIGN,
        "activity get_weights",
    )
    assert str(root) == f"{FOREIGN} (RouterConfigForeign)"
    assert root.located == f"activity get_weights: {FOREIGN} (RouterConfigForeign)"
    assert root.chain == (
        {
            "error": "ActivityError",
            "message": "Activity task failed",
            "activityType": "get_weights",
            "activityId": "1",
            "retryState": "NON_RETRYABLE_FAILURE",
        },
        {
            "error": "ApplicationError",
            "message": FOREIGN,
            "type": ROUTER_CONFIG_FOREIGN,
            "nonRetryable": True,
        },
    )


def test_a_child_workflow_s_activity_failure_names_both_on_the_way():
    chain = child(
        "rollout-checkout-staging", activity("set_weight", failure(ROUTER_CONFIG_FOREIGN, FOREIGN))
    )

    root = root_cause(WorkflowFailureError(cause=chain))

    assert (
        root.where
        == "child workflow CanaryRollout (rollout-checkout-staging) → activity set_weight"
    )
    assert [link["error"] for link in root.chain] == [
        "ChildWorkflowError",
        "ActivityError",
        "ApplicationError",
    ]


def test_the_outermost_application_error_wins_over_what_caused_it():
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory", "nginx")
        except OSError as exc:
            raise failure(ROUTER_COMMAND_FAILED, "nginx test: cannot run ['nginx', '-t']") from exc
    except ApplicationError as raised:
        wrapped = activity("set_weight", raised)

    root = root_cause(wrapped)

    assert str(root) == "nginx test: cannot run ['nginx', '-t'] (RouterCommandFailed)"
    assert root.chain[-1]["error"] == "FileNotFoundError"


def test_timeouts_cancellations_and_plain_errors_are_roots_too():
    timeout = TimeoutError(
        "activity StartToClose timeout", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
    )
    assert root_cause(activity("set_weight", timeout)).located == (
        "activity set_weight: activity StartToClose timeout (START_TO_CLOSE timeout)"
    )
    assert str(root_cause(WorkflowFailureError(cause=CancelledError("Workflow cancelled")))) == (
        "Workflow cancelled (CancelledError)"
    )
    rejected = WorkflowUpdateFailedError(
        ApplicationError("not paused: nothing to resume", type="ValueError")
    )
    assert root_cause(rejected).message == "not paused: nothing to resume"
    unreachable = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    assert (root_cause(unreachable).message, root_cause(unreachable).where) == (
        "connection refused",
        "",
    )


def test_a_failed_run_prints_one_line_with_its_root_cause(capsys: pytest.CaptureFixture[str]):
    failed = WorkflowFailureError(
        cause=activity("get_weights", failure(ROUTER_CONFIG_FOREIGN, FOREIGN))
    )

    assert print_failed("rollout-checkout-production", failed, json_output=False) == EXIT_FAILED

    assert capsys.readouterr().out == (
        "rollout-checkout-production: failed — activity get_weights: "
        f"{FOREIGN} (RouterConfigForeign)\n"
    )


def test_a_failed_run_in_json_has_outcome_reason_type_and_the_chain(
    capsys: pytest.CaptureFixture[str],
):
    failed = WorkflowFailureError(
        cause=activity("get_weights", failure(ROUTER_CONFIG_FOREIGN, FOREIGN))
    )

    print_failed("rollout-checkout-production", failed, json_output=True)

    document = json.loads(capsys.readouterr().out)
    assert document["outcome"] == "Failed"
    assert document["reason"] == f"{FOREIGN} (RouterConfigForeign)"
    assert (document["errorType"], document["where"]) == (
        ROUTER_CONFIG_FOREIGN,
        "activity get_weights",
    )
    assert [link["error"] for link in document["causes"]] == ["ActivityError", "ApplicationError"]


@pytest.mark.parametrize(
    ("cause", "outcome", "word"),
    [
        (CancelledError("Workflow cancelled"), "Cancelled", "cancelled"),
        (TerminatedError("by ops"), "Terminated", "terminated"),
        (
            TimeoutError(
                "workflow timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
            ),
            "TimedOut",
            "timed out",
        ),
        (activity("set_weight", CancelledError("Activity cancelled")), "Failed", "failed"),
    ],
)
def test_the_run_s_own_cancellation_termination_or_timeout_is_its_outcome(
    cause: BaseException, outcome: str, word: str, capsys: pytest.CaptureFixture[str]
):
    print_failed("rollout-x", WorkflowFailureError(cause=cause), json_output=True)
    assert json.loads(capsys.readouterr().out)["outcome"] == outcome
    print_failed("rollout-x", WorkflowFailureError(cause=cause), json_output=False)
    assert capsys.readouterr().out.startswith(f"rollout-x: {word} — ")
