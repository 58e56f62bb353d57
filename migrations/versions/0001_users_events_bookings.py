"""Users, events, bookings and revoked tokens.

Written by hand and reviewed: the CHECK constraints and the partial unique index are
the database's own guard against overselling and double booking.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # eventbook.models.UTCDateTime stores through this


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(128), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("date", UTC, nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("total_tickets", sa.Integer(), nullable=False),
        sa.Column("available_tickets", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint(
            "0 <= available_tickets AND available_tickets <= total_tickets",
            name="ck_events_tickets_in_range",
        ),
        sa.CheckConstraint("status IN ('SCHEDULED', 'CANCELLED')", name="ck_events_status_valid"),
        sa.ForeignKeyConstraint(["organizer_id"], ["users.id"], name="fk_events_organizer_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    # The default listing (upcoming SCHEDULED by date) and the organizerId filter.
    op.create_index("ix_events_status_date", "events", ["status", "date", "id"])
    op.create_index("ix_events_organizer_id_date", "events", ["organizer_id", "date"])

    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tickets_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("cancelled_at", UTC, nullable=True),
        sa.CheckConstraint("tickets_count > 0", name="ck_bookings_tickets_positive"),
        sa.CheckConstraint("status IN ('CONFIRMED', 'CANCELLED')", name="ck_bookings_status_valid"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_bookings_event_id_events"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_bookings_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
    )
    # One CONFIRMED booking per customer and event; cancelled bookings may pile up.
    op.create_index(
        "uq_bookings_one_confirmed", "bookings", ["user_id", "event_id"], unique=True,
        sqlite_where=sa.text("status = 'CONFIRMED'"), postgresql_where=sa.text("status = 'CONFIRMED'"),
    )
    op.create_index("ix_bookings_user_id_created_at", "bookings", ["user_id", "created_at"])
    op.create_index("ix_bookings_event_id_status", "bookings", ["event_id", "status"])

    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("jti", name="pk_revoked_tokens"),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade():
    op.drop_table("revoked_tokens")
    op.drop_table("bookings")
    op.drop_table("events")
    op.drop_table("users")
