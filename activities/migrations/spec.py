"""The ``migrations:`` vocabulary of a spec: one model per migration kind and the
``MigrationSpec`` one-of. Pure pydantic, apart from the implementations, so reading a spec
(a workflow, the CLI) imports neither alembic and SQLAlchemy nor subprocess code.

    migrations:
      alembic: {config: /srv/checkout/alembic.ini, target: head, urlEnv: DATABASE_URL}
      command: {upgrade: [...], downgrade: [...], current: [...], target: 20240601_add_email}
"""

from __future__ import annotations

import os
from typing import Annotated, ClassVar, Final

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from activities.argv import placeholders
from activities.migrations.url import ENV_NAME
from activities.model import Model, OneOf, PositiveSeconds

SYMBOLIC: Final = frozenset({"head", "heads", "base", "latest"})
RELATIVE_CHARS: Final = frozenset("+-:")  # "-1", "head+2", "a:b": never in a revision id


def no_relative(revision: str) -> str:
    """``revision`` itself, or ValueError when it is a step or a range."""
    if RELATIVE_CHARS & set(revision):
        raise ValueError("must name a revision (head, a revision id), not a step or range")
    return revision


class AlembicMigrationSpec(Model):
    """An alembic project on the worker and the environment variable with its database URL."""

    # Someone will paste the URL itself into urlEnv: errors must not echo the input.
    model_config = ConfigDict(hide_input_in_errors=True)

    config: str
    target: str = "head"
    url_env: str = "DATABASE_URL"
    script_location: str | None = None

    @field_validator("config")
    @classmethod
    def _absolute_config(cls, value: str) -> str:
        if not os.path.isabs(value):
            raise ValueError("must be an absolute path on the worker")
        return value

    @field_validator("target")
    @classmethod
    def _named_target(cls, value: str) -> str:
        return no_relative(value)

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.fullmatch(value):
            raise ValueError("must be the name of an environment variable, like DATABASE_URL")
        return value

    @field_validator("script_location")
    @classmethod
    def _script_location(cls, value: str | None) -> str | None:
        if value is not None and not (os.path.isabs(value) or ":" in value):
            raise ValueError("must be an absolute path or a package resource (pkg:dir)")
        return value


def _placeholders(arg: str, allowed: tuple[str, ...]) -> str:
    """``arg`` if its placeholders are all in ``allowed``; ``ValueError`` naming the bad one."""
    known = ", ".join(f"{{{n}}}" for n in allowed) or "no placeholders"
    placeholders(arg, allowed, f"this command takes {known}")
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
