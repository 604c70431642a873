"""Every ``ApplicationError`` type deployflow raises, and whether Temporal may retry it.

    InvalidSpec            non-retryable  a spec or argument is wrong; retrying cannot help
    RouterConfigRejected   non-retryable  the router's own test (``nginx -t``) refused the
                                          rendered config; the previous config was restored
    RouterCommandFailed    retryable      a reload or runtime-API command failed after the
                                          config was accepted (transient: process restarting)
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
    NotifierNotConfigured  non-retryable  a notifier's secret or endpoint is missing from the
                                          worker's environment (the message names the env var)
    NotifyRejected         non-retryable  PagerDuty or Slack refused the request itself (invalid
                                          event, invalid_auth, channel_not_found, ...)
    NotifyFailed           retryable      PagerDuty or Slack could not be reached or answered
                                          429/5xx after the client's own short retries

Workflows catch ``ActivityError`` and look at ``cause.type`` to decide; nothing else
parses error messages.
"""

from __future__ import annotations

from typing import Final

from temporalio.exceptions import ApplicationError

INVALID_SPEC: Final = "InvalidSpec"
ROUTER_CONFIG_REJECTED: Final = "RouterConfigRejected"
ROUTER_COMMAND_FAILED: Final = "RouterCommandFailed"
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
NOTIFIER_NOT_CONFIGURED: Final = "NotifierNotConfigured"
NOTIFY_REJECTED: Final = "NotifyRejected"
NOTIFY_FAILED: Final = "NotifyFailed"

NON_RETRYABLE: Final = frozenset(
    {
        INVALID_SPEC,
        ROUTER_CONFIG_REJECTED,
        PLACEHOLDER_MISSING,
        MIGRATION_FAILED,
        ROLLBACK_IMPOSSIBLE,
        ROLLBACK_FAILED,
        ROLLBACK_CONFLICT,
        NOTIFIER_NOT_CONFIGURED,
        NOTIFY_REJECTED,
    }
)


def failure(error_type: str, message: str) -> ApplicationError:
    """Build the ``ApplicationError`` for ``error_type`` with its retryability from the table."""
    return ApplicationError(message, type=error_type, non_retryable=error_type in NON_RETRYABLE)
