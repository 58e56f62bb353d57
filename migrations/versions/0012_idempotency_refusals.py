"""Idempotency keys keep a refusal too: the first answer under a key, not only a success.

A key's row holds either its booking (a success) or the refusal's envelope (`refusal`,
JSON: a 409 such as `sold_out`), never both. Going back to 0011 forgets the refusals:
a repeat of such a key is then tried again, as 0011 did.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("booking_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("refusal", sa.Text(), nullable=True))
        batch.create_check_constraint(op.f("ck_idempotency_keys_booking_or_refusal"),
                                      "(booking_id IS NULL) <> (refusal IS NULL)")


def downgrade():
    op.execute("DELETE FROM idempotency_keys WHERE booking_id IS NULL")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint(op.f("ck_idempotency_keys_booking_or_refusal"), type_="check")
        batch.drop_column("refusal")
        batch.alter_column("booking_id", existing_type=sa.Integer(), nullable=False)
