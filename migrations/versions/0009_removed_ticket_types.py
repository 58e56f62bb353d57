"""A ticket type deleted while bookings, holds or waiting-list entries of the past name
it is kept as their history, marked `removed_at`, instead of being refused: it has no
tickets left and is no longer listed or sold. Type names are then unique among an
event's types on offer only, so a removed type's name may be used again.

On SQLite the unique constraint goes by rebuilding the table (batch mode), which keeps
its AUTOINCREMENT (0008) and makes its triggers again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ON_OFFER = sa.text("removed_at IS NULL")


def _triggers():
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return []
    return connection.execute(sa.text(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ticket_types' ORDER BY name")).scalars().all()


def upgrade():
    triggers = _triggers()
    with op.batch_alter_table("ticket_types", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("uq_ticket_types_event_id_name", type_="unique")
    for trigger in triggers:
        op.execute(trigger)
    op.create_index("uq_ticket_types_event_id_name", "ticket_types", ["event_id", "name"], unique=True,
                    postgresql_where=ON_OFFER, sqlite_where=ON_OFFER)


def downgrade():
    """Removed types become types of their events again, with no tickets (quantity 0).
    Refused, before anything changes, while a removed type shares its name with another
    type of its event (the names' unique constraint would not hold)."""
    clash = op.get_bind().execute(sa.text(
        "SELECT event_id, name FROM ticket_types GROUP BY event_id, name HAVING count(*) > 1")).first()
    if clash is not None:
        raise RuntimeError(f"event {clash.event_id} has several ticket types named {clash.name!r} (removed ones "
                           "among them): rename one before downgrading below 0009")
    op.drop_index("uq_ticket_types_event_id_name", table_name="ticket_types")
    triggers = _triggers()
    with op.batch_alter_table("ticket_types", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.create_unique_constraint("uq_ticket_types_event_id_name", ["event_id", "name"])
        batch.drop_column("removed_at")
    for trigger in triggers:
        op.execute(trigger)
