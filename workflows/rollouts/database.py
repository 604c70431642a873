"""Moving a rollout's database between named revisions (the ``migrations`` seam).

Before traffic moves — before the new version is even deployed, since it may need the new
schema — the current revision is recorded, the target is resolved to a revision id, and
the database is upgraded to it. Undo downgrades to the recorded revision by name, never by
a relative step, so a retry cannot go one step too far. Migrations must be backward
compatible (expand, then contract in a later release) for the old version to keep working
while both run; see README.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.migrations.models import MigrateInput, MigrationResult, RevisionInput
    from activities.migrations.spec import MigrationSpec
    from workflows.core import retry


async def revision(migrations: MigrationSpec, key: str, *, target: bool = False) -> str | None:
    """The database's current revision, or (``target``) the spec's target as a revision id."""
    found: str | None = await workflow.execute_activity(
        "resolve_target" if target else "current_revision",
        RevisionInput(migrations=migrations, key=key),
        result_type=str | None,  # type: ignore[arg-type]
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=retry.MIGRATION,
        summary="resolve the target revision" if target else "read the database revision",
    )
    return found


async def migrate(
    migrations: MigrationSpec, to: str | None, key: str, *, down: bool = False
) -> MigrationResult:
    result: MigrationResult = await workflow.execute_activity(
        "migrate",
        MigrateInput(
            migrations=migrations,
            revision=to,
            direction="downgrade" if down else "upgrade",
            key=key,
        ),
        result_type=MigrationResult,
        start_to_close_timeout=timedelta(hours=1),
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=retry.MIGRATION,
        summary=f"migrate {'down' if down else 'up'} to {to or 'base'}",
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )
    return result
