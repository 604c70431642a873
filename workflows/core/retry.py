"""How long each kind of activity is worth retrying, and why — one place for the policies.

An activity scheduled without a policy is retried by Temporal forever (1 s doubling to
100 s): the workflow then waits on a bug or a lost dependency without saying so, and a
scheduled run that never ends blocks its schedule. Every policy here is bounded by attempts
or by a deadline the caller passes as ``schedule_to_close_timeout``, and never retries the
types ``activities.errors`` lists as non-retryable.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities import errors


def policy(initial: timedelta, maximum: timedelta, attempts: int = 0) -> RetryPolicy:
    """Backoff from ``initial`` doubling to ``maximum``; ``attempts`` 0 means until the
    caller's ``schedule_to_close_timeout``. Non-retryable deployflow errors stop at once."""
    return RetryPolicy(
        initial_interval=initial,
        maximum_interval=maximum,
        maximum_attempts=attempts,
        non_retryable_error_types=sorted(errors.NON_RETRYABLE),
    )


# measure, memory_trend: a provider failure comes back as data (``MeasureOutput.error``),
# so a raise is a lost worker or a bug. One more attempt covers the worker; a bug is then
# reported (an inconclusive finding, a failed step) instead of retried for ever.
MEASURE = policy(timedelta(milliseconds=200), timedelta(seconds=1), attempts=2)

# open_incident: signal-with-start keyed by the alert group, so repeating it never opens a
# second incident. It fails only when the worker's client cannot reach Temporal (or on a
# bug): five attempts over ~15 s ride out a frontend restart, and the next monitor run, or
# the healer's next report, tries again.
INTAKE = policy(timedelta(seconds=1), timedelta(seconds=10), attempts=5)

# page, post_slack: the dedup key (PagerDuty) and the heartbeated message ts (Slack) make
# every retry safe, so keep trying through an outage — for NOTIFY_DEADLINE.
NOTIFY = policy(timedelta(seconds=1), timedelta(seconds=30))
NOTIFY_DEADLINE = timedelta(minutes=10)
# A rollout's own notices (notify_slack, notify_webhook): the same policy, for less time —
# they go out one after another, and a notice that is minutes late is noise.
ROLLOUT_NOTIFY_DEADLINE = timedelta(minutes=2)

# await_closed: it polls and heartbeats, so a retry means a lost worker or the server
# restarting. A rollout whose rollback cannot finish stays open (and says so), so the
# waiter gives up after AWAIT_CLOSED_DEADLINE and names the workflow that never closed.
AWAIT_CLOSED = policy(timedelta(seconds=1), timedelta(seconds=30))
AWAIT_CLOSED_DEADLINE = timedelta(hours=2)

# Migrations: a lost connection rolls a transactional migration back, so a retry starts
# clean; five attempts (~1 min of backoff) ride out a database restart, and a migration
# that keeps failing stops the rollout with the database at a named revision.
MIGRATION = policy(timedelta(seconds=2), timedelta(seconds=30), attempts=5)

# set_weight, get_weights, set_server_states moving forward: declarative, so a retry
# re-applies the same state. Six attempts (~15 s) ride out a reload racing a restart;
# then the step fails and the rollout rolls back.
ROUTER = policy(timedelta(milliseconds=500), timedelta(seconds=10), attempts=6)

# The same activities rolling back, and a rollback's platform actions: never give up on a
# transient failure (a non-retryable one is retried by the rollout itself, which stays open
# and says so until traffic is back on stable).
ROLLBACK = policy(timedelta(milliseconds=500), timedelta(seconds=30))

# deploy/start/stop/current on a host: three attempts, then the rollout rolls back.
PLATFORM = policy(timedelta(milliseconds=500), timedelta(seconds=30), attempts=3)

# check_health, run_smoke_tests: a verdict is a result, not an error, so a raise is a lost
# worker (or a malformed target, non-retryable): one more attempt.
CHECK = policy(timedelta(seconds=1), timedelta(seconds=10), attempts=2)

# Kubernetes reads and writes moving forward: each reads back before it writes, so a retry
# (a 5xx, a broken watch, a SIGKILLed worker) re-applies the same state or only waits. Five
# attempts (~30 s of backoff) ride out an API server restart; a missed progress deadline,
# RBAC or a missing Deployment are non-retryable and stop at once. Rolling back: ROLLBACK.
KUBERNETES = policy(timedelta(seconds=1), timedelta(seconds=15), attempts=5)
