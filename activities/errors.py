"""Every ``ApplicationError`` type deployflow raises, and whether Temporal may retry it.

    InvalidSpec            non-retryable  a spec or argument is wrong; retrying cannot help
    RouterConfigRejected   non-retryable  the router's own test (``nginx -t``) refused the
                                          rendered config; the previous config was restored
    RouterCommandFailed    retryable      a reload or runtime-API command failed after the
                                          config was accepted (transient: process restarting)
    RouterConfigForeign    non-retryable  the router's file was not written by deployflow and
                                          cannot be taken over as it is (its servers are not
                                          the spec's, or rewriting it would lose settings);
                                          the message says what is in it and what to do
    RouterInstanceFailed   non-retryable  a traffic activity failed on one load balancer of a
                                          router with instances (the message names it and
                                          why); raised by the workflow once every instance
                                          finished its own, so the rollout rolls back all
    InstancesDisagree      non-retryable  the load balancers of a router with instances read
                                          back different splits (or states, or routes)
    WrongLoadBalancer      non-retryable  an agent (``--host NAME``) got a traffic activity
                                          meant for another instance: two agents share a
                                          task queue; nothing was applied
    MetricQueryFailed      retryable      the metrics provider could not be reached
    PlaceholderMissing     non-retryable  a templated command names an unknown placeholder
    PlatformCommandFailed  retryable      a deploy/start/stop/restart/current command exited
                                          non-zero or could not be run
    PlatformCommandTimedOut retryable     a platform command ran past timeoutSeconds; its
                                          process group was killed
    PlatformVerifyFailed   retryable      the command succeeded but ``current`` does not show
                                          the requested state
    MigrationFailed        non-retryable  a database migration failed (schema error, a hook
                                          exited non-zero); the message says which revision
                                          the database was left at
    DatabaseUnavailable    retryable      the database could not be reached or the connection
                                          was lost (a transactional migration rolled back)
    RollbackImpossible     non-retryable  an emergency rollback's target runs on neither
                                          router list and there is no platform to deploy it
    RollbackFailed         non-retryable  the rollout an emergency rollback started to bring
                                          the target back did not promote
    RollbackConflict       non-retryable  rollouts of the service kept starting while an
                                          emergency rollback tried to take their workflow id
    KubernetesNotConfigured non-retryable the worker's kubeconfig has no such context (or no
                                          cluster at all); the message names the file
    KubernetesRequestFailed retryable     the API server could not be reached, answered 5xx or
                                          429, or a watch broke off; safe to retry
    KubernetesForbidden    non-retryable  the API server refused the worker's identity (401,
                                          403): RBAC or credentials; the message says which
                                          verb on which object
    KubernetesObjectMissing non-retryable the Deployment a spec names does not exist
    KubernetesObjectForeign non-retryable the canary Deployment's name is taken by one
                                          deployflow does not own, or the stable one's
                                          selector cannot be told apart from a canary's
    KubernetesObjectReplaced non-retryable the Deployment a recorded pod template came from
                                          was deleted and created again (another uid): a
                                          promotion, a rollback or an emergency rollback
                                          refuses to overwrite it
    KubernetesRolloutFailed non-retryable a Deployment exceeded its progress deadline
                                          (ProgressDeadlineExceeded), naming it and why
    KubernetesRequestInvalid non-retryable the API server refused a router's change as
                                          invalid (400, 422): the message quotes its reason
    NotifierNotConfigured  non-retryable  a notifier's secret or endpoint is missing from the
                                          worker's environment (the message names the env var)
    NotifyRejected         non-retryable  PagerDuty or Slack refused the request itself (invalid
                                          event, invalid_auth, channel_not_found, ...)
    NotifyFailed           retryable      PagerDuty or Slack could not be reached or answered
                                          429/5xx after the client's own short retries

Workflows catch ``ActivityError`` and look at ``cause.type`` to decide; nothing else
parses error messages. :func:`root_cause` walks a failure's chain (``WorkflowFailureError``
→ ``ChildWorkflowError`` → ``ActivityError`` → ``ApplicationError``, ...) to the error that
says what went wrong, for people: the CLI and timeline messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    NexusOperationError,
    TemporalError,
)
from temporalio.exceptions import TimeoutError as TemporalTimeout

INVALID_SPEC: Final = "InvalidSpec"
ROUTER_CONFIG_REJECTED: Final = "RouterConfigRejected"
ROUTER_COMMAND_FAILED: Final = "RouterCommandFailed"
ROUTER_CONFIG_FOREIGN: Final = "RouterConfigForeign"
ROUTER_INSTANCE_FAILED: Final = "RouterInstanceFailed"
INSTANCES_DISAGREE: Final = "InstancesDisagree"
WRONG_LOAD_BALANCER: Final = "WrongLoadBalancer"
METRIC_QUERY_FAILED: Final = "MetricQueryFailed"
PLACEHOLDER_MISSING: Final = "PlaceholderMissing"
PLATFORM_COMMAND_FAILED: Final = "PlatformCommandFailed"
PLATFORM_COMMAND_TIMED_OUT: Final = "PlatformCommandTimedOut"
PLATFORM_VERIFY_FAILED: Final = "PlatformVerifyFailed"
MIGRATION_FAILED: Final = "MigrationFailed"
DATABASE_UNAVAILABLE: Final = "DatabaseUnavailable"
ROLLBACK_IMPOSSIBLE: Final = "RollbackImpossible"
ROLLBACK_FAILED: Final = "RollbackFailed"
ROLLBACK_CONFLICT: Final = "RollbackConflict"
KUBERNETES_NOT_CONFIGURED: Final = "KubernetesNotConfigured"
KUBERNETES_REQUEST_FAILED: Final = "KubernetesRequestFailed"
KUBERNETES_FORBIDDEN: Final = "KubernetesForbidden"
KUBERNETES_OBJECT_MISSING: Final = "KubernetesObjectMissing"
KUBERNETES_OBJECT_FOREIGN: Final = "KubernetesObjectForeign"
KUBERNETES_OBJECT_REPLACED: Final = "KubernetesObjectReplaced"
KUBERNETES_ROLLOUT_FAILED: Final = "KubernetesRolloutFailed"
KUBERNETES_REQUEST_INVALID: Final = "KubernetesRequestInvalid"
NOTIFIER_NOT_CONFIGURED: Final = "NotifierNotConfigured"
NOTIFY_REJECTED: Final = "NotifyRejected"
NOTIFY_FAILED: Final = "NotifyFailed"

NON_RETRYABLE: Final = frozenset(
    {
        INVALID_SPEC,
        ROUTER_CONFIG_REJECTED,
        ROUTER_CONFIG_FOREIGN,
        ROUTER_INSTANCE_FAILED,
        INSTANCES_DISAGREE,
        WRONG_LOAD_BALANCER,
        PLACEHOLDER_MISSING,
        MIGRATION_FAILED,
        ROLLBACK_IMPOSSIBLE,
        ROLLBACK_FAILED,
        ROLLBACK_CONFLICT,
        KUBERNETES_NOT_CONFIGURED,
        KUBERNETES_FORBIDDEN,
        KUBERNETES_OBJECT_MISSING,
        KUBERNETES_OBJECT_FOREIGN,
        KUBERNETES_OBJECT_REPLACED,
        KUBERNETES_ROLLOUT_FAILED,
        KUBERNETES_REQUEST_INVALID,
        NOTIFIER_NOT_CONFIGURED,
        NOTIFY_REJECTED,
    }
)


def failure(error_type: str, message: str) -> ApplicationError:
    """Build the ``ApplicationError`` for ``error_type`` with its retryability from the table."""
    return ApplicationError(message, type=error_type, non_retryable=error_type in NON_RETRYABLE)


@dataclass(frozen=True)
class RootCause:
    """What a failure chain comes down to.

    ``message``, ``type`` and ``error`` are those of the first error in the chain that is
    not a wrapper (an ``ApplicationError``'s own text and type, a timeout, a cancellation);
    ``where`` names the wrappers on the way there (``activity set_weight``); ``chain``
    describes every link, outermost first, for ``--json``.
    """

    message: str
    type: str | None
    error: str  # the root's class: ApplicationError, CancelledError, TimeoutError, ...
    where: str
    chain: tuple[dict[str, str | bool | None], ...]

    def __str__(self) -> str:
        return f"{self.message} ({self.type})" if self.type else self.message

    @property
    def located(self) -> str:
        """Where, then what: ``activity set_weight: <message> (<type>)``."""
        return f"{self.where}: {self}" if self.where else str(self)


_WRAPPERS = (ActivityError, ChildWorkflowError, NexusOperationError)


def root_cause(exc: BaseException) -> RootCause:
    """Walk ``exc`` and its causes to the error that says what went wrong."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__
    # The client's WorkflowFailureError / WorkflowUpdateFailedError only say "Workflow
    # execution failed": Temporal errors that are no FailureError, around a cause.
    links = [e for e in chain if not _client_wrapper(e)]
    root = next((e for e in links if not isinstance(e, _WRAPPERS)), links[-1])
    return RootCause(
        message=_message(root),
        type=_type(root),
        error=type(root).__name__,
        where=" → ".join(_where(e) for e in links[: links.index(root)] if isinstance(e, _WRAPPERS)),
        chain=tuple(_describe(e) for e in links),
    )


def _client_wrapper(exc: BaseException) -> bool:
    return (
        isinstance(exc, TemporalError)
        and not isinstance(exc, FailureError)
        and (exc.__cause__ is not None)
    )


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, FailureError) else str(exc) or type(exc).__name__


