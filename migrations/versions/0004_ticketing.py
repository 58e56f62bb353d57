"""Ticket types and prices, holds, seats, tickets, the waiting list, notifications as
a kind and its parameters, idempotency keys that keep their booking's id.

Existing data is carried over: every event gets one "General admission" type (price
0.00) holding its tickets, every booking an item of that type and one ticket (with a
new code) per ticket it holds, every stored Idempotency-Key response its booking's id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import json
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
MONEY = sa.Numeric(12, 2)

# PostgreSQL: what a booking statement calls when it could not take every item and seat
# it was asked for. Raising makes PostgreSQL undo the whole statement (all or nothing);
# eventbook.sales.postgresql reads the SQLSTATE.
ALL_OR_NOTHING = """
CREATE FUNCTION eventbook_all_or_nothing(taken_whole boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT taken_whole THEN
        RAISE EXCEPTION 'not every item or seat could be taken' USING ERRCODE = 'EB409';
    END IF;
    RETURN true;
END
$$
"""


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"

    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"))
        batch.add_column(sa.Column("seating", sa.String(16), nullable=False, server_default="GENERAL"))
        batch.add_column(sa.Column("set_aside_tickets", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("seats_version", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("ck_events_tickets_in_range", type_="check")
        batch.create_check_constraint(
            "ck_events_tickets_in_range",
            "0 <= available_tickets AND 0 <= set_aside_tickets "
            "AND available_tickets + set_aside_tickets <= total_tickets",
        )
        batch.create_check_constraint("ck_events_seating_valid", "seating IN ('GENERAL', 'RESERVED')")

    op.create_table(
        "ticket_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("available_quantity", sa.Integer(), nullable=False),
        sa.Column("set_aside", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sales_start", UTC, nullable=True),
        sa.Column("sales_end", UTC, nullable=True),
        sa.CheckConstraint(
            "0 <= available_quantity AND 0 <= set_aside AND available_quantity + set_aside <= quantity",
            name="ck_ticket_types_quantity_in_range",
        ),
        sa.CheckConstraint("0 <= price AND price <= 100000", name="ck_ticket_types_price_in_range"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_ticket_types_event_id_events", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_types"),
        sa.UniqueConstraint("event_id", "name", name="uq_ticket_types_event_id_name"),
    )

    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("total_amount", MONEY, nullable=False, server_default="0"))

    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tickets_count", sa.Integer(), nullable=False),
        sa.Column("total_amount", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.CheckConstraint("tickets_count > 0", name="ck_holds_tickets_positive"),
        sa.CheckConstraint("status IN ('HELD', 'CONFIRMED', 'RELEASED', 'EXPIRED')", name="ck_holds_status_valid"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_holds_event_id_events"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_holds_user_id_users"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name="fk_holds_booking_id_bookings"),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )
    op.create_index("uq_holds_one_held", "holds", ["user_id", "event_id"], unique=True,
                    sqlite_where=sa.text("status = 'HELD'"), postgresql_where=sa.text("status = 'HELD'"))
    op.create_index("ix_holds_status_expires_at", "holds", ["status", "expires_at"])

    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.CheckConstraint("count > 0", name="ck_items_count_positive"),
        sa.CheckConstraint("hold_id IS NOT NULL OR booking_id IS NOT NULL", name="ck_items_has_owner"),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name="fk_items_hold_id_holds"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name="fk_items_booking_id_bookings"),
        sa.ForeignKeyConstraint(["ticket_type_id"], ["ticket_types.id"], name="fk_items_ticket_type_id_ticket_types"),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
    )
    op.create_index("ix_items_hold_id", "items", ["hold_id"])
    op.create_index("ix_items_booking_id", "items", ["booking_id"])
    op.create_index("ix_items_ticket_type_id", "items", ["ticket_type_id"])

    op.create_table(
        "seats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(50), nullable=False),
        sa.Column("row", sa.String(20), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('AVAILABLE', 'HELD', 'BOOKED')", name="ck_seats_status_valid"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_seats_event_id_events", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_type_id"], ["ticket_types.id"], name="fk_seats_ticket_type_id_ticket_types"),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name="fk_seats_hold_id_holds"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name="fk_seats_booking_id_bookings"),
        sa.PrimaryKeyConstraint("id", name="pk_seats"),
        sa.UniqueConstraint("event_id", "section", "row", "number", name="uq_seats_place"),
        # SQLite would reuse the ids of a replaced map's seats: a client holding the old
        # map could take another seat than it saw.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_seats_event_id_position", "seats", ["event_id", "position"])
    op.create_index("ix_seats_hold_id", "seats", ["hold_id"])
    op.create_index("ix_seats_booking_id", "seats", ["booking_id"])

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("checked_in_at", UTC, nullable=True),
        sa.Column("check_in_nonce", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name="fk_tickets_booking_id_bookings"),
        sa.ForeignKeyConstraint(["ticket_type_id"], ["ticket_types.id"], name="fk_tickets_ticket_type_id_ticket_types"),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name="fk_tickets_seat_id_seats", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("code", name="uq_tickets_code"),
    )
    op.create_index("ix_tickets_booking_id", "tickets", ["booking_id"])
    op.create_index("ix_tickets_seat_id", "tickets", ["seat_id"])  # a map replaced sets its tickets' seat_id NULL

    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("tickets_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint("tickets_count > 0", name="ck_waitlist_entries_tickets_positive"),
        sa.CheckConstraint("status IN ('WAITING', 'OFFERED', 'CONVERTED', 'LAPSED', 'LEFT')",
                           name="ck_waitlist_entries_status_valid"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_waitlist_entries_event_id_events"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_waitlist_entries_user_id_users"),
        sa.ForeignKeyConstraint(["ticket_type_id"], ["ticket_types.id"],
                                name="fk_waitlist_entries_ticket_type_id_ticket_types"),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name="fk_waitlist_entries_hold_id_holds"),
        sa.PrimaryKeyConstraint("id", name="pk_waitlist_entries"),
    )
    live = "status IN ('WAITING', 'OFFERED')"
    op.create_index("uq_waitlist_entries_one_live", "waitlist_entries", ["user_id", "event_id"], unique=True,
                    sqlite_where=sa.text(live), postgresql_where=sa.text(live))
    op.create_index("ix_waitlist_entries_queue", "waitlist_entries", ["event_id", "status", "id"])
    op.create_index("ix_waitlist_entries_hold_id", "waitlist_entries", ["hold_id"])

    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch.alter_column("subject", existing_type=sa.String(300), nullable=True)
        batch.alter_column("body", existing_type=sa.Text(), nullable=True)

    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("booking_id", sa.Integer(), nullable=True))

    _carry_over()

    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_body")
        batch.alter_column("booking_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_idempotency_keys_booking_id_bookings", "bookings", ["booking_id"], ["id"],
                                 ondelete="CASCADE")

    if postgresql:
        op.execute(ALL_OR_NOTHING)


def _carry_over():
    """Existing events, bookings and stored responses in the new shape."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "INSERT INTO ticket_types (event_id, name, price, quantity, available_quantity, set_aside) "
        "SELECT id, 'General admission', 0, total_tickets, available_tickets, 0 FROM events"
    ))
    bind.execute(sa.text(
        "INSERT INTO items (booking_id, ticket_type_id, count, unit_price) "
        "SELECT b.id, t.id, b.tickets_count, 0 FROM bookings b JOIN ticket_types t ON t.event_id = b.event_id"
    ))
    # cancelled ones too: their tickets are void, as those of a booking cancelled later are
    bookings = bind.execute(sa.text(
        "SELECT b.id, t.id, b.tickets_count FROM bookings b JOIN ticket_types t ON t.event_id = b.event_id"
    )).all()
    rows = [{"booking_id": booking_id, "ticket_type_id": type_id, "code": secrets.token_urlsafe(16)}
            for booking_id, type_id, count in bookings for _ in range(count)]
    if rows:
        bind.execute(sa.text("INSERT INTO tickets (booking_id, ticket_type_id, code) "
                             "VALUES (:booking_id, :ticket_type_id, :code)"), rows)
    for user_id, key, body in bind.execute(sa.text("SELECT user_id, key, response_body FROM idempotency_keys")).all():
        stored = json.loads(body)
        booking_id = stored["rows"]["booking"]["id"] if list(stored) == ["rows"] else stored.get("id")
        if booking_id is None:
            bind.execute(sa.text("DELETE FROM idempotency_keys WHERE user_id = :u AND key = :k"), {"u": user_id, "k": key})
        else:
            bind.execute(sa.text("UPDATE idempotency_keys SET booking_id = :b WHERE user_id = :u AND key = :k"),
                         {"b": booking_id, "u": user_id, "k": key})


