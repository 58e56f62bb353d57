"""Indexes for reads of events with many bookings or a long waiting list.

- An event's bookings in id order: they are listed to its organizer that way, a page at
  a time. With only the index by (event_id, status), PostgreSQL walked the primary key
  past the other events' bookings.
- A customer's entries on an event's waiting list: the page asks for the customer's
  own on every event it shows them, and without it PostgreSQL read the event's whole
  list to find it.

docs/performance.md ("Twenty-third session") has the figures.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_bookings_event_id_id", "bookings", ["event_id", "id"])
    op.create_index("ix_waitlist_entries_user_id_event_id_id", "waitlist_entries", ["user_id", "event_id", "id"])


def downgrade():
    op.drop_index("ix_waitlist_entries_user_id_event_id_id", table_name="waitlist_entries")
    op.drop_index("ix_bookings_event_id_id", table_name="bookings")
