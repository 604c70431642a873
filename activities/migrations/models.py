"""The inputs and results of the migration activities."""

from __future__ import annotations

from typing import Literal

from activities.migrations.spec import MigrationSpec
from activities.model import Model


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
