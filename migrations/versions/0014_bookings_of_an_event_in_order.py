"""An index of an event's bookings in id order.

An event's bookings are listed to its organizer in id order, a page at a time. With
only the index by (event_id, status), PostgreSQL walked the primary key and skipped
the other events' bookings: 130-240 ms for the first page of an event with 100,000 of
a million bookings.

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


def downgrade():
    op.drop_index("ix_bookings_event_id_id", table_name="bookings")
