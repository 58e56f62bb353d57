"""A check-in's nonce keeps its answer's time, past an undo.

A gate that lost the answer to its scan sends it again with the same nonce, and gets
the first answer. Undoing the check-in used to forget the nonce, so such a retry after
an undo checked the ticket in again. The nonce now stays with the ticket, with the time
its scan answered (`check_in_nonce_at`), until another scan checks the ticket in.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("check_in_nonce_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE tickets SET check_in_nonce_at = checked_in_at WHERE check_in_nonce IS NOT NULL")


def downgrade():
    op.execute("UPDATE tickets SET check_in_nonce = NULL WHERE checked_in_at IS NULL")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("check_in_nonce_at")
