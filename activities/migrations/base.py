"""The migration seam: moves one database's schema to a named revision."""

from __future__ import annotations

from typing import Protocol


class Migrator(Protocol):
    """One database and the migrations that apply to it.

    Revisions are names (alembic revision ids), never relative steps, so every call is
    declarative and safe to retry: migrating to the revision the database already has is a
    no-op. ``None`` is the empty database (no revision applied; alembic's ``base``).
    """

    def current(self) -> str | None:
        """The revision the database is at, or None when none is applied."""
        ...

    def resolve(self, revision: str) -> str | None:
        """The concrete revision a name means (``head`` → ``3f2a…``), so it can be recorded."""
        ...

    def upgrade(self, revision: str) -> None:
        """Apply migrations up to ``revision``; a failure leaves the schema as it was."""
        ...

    def downgrade(self, revision: str | None) -> None:
        """Revert migrations down to ``revision`` (None: all of them)."""
        ...
