"""Seats: one foreign key to their ticket type and its event, where there were two
(a seat's type is one of its event's), and their hold and booking indexes only for
seats that have one (a new seat map adds no entry to either).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


SEATS = {"sqlite_autoincrement": True}  # rebuilt on SQLite: its ids still never reused


def _partial(column):
    where = sa.text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


def _sqlite_foreign_keys(on):
    """SQLite changes a table's constraints by copying it into a new one and dropping
    the old, and a DROP TABLE with foreign keys enforced would set the seat_id of every
    ticket NULL (its ON DELETE SET NULL): they are off while seats is rebuilt. (SQLite
    ignores the PRAGMA inside a transaction, as when every migration runs at once on a
    new database: its tables are empty then.)"""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("ticket_types") as batch:
        batch.create_unique_constraint("uq_ticket_types_event_id_id", ["event_id", "id"])
    with op.batch_alter_table("seats", table_kwargs=SEATS) as batch:
        batch.drop_constraint("fk_seats_event_id_events", type_="foreignkey")
        batch.drop_constraint("fk_seats_ticket_type_id_ticket_types", type_="foreignkey")
        batch.create_foreign_key(
            "fk_seats_event_id_ticket_types", "ticket_types", ["event_id", "ticket_type_id"], ["event_id", "id"]
        )
        batch.drop_index("ix_seats_hold_id")
        batch.drop_index("ix_seats_booking_id")
        batch.create_index("ix_seats_hold_id", ["hold_id"], **_partial("hold_id"))
        batch.create_index("ix_seats_booking_id", ["booking_id"], **_partial("booking_id"))
    _sqlite_foreign_keys(True)


def downgrade():
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("seats", table_kwargs=SEATS) as batch:
        batch.drop_index("ix_seats_booking_id")
        batch.drop_index("ix_seats_hold_id")
        batch.create_index("ix_seats_booking_id", ["booking_id"])
        batch.create_index("ix_seats_hold_id", ["hold_id"])
        batch.drop_constraint("fk_seats_event_id_ticket_types", type_="foreignkey")
        batch.create_foreign_key("fk_seats_ticket_type_id_ticket_types", "ticket_types", ["ticket_type_id"], ["id"])
        batch.create_foreign_key("fk_seats_event_id_events", "events", ["event_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("ticket_types") as batch:
        batch.drop_constraint("uq_ticket_types_event_id_id", type_="unique")
    _sqlite_foreign_keys(True)
