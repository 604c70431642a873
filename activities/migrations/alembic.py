"""Alembic migrations, run in-process with alembic's Python API.

    migrations:
      alembic:
        config: /srv/checkout/alembic.ini   # absolute, on the worker
        target: head                         # resolved to a revision id before it is applied
        urlEnv: CHECKOUT_DATABASE_URL        # the NAME of the worker's variable with the URL

The migrator reads the URL from the worker's environment and hands it to ``env.py`` as the
``sqlalchemy.url`` main option, which is what the ``env.py`` that ``alembic init`` writes
reads. What the project's ``env.py`` must do (``tests/data/alembic/env.py`` does all three):

- run every pending revision in ONE transaction: ``context.configure(connection=...,
  transaction_per_migration=False)`` (the default) and ``with context.begin_transaction():
  context.run_migrations()``. PostgreSQL's DDL is transactional, so a revision failing
  halfway rolls back the revisions before it too, and the database stays where it was.
  With a transaction per migration a failure leaves the database part-way; the
  ``MigrationFailed`` message then says at which revision;
- not call ``logging.config.fileConfig`` when ``config.attributes["configure_logger"]`` is
  False: that would replace the worker's logging setup;
- not print or log the URL.

A relative ``script_location`` in the ini is taken relative to the ini's directory (the
worker's working directory means nothing here). Alembic keeps the running ``env.py``'s
context in module globals, so one worker process runs one alembic command at a time.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool
from temporalio.exceptions import ApplicationError

from activities.errors import DATABASE_UNAVAILABLE, INVALID_SPEC, MIGRATION_FAILED, failure
from activities.migrations.spec import AlembicMigrationSpec, no_relative
from activities.migrations.url import database_url, display, redact

CONNECT_TIMEOUT_S: Final = 10  # libpq waits forever by default; Temporal owns retrying
_ALEMBIC_LOCK = threading.RLock()


class AlembicMigrator:
    """Migrator over an alembic project; see the module docstring for ``env.py``."""

    def __init__(self, spec: AlembicMigrationSpec) -> None:
        self.spec = spec
        self.url = database_url(spec.url_env)
        self._bounded_url = _bounded(self.url, spec.url_env)

    def current(self) -> str | None:
        """Read ``alembic_version`` directly: a short connection, no ``env.py``."""
        with self._errors("read the current revision", connecting=True):
            engine = create_engine(self._bounded_url, poolclass=NullPool)
            try:
                with engine.connect() as connection:
                    heads = MigrationContext.configure(connection).get_current_heads()
            finally:
                engine.dispose()
        if len(heads) > 1:
            raise failure(INVALID_SPEC, f"the database is at several heads: {', '.join(heads)}")
        return heads[0] if heads else None

    def resolve(self, revision: str) -> str | None:
        """A full revision id for ``head``, ``branch@head`` or a unique prefix; None for base."""
        try:
            no_relative(revision)
        except ValueError as e:
            raise failure(INVALID_SPEC, f"revision {revision!r}: {e}") from None
        with _ALEMBIC_LOCK, self._errors(f"resolve {revision!r}", invalid=True):
            script = ScriptDirectory.from_config(self._config())
            resolved = script.as_revision_number(revision)
            if isinstance(resolved, tuple):
                heads = ", ".join(resolved)
                raise failure(INVALID_SPEC, f"{revision!r} names several heads: {heads}")
            return None if resolved is None else script.get_revision(resolved).revision

    def upgrade(self, revision: str) -> None:
        with _ALEMBIC_LOCK:
            self._apply("upgrade", self.resolve(revision))

    def downgrade(self, revision: str | None) -> None:
        with _ALEMBIC_LOCK:
            self._apply("downgrade", None if revision is None else self.resolve(revision))

    def _apply(self, direction: Literal["upgrade", "downgrade"], target: str | None) -> None:
        """Run alembic's command unless the database is at ``target``; check it is after."""
        if self.current() == target:
            return
        doing = f"{direction} to {target or 'base'}"
        with self._errors(doing):
            run = command.upgrade if direction == "upgrade" else command.downgrade
            run(self._config(), target or "base")
        now = self.current()
        if now != target:  # alembic does nothing when asked to go the other way
            where = f"the database is at {now or 'base'}"
            raise failure(MIGRATION_FAILED, f"{doing}: alembic finished but {where}")

    def _config(self) -> Config:
        if not os.path.isfile(self.spec.config):
            raise failure(INVALID_SPEC, f"{self.spec.config} does not exist on this worker")
        config = Config(
            self.spec.config, stdout=io.StringIO(), attributes={"configure_logger": False}
        )
        location = self.spec.script_location or config.get_main_option("script_location")
        if location and not os.path.isabs(location) and ":" not in location:
            location = os.path.join(os.path.dirname(self.spec.config), location)
        if location:
            config.set_main_option("script_location", location.replace("%", "%%"))
        # ConfigParser interpolates '%': a percent-encoded password must survive it.
        config.set_main_option("sqlalchemy.url", self._bounded_url.replace("%", "%%"))
        return config

    @contextmanager
    def _errors(
        self, doing: str, connecting: bool = False, invalid: bool = False
    ) -> Iterator[None]:
        """Turn what alembic, SQLAlchemy and the driver raise into redacted failures.

        No connection (or a lost one) is ``DatabaseUnavailable``; while ``connecting``
        anything the driver raises is. A bad revision name is ``InvalidSpec`` when
        ``invalid``; anything else is ``MigrationFailed``. Causes are not chained: their
        text (and the URL it may hold) would reach the workflow's history."""
        try:
            yield
        except DBAPIError as e:
            lost = connecting or e.statement is None or e.connection_invalidated
            detail = str(e.orig if e.orig is not None else e).strip()
            error_type = DATABASE_UNAVAILABLE if lost else MIGRATION_FAILED
            raise self._failure(error_type, doing, detail) from None
        except CommandError as e:
            error_type = INVALID_SPEC if invalid else MIGRATION_FAILED
            raise self._failure(error_type, doing, str(e)) from None
        except ApplicationError:
            raise
        except Exception as e:  # a revision's own code: ImportError, a Python bug, ...
            raise self._failure(MIGRATION_FAILED, doing, f"{type(e).__name__}: {e}") from None

    def _failure(self, error_type: str, doing: str, detail: str) -> ApplicationError:
        first_line = next((line for line in detail.splitlines() if line.strip()), "no detail")
        message = f"{doing} on {display(self.url)}: {first_line[:1000]}"
        return failure(error_type, redact(redact(message, self._bounded_url), self.url))


def _bounded(url: str, env_name: str) -> str:
    """``url`` with a connect timeout for PostgreSQL, unless it sets one itself. A bare
    ``postgresql://`` means psycopg 3 (what deployflow installs), not SQLAlchemy's psycopg2."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise failure(INVALID_SPEC, f"{env_name} does not hold a database URL") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    return parsed.render_as_string(hide_password=False)