def downgrade():
    """Back to events that count tickets, not types: held and set-aside tickets go back on
    sale (holds and the waiting list are dropped), prices, seats and tickets are
    dropped, notifications that have no rendered text (every one made since) are
    deleted. Refused, before anything changes, while a notification is still to be sent."""
    pending = op.get_bind().execute(sa.text("SELECT count(*) FROM notifications WHERE status = 'PENDING'")).scalar()
    if pending:
        raise RuntimeError(f"{pending} notifications are still to be sent, and would be lost below 0004: "
                           "let them be sent (flask --app wsgi notifications status) before downgrading")
    op.execute("UPDATE events SET set_aside_tickets = 0, available_tickets = total_tickets - "
               "(SELECT coalesce(sum(tickets_count), 0) FROM bookings "
               "WHERE bookings.event_id = events.id AND bookings.status = 'CONFIRMED')")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS eventbook_all_or_nothing(boolean)")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("fk_idempotency_keys_booking_id_bookings", type_="foreignkey")
        batch.add_column(sa.Column("response_body", sa.Text(), nullable=False, server_default="{}"))
        batch.drop_column("booking_id")
    op.execute("DELETE FROM notifications WHERE subject IS NULL OR body IS NULL")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("params")
        batch.alter_column("subject", existing_type=sa.String(300), nullable=False)
        batch.alter_column("body", existing_type=sa.Text(), nullable=False)
    for table in ("waitlist_entries", "tickets", "seats", "items", "holds"):
        op.drop_table(table)
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("total_amount")
    op.drop_table("ticket_types")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_seating_valid", type_="check")
        batch.drop_constraint("ck_events_tickets_in_range", type_="check")
        batch.create_check_constraint("ck_events_tickets_in_range", "0 <= available_tickets AND available_tickets <= total_tickets")
        for column in ("seats_version", "set_aside_tickets", "seating", "currency"):
            batch.drop_column(column)
