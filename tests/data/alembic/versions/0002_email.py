"""Add accounts.email."""

import sqlalchemy as sa
from alembic import op

revision = "0002_email"
down_revision = "0001_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("email", sa.Text))


def downgrade() -> None:
    op.drop_column("accounts", "email")
