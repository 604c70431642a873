"""Command migrations: any migration tool, as templated argv run on the worker.

    migrations:
      command:
        upgrade:   [/srv/checkout/bin/migrate, up, "{revision}"]
        downgrade: [/srv/checkout/bin/migrate, down, "{revision}"]
        current:   [/srv/checkout/bin/migrate, version]
        target:    "20240601_add_email"

``{revision}`` is the revision to migrate to, ``base`` for the empty database; it is one
argv element (nothing goes through a shell) and ``current`` takes none. ``current`` prints
the revision on stdout: the first word of the last non-empty line counts (``alembic
current`` prints ``3f2a… (head)``), no output means the empty database. ``target`` must be a
concrete revision: ``current`` has to report it after the upgrade (this seam cannot know
what a tool's ``head`` means).

Commands inherit the worker's environment: that is where the database URL belongs, never in
the spec. An upgrade or downgrade exiting non-zero or timing out is ``MigrationFailed``,
except exit 75 (sysexits' ``EX_TEMPFAIL``): the tool says the database is unavailable and
nothing was changed, which is retryable. ``current`` failing is ``DatabaseUnavailable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from activities.argv import render
from activities.errors import DATABASE_UNAVAILABLE, INVALID_SPEC, MIGRATION_FAILED, failure
from activities.migrations.spec import CommandMigrationSpec
from activities.platforms.process import CommandRun, command_failure, run_command

BASE: Final = "base"
TEMPFAIL_EXIT: Final = 75


class CommandMigrator:
    """Migrator over the commands of a :class:`CommandMigrationSpec`."""

    def __init__(self, spec: CommandMigrationSpec) -> None:
        self.spec = spec

    def current(self) -> str | None:
        run = self._run("current", self.spec.current, None)
        if run.timed_out or run.returncode != 0:
            raise command_failure(DATABASE_UNAVAILABLE, f"current: {_outcome(run, self.spec)}", run)
        lines = [line.split() for line in run.stdout.splitlines() if line.strip()]
        return lines[-1][0] if lines else None

    def resolve(self, revision: str) -> str | None:
        """Names are passed through: a tool's own aliases cannot be resolved here."""
        return None if revision == BASE else revision

    def upgrade(self, revision: str) -> None:
        self._migrate("upgrade", self.spec.upgrade, self.resolve(revision))

    def downgrade(self, revision: str | None) -> None:
        target = None if revision is None else self.resolve(revision)
        self._migrate("downgrade", self.spec.downgrade, target)

    def _migrate(self, direction: str, template: Sequence[str], revision: str | None) -> None:
        if self.current() == revision:
            return
        run = self._run(direction, template, revision or BASE)
        doing = f"{direction} to {revision or BASE}"
        if run.returncode == TEMPFAIL_EXIT and not run.timed_out:
            raise command_failure(DATABASE_UNAVAILABLE, f"{doing}: {_outcome(run, self.spec)}", run)
        if run.timed_out or run.returncode != 0:
            raise command_failure(MIGRATION_FAILED, f"{doing}: {_outcome(run, self.spec)}", run)
        now = self.current()
        if now != revision:
            head = f"{doing}: the command succeeded but 'current' reports {now or BASE}"
            raise command_failure(MIGRATION_FAILED, head, run)

    def _run(self, name: str, template: Sequence[str], revision: str | None) -> CommandRun:
        argv = render(template, {"revision": revision}, name)
        try:
            return run_command(argv, self.spec.timeout_seconds, cwd=self.spec.workdir)
        except OSError as e:
            raise failure(INVALID_SPEC, f"{name}: cannot run {argv[0]}: {e}") from None


def _outcome(run: CommandRun, spec: CommandMigrationSpec) -> str:
    if run.timed_out:
        return f"timed out after {spec.timeout_seconds:g}s and was killed"
    return f"exited {run.returncode}"
