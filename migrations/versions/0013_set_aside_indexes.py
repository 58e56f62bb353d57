"""Partial indexes of what is set aside for waiting lists.

The hold sweeper asks every few seconds, in every process, which events have tickets
set aside (by the event or one of its types); without these it read the whole of
`events` and `ticket_types` to find the few that do.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

EVENTS_SET_ASIDE = sa.text("set_aside_tickets > 0")
TYPES_SET_ASIDE = sa.text("set_aside > 0")


def upgrade():
    op.create_index("ix_events_set_aside", "events", ["status"],
                    postgresql_where=EVENTS_SET_ASIDE, sqlite_where=EVENTS_SET_ASIDE)
    op.create_index("ix_ticket_types_set_aside", "ticket_types", ["event_id"],
                    postgresql_where=TYPES_SET_ASIDE, sqlite_where=TYPES_SET_ASIDE)


def downgrade():
    op.drop_index("ix_ticket_types_set_aside", table_name="ticket_types")
    op.drop_index("ix_events_set_aside", table_name="events")
