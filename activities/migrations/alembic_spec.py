"""The spec half of the alembic migrator: pure pydantic, so reading a spec (the CLI, the
workflow sandbox) does not import alembic and SQLAlchemy."""

from __future__ import annotations

import os
from typing import Final

from pydantic import ConfigDict, field_validator

from activities.migrations.url import ENV_NAME
from activities.model import Model

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
