"""env.py for the test project, written the way deployflow needs a project's env.py to be.

deployflow sets ``sqlalchemy.url`` from the worker's environment; the alembic CLI falls back
to ``$DATABASE_URL``. Every pending revision runs in ONE transaction, so on PostgreSQL a
failure anywhere rolls all of them back. No ``fileConfig``: in a worker it would replace
the worker's logging (check ``config.attributes.get("configure_logger", True)`` if a
project wants it for the CLI).
"""

import os

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config

if context.is_offline_mode():
    raise SystemExit("this project does not support offline (--sql) mode")

url = config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
