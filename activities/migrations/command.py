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
from string import Formatter
from typing import Annotated, Final

from pydantic import AfterValidator, Field, field_validator
from temporalio.exceptions import ApplicationError

from activities.errors import (
    DATABASE_UNAVAILABLE,
    INVALID_SPEC,
    MIGRATION_FAILED,
    NON_RETRYABLE,
    failure,
)
from activities.model import Model, PositiveSeconds
from activities.platforms.command import render
from activities.platforms.process import CommandRun, run_command

BASE: Final = "base"
TEMPFAIL_EXIT: Final = 75
SYMBOLIC: Final = frozenset({"head", "heads", "base", "latest"})


def _placeholders(arg: str, allowed: tuple[str, ...]) -> str:
    """``arg`` if its placeholders are all in ``allowed``; ``ValueError`` naming the bad one."""
    try:
        parsed = list(Formatter().parse(arg))
    except ValueError as e:
        raise ValueError(f"{e} (write {{{{ or }}}} for a literal brace)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            known = ", ".join(f"{{{n}}}" for n in allowed) or "no placeholders"
            raise ValueError(f"unknown placeholder {{{name}}} (this command takes {known})")
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no conversion or format spec")
    return arg


def _with_revision(arg: str) -> str:
    return _placeholders(arg, ("revision",))


def _without(arg: str) -> str:
    return _placeholders(arg, ())


RevisionArgv = Annotated[list[Annotated[str, AfterValidator(_with_revision)]], Field(min_length=1)]
PlainArgv = Annotated[list[Annotated[str, AfterValidator(_without)]], Field(min_length=1)]


class CommandMigrationSpec(Model):
    """Argv templates for a migration tool; see the module docstring."""

    upgrade: RevisionArgv
    downgrade: RevisionArgv
    current: PlainArgv
    target: str = Field(min_length=1)
    timeout_seconds: PositiveSeconds = 600.0
    workdir: str | None = None

    @field_validator("target")
    @classmethod
    def _concrete(cls, value: str) -> str:
        if value in SYMBOLIC:
            raise ValueError(f"must be a concrete revision; {value!r} means nothing to 'current'")
        return value


class CommandMigrator:
    """Migrator over the commands of a :class:`CommandMigrationSpec`."""

    def __init__(self, spec: CommandMigrationSpec) -> None:
        self.spec = spec

    def current(self) -> str | None:
        run = self._run("current", self.spec.current, None)
        if run.timed_out or run.returncode != 0:
            raise _failure(DATABASE_UNAVAILABLE, f"current: {_outcome(run, self.spec)}", run)
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
            raise _failure(DATABASE_UNAVAILABLE, f"{doing}: {_outcome(run, self.spec)}", run)
        if run.timed_out or run.returncode != 0:
            raise _failure(MIGRATION_FAILED, f"{doing}: {_outcome(run, self.spec)}", run)
        now = self.current()
        if now != revision:
            head = f"{doing}: the command succeeded but 'current' reports {now or BASE}"
            raise _failure(MIGRATION_FAILED, head, run)

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


def _failure(error_type: str, head: str, run: CommandRun) -> ApplicationError:
    """Message ends with the last output lines; details carry the tail for the workflow."""
    last = "\n".join(run.output[-5:])
    message = (f"{head}:\n{last}" if last else head)[:2000]
    details = {"exitCode": run.returncode, "timedOut": run.timed_out, "output": run.output}
    return ApplicationError(
        message, details, type=error_type, non_retryable=error_type in NON_RETRYABLE
    )
