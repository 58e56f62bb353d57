"""Indexes for reads at scale: an event's figures, a customer's bookings, the admin's
search of accounts.

An event's figures (`stats.service.event_stats`) read its confirmed bookings, their
items and their checked-in tickets. PostgreSQL read the whole of `items` and `tickets`
for them, and each booking's row for its id; it now reads them from indexes alone:

- the items of a type, with their booking, count and price (PostgreSQL's INCLUDE: on
  SQLite the index is by type and booking), in place of the index by type alone;
- the checked-in tickets of a type (partial: a check-in adds the ticket to it, and as
  it changes a column of the index's condition, writes its other indexes' entries too);
- an event's bookings by status with their id, in place of the one by event and status.

A customer's bookings are listed newest first, ties by id, a page at a time: with the id
in their index (by customer and time), a page's ids are read from it in that order.
Without it PostgreSQL read every booking of the customer, each from its row, and
sorted them all, for any page.

PostgreSQL only: the admin's search of accounts looks for text anywhere in the
lower-cased email or name (`LIKE '%...%'`, `database.unicode_lower`), which PostgreSQL
answered by reading every account. Trigram indexes (`pg_trgm`) of those two expressions
answer it for text of three characters or more.

docs/performance.md ("Twenty-fourth session") has the figures.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

CHECKED_IN = sa.text("checked_in_at IS NOT NULL")
# `database.unicode_lower` as PostgreSQL runs it: the expression the search compares.
LOWERED = "replace(lower({}), '\u03c2', '\u03c3')"


def upgrade():
    op.create_index("ix_items_ticket_type_id_booking_id", "items", ["ticket_type_id", "booking_id"],
                    postgresql_include=["count", "unit_price"])
    op.create_index("ix_tickets_checked_in", "tickets", ["ticket_type_id", "booking_id"],
                    postgresql_where=CHECKED_IN, sqlite_where=CHECKED_IN)
    op.create_index("ix_bookings_event_id_status_id", "bookings", ["event_id", "status", "id"])
    op.create_index("ix_bookings_user_id_created_at_id", "bookings", ["user_id", "created_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        # A trusted extension since PostgreSQL 13, as unaccent is (0005).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in ("email", "name"):
            op.execute(f"CREATE INDEX ix_users_{column}_trigrams ON users USING gin ({LOWERED.format(column)} gin_trgm_ops)")
        # The statistics of the indexes' expressions, which only ANALYZE gathers: without
        # them the planner guesses how many accounts match, and for a common word read
        # them all through the indexes, then sorted them, for a first page.
        op.execute("ANALYZE users")
    # Last: dropping an index locks its table against reads too, until the upgrade commits
    # (building one holds up only writes).
    op.drop_index("ix_items_ticket_type_id", table_name="items")
    op.drop_index("ix_bookings_event_id_status", table_name="bookings")
    op.drop_index("ix_bookings_user_id_created_at", table_name="bookings")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in ("email", "name"):
            op.execute(f"DROP INDEX ix_users_{column}_trigrams")
        # pg_trgm stays: other schemas of the database may use it.
    op.create_index("ix_bookings_user_id_created_at", "bookings", ["user_id", "created_at"])
    op.drop_index("ix_bookings_user_id_created_at_id", table_name="bookings")
    op.create_index("ix_bookings_event_id_status", "bookings", ["event_id", "status"])
    op.drop_index("ix_bookings_event_id_status_id", table_name="bookings")
    op.drop_index("ix_tickets_checked_in", table_name="tickets")
    op.create_index("ix_items_ticket_type_id", "items", ["ticket_type_id"])
    op.drop_index("ix_items_ticket_type_id_booking_id", table_name="items")
