"""Picks the migrator a spec's ``migrations:`` section names; adding a kind is one ``case``."""

from __future__ import annotations

from activities.clients import Clients
from activities.migrations.base import Migrator
from activities.migrations.command import CommandMigrator
from activities.migrations.spec import AlembicMigrationSpec, CommandMigrationSpec, MigrationSpec


def migrator_for(spec: MigrationSpec, clients: Clients) -> Migrator:
    """The migrator for ``spec``, built with the worker's ``clients`` (neither kind needs
    one today: alembic connects per call, a command runs per call)."""
    match spec.selected():
        case AlembicMigrationSpec() as alembic:
            # Imported here: alembic and SQLAlchemy cost ~1 s to import, and only the
            # worker's activities need them (the CLI and workflows only read the spec).
            from activities.migrations.alembic import AlembicMigrator

            return AlembicMigrator(alembic)
        case CommandMigrationSpec() as command:
            return CommandMigrator(command)
    raise AssertionError(f"no migrator for {spec.kind}")  # a MigrationSpec field without a case