def _type(exc: BaseException) -> str | None:
    if isinstance(exc, ApplicationError):
        return exc.type
    if isinstance(exc, TemporalTimeout) and exc.type is not None:
        return f"{exc.type.name} timeout"
    return type(exc).__name__


def _where(exc: BaseException) -> str:
    if isinstance(exc, ActivityError):
        return f"activity {exc.activity_type}"
    if isinstance(exc, ChildWorkflowError):
        return f"child workflow {exc.workflow_type} ({exc.workflow_id})"
    assert isinstance(exc, NexusOperationError)
    return f"nexus operation {exc.service}/{exc.operation}"


def _describe(exc: BaseException) -> dict[str, str | bool | None]:
    link: dict[str, str | bool | None] = {"error": type(exc).__name__, "message": _message(exc)}
    if isinstance(exc, ApplicationError):
        link |= {"type": exc.type, "nonRetryable": exc.non_retryable}
    elif isinstance(exc, TemporalTimeout):
        link["timeoutType"] = exc.type.name if exc.type else None
    elif isinstance(exc, ActivityError):
        link |= {"activityType": exc.activity_type, "activityId": exc.activity_id}
    elif isinstance(exc, ChildWorkflowError):
        link |= {"workflowType": exc.workflow_type, "workflowId": exc.workflow_id}
    if isinstance(exc, ActivityError | ChildWorkflowError) and exc.retry_state is not None:
        link["retryState"] = exc.retry_state.name
    return link
