"""Fails halfway: creates a table and a column, then runs invalid SQL."""

import sqlalchemy as sa
from alembic import op

revision = "0003_broken"
down_revision = "0002_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("audit_log", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("accounts", sa.Column("nickname", sa.Text))
    op.execute("SELECT no_such_function()")


def downgrade() -> None:
    op.drop_column("accounts", "nickname")
    op.drop_table("audit_log")
