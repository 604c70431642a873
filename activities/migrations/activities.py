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

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import MIGRATION_FAILED
from activities.migrations.alembic_spec import AlembicMigrationSpec
from activities.migrations.base import Migrator
from activities.migrations.command import CommandMigrationSpec, CommandMigrator
from activities.model import Model, OneOf

log = structlog.get_logger()

HEARTBEAT_INTERVAL_S = 2.0


class MigrationSpec(OneOf):
    """One-of: exactly one migration kind is set (``migrations: {alembic: {...}}``)."""

    label: ClassVar[str] = "migrations"

    alembic: AlembicMigrationSpec | None = None
    command: CommandMigrationSpec | None = None

    @property
    def target(self) -> str:
        """The revision the spec migrates to, as written (``head``, a revision id)."""
        chosen = self.alembic or self.command
        assert chosen is not None  # the one-of validator guarantees it
        return chosen.target


def migrator_for(spec: MigrationSpec) -> Migrator:
    """The migrator for ``spec``; adding a kind means a field above and a branch here."""
    if spec.alembic is not None:
        # Imported here: alembic and SQLAlchemy cost ~1 s to import, and only the worker's
        # activities need them (the CLI and workflows only read the spec).
        from activities.migrations.alembic import AlembicMigrator

        return AlembicMigrator(spec.alembic)
    if spec.command is not None:
        return CommandMigrator(spec.command)
    raise AssertionError(f"MigrationSpec validator let through {spec!r}")  # unreachable


class RevisionInput(Model):
    """``key`` is the workflow's business key (``{workflow_id}/migrate``), used in logs."""

    migrations: MigrationSpec
    key: str


class MigrateInput(Model):
    """``revision`` None means the spec's target on upgrade and the empty database on
    downgrade. Pass the revisions ``resolve_target`` and ``current_revision`` returned."""

    migrations: MigrationSpec
    revision: str | None = None
    direction: Literal["upgrade", "downgrade"]
    key: str


class MigrationResult(Model):
    """Revisions before and after this attempt; ``after`` is concrete (never ``head``)."""

    before: str | None
    after: str | None
    changed: bool


@activity.defn(name="resolve_target")
def resolve_target(input: RevisionInput) -> str | None:
    """The concrete revision the spec's target names (``head`` → ``3f2a…``)."""
    target = migrator_for(input.migrations).resolve(input.migrations.target)
    log.info("resolve_target", key=input.key, target=input.migrations.target, revision=target)
    return target


@activity.defn(name="current_revision")
def current_revision(input: RevisionInput) -> str | None:
    """The revision the database is at, or None for the empty database."""
    started = time.monotonic()
    revision = migrator_for(input.migrations).current()
    log.info(
        "current_revision",
        key=input.key,
        kind=input.migrations.kind,
        revision=revision,
        duration_ms=_ms_since(started),
    )
    return revision


@activity.defn(name="migrate")
def migrate(input: MigrateInput) -> MigrationResult:
    """Upgrade or downgrade to ``revision``; ``MigrationFailed`` says where it left the schema."""
    started = time.monotonic()
    fields = {
        "key": input.key,
        "kind": input.migrations.kind,
        "direction": input.direction,
        "revision": input.revision,
        "attempt": activity.info().attempt if activity.in_activity() else None,
    }
    migrator: Migrator | None = None
    before: str | None = None
    try:
        migrator = migrator_for(input.migrations)
        before = migrator.current()
        with _heartbeating(f"{input.direction} to {input.revision or 'target'} running"):
            if input.direction == "upgrade":
                migrator.upgrade(input.revision or input.migrations.target)
            else:
                migrator.downgrade(input.revision)
        after = migrator.current()
    except ApplicationError as e:
        error = e
        if e.type == MIGRATION_FAILED and migrator is not None:
            error = _left_at(e, migrator, before)
        log.warning("migrate_failed", **fields, before=before, error=e.type, message=error.message)
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
        duration_ms=_ms_since(started),
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


@contextmanager
def _heartbeating(details: str) -> Iterator[None]:
    """Heartbeat from a helper thread while the block runs in this (the activity's) thread,
    so a cancel is still raised where the migration runs."""
    if not activity.in_activity():
        yield
        return
    stop = threading.Event()
    context = contextvars.copy_context()  # activity.heartbeat finds its activity in here

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            context.run(activity.heartbeat, details)

    thread = threading.Thread(target=beat, name="migration-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
