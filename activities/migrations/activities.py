"""Temporal activities that move a database between named revisions. Sync ``def``: the
worker runs them on a thread pool.

The rollout's order: ``current_revision`` (record it: it is where a rollback returns) and
``resolve_target`` (record it: ``head`` moves when code ships, a revision id does not), then
``migrate`` up to that revision before traffic moves; on rollback ``migrate`` down to the
recorded revision. Each is declarative: a retry after a lost result finds the database
already there and reports ``changed=False``.

While a migration runs the activity heartbeats every couple of seconds, so set a
``heartbeat_timeout`` (30 s is plenty); a cancel is raised into the activity's thread (a
command's process group is killed; an in-process alembic migration stops at its next
Python step, and its transaction rolls back). Set ``start_to_close_timeout`` above the
longest migration.
"""

from __future__ import annotations

import time

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clients import Clients
from activities.errors import MIGRATION_FAILED
from activities.heartbeat import keep_alive
from activities.log_fields import attempt, ms_since
from activities.migrations.base import Migrator
from activities.migrations.factory import migrator_for
from activities.migrations.models import MigrateInput, MigrationResult, RevisionInput

log = structlog.get_logger()

HEARTBEAT_INTERVAL_S = 2.0


class MigrationActivities:
    """The migration activities, building each migrator with the worker's ``clients``."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    @activity.defn(name="resolve_target")
    def resolve_target(self, input: RevisionInput) -> str | None:
        """The concrete revision the spec's target names (``head`` → ``3f2a…``)."""
        target = migrator_for(input.migrations, self.clients).resolve(input.migrations.target)
        log.info("resolve_target", key=input.key, target=input.migrations.target, revision=target)
        return target

    @activity.defn(name="current_revision")
    def current_revision(self, input: RevisionInput) -> str | None:
        """The revision the database is at, or None for the empty database."""
        started = time.monotonic()
        revision = migrator_for(input.migrations, self.clients).current()
        log.info(
            "current_revision",
            key=input.key,
            kind=input.migrations.kind,
            revision=revision,
            duration_ms=ms_since(started),
        )
        return revision

    @activity.defn(name="migrate")
    def migrate(self, input: MigrateInput) -> MigrationResult:
        """Upgrade or downgrade to ``revision``; ``MigrationFailed`` says where it left the
        schema. Heartbeats from a helper thread while the migration runs in this (the
        activity's) thread, so a cancel is still raised where the migration runs."""
        started = time.monotonic()
        fields = {
            "key": input.key,
            "kind": input.migrations.kind,
            "direction": input.direction,
            "revision": input.revision,
            "attempt": attempt(),
        }
        migrator: Migrator | None = None
        before: str | None = None
        running = f"{input.direction} to {input.revision or 'target'} running"
        try:
            migrator = migrator_for(input.migrations, self.clients)
            before = migrator.current()
            with keep_alive(running, interval=HEARTBEAT_INTERVAL_S):
                if input.direction == "upgrade":
                    migrator.upgrade(input.revision or input.migrations.target)
                else:
                    migrator.downgrade(input.revision)
            after = migrator.current()
        except ApplicationError as e:
            error = e
            if e.type == MIGRATION_FAILED and migrator is not None:
                error = _left_at(e, migrator, before)
            log.warning(
                "migrate_failed", **fields, before=before, error=e.type, message=error.message
            )
            raise error from None
        except BaseException as e:  # the cancel Temporal raises into this thread
            log.warning("migrate_failed", **fields, before=before, error=type(e).__name__)
            raise
        result = MigrationResult(before=before, after=after, changed=before != after)
        log.info(
            "migrate",
            **fields,
            before=before,
            after=after,
            changed=result.changed,
            duration_ms=ms_since(started),
        )
        return result


def _left_at(error: ApplicationError, migrator: Migrator, before: str | None) -> ApplicationError:
    """``error`` with where the schema is now; reading that may fail too (it is a failure)."""
    try:
        now = migrator.current()
    except ApplicationError:
        where = f"the schema was at {before or 'base'} before; its revision cannot be read now"
    else:
        if now == before:
            where = f"the schema was left at {before or 'base'}"
        else:
            where = f"the schema is now at {now or 'base'}, not at {before or 'base'} as before"
    message = f"{error.message}; {where}"
    return ApplicationError(
        message, *error.details, type=error.type, non_retryable=error.non_retryable
    )
