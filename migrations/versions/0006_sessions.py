"""Browser sessions and disabled accounts: token families (one per login, for refresh
token rotation and reuse detection) and users.disabled.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "token_families",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("refresh_jti", sa.String(64), nullable=False),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_token_families_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_token_families"),
    )
    op.create_index("ix_token_families_user_id", "token_families", ["user_id"])
    op.create_index("ix_token_families_expires_at", "token_families", ["expires_at"])


def downgrade():
    """Refused, before anything changes, while an account is disabled: without the column
    it would log in again. Without token_families the older release cannot tell a rotated
    or revoked refresh token from a live one: deploy it with a new JWT_SECRET_KEY
    (docs/operations.md)."""
    disabled = op.get_bind().execute(sa.text("SELECT count(*) FROM users WHERE disabled")).scalar()
    if disabled:
        raise RuntimeError(f"{disabled} disabled account(s) would log in again below 0006: "
                           "enable them (PATCH /api/admin/users/ID) before downgrading")
    op.drop_table("token_families")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled")
