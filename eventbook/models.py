"""The tables. Timestamps are stored in UTC and always come back timezone-aware; money is
`Numeric(12, 2)` in the database and `decimal.Decimal` in Python, never a float.

The counters that decide what can be sold live on two rows, each changed only by the
conditional UPDATEs of `eventbook.inventory`:

- `events`: `total_tickets` (the capacity), `available_tickets` (what the public may
  take), `set_aside_tickets` (returned while someone waits: see `eventbook.waitlist`);
- `ticket_types`: `quantity`, `available_quantity`, `set_aside`.

At every instant, for an event and for each of its types:
    total - available == tickets of CONFIRMED bookings + tickets of HELD holds + set aside
"""

from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from eventbook.database import unicode_lower
from eventbook.extensions import db


def utcnow():
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """`timestamptz` on PostgreSQL; on SQLite a naive UTC text that sorts and compares
    correctly. Python code only ever sees aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


Money = sa.Numeric(12, 2, asdecimal=True)


class Role:
    CUSTOMER = "CUSTOMER"
    ORGANIZER = "ORGANIZER"
    ADMIN = "ADMIN"
    ALL = (CUSTOMER, ORGANIZER, ADMIN)


class EventStatus:
    SCHEDULED = "SCHEDULED"
    CANCELLED = "CANCELLED"
    ALL = (SCHEDULED, CANCELLED)


class Seating:
    GENERAL = "GENERAL"
    RESERVED = "RESERVED"
    ALL = (GENERAL, RESERVED)


class BookingStatus:
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    ALL = (CONFIRMED, CANCELLED)


class HoldStatus:
    HELD = "HELD"
    CONFIRMED = "CONFIRMED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"
    ALL = (HELD, CONFIRMED, RELEASED, EXPIRED)


class SeatStatus:
    AVAILABLE = "AVAILABLE"
    HELD = "HELD"
    BOOKED = "BOOKED"
    ALL = (AVAILABLE, HELD, BOOKED)


class EntryStatus:
    WAITING = "WAITING"
    OFFERED = "OFFERED"
    CONVERTED = "CONVERTED"
    LAPSED = "LAPSED"
    LEFT = "LEFT"
    ALL = (WAITING, OFFERED, CONVERTED, LAPSED, LEFT)


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(sa.String(128))
    name: Mapped[str | None] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


# The admin's search of accounts (`admin.service.users`) looks for text anywhere in the
# lower-cased email or name: trigram indexes of those very expressions answer it, on
# PostgreSQL only (SQLite has no such index; comparing the models with an SQLite
# database passes over indexes of expressions, with a warning).
def _trigrams(column):
    sa.Index(f"ix_users_{column.key}_trigrams", unicode_lower(column).label("lowered"),
             postgresql_using="gin", postgresql_ops={"lowered": "gin_trgm_ops"}).ddl_if(dialect="postgresql")


_trigrams(User.email)
_trigrams(User.name)


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint(
            "0 <= available_tickets AND 0 <= set_aside_tickets "
            "AND available_tickets + set_aside_tickets <= total_tickets",
            name="tickets_in_range",
        ),
        sa.CheckConstraint(_one_of("status", EventStatus.ALL), name="status_valid"),
        sa.CheckConstraint(_one_of("seating", Seating.ALL), name="seating_valid"),
        sa.Index("ix_events_status_date", "status", "date", "id"),
        sa.Index("ix_events_organizer_id_date", "organizer_id", "date"),
        # The few events with tickets set aside for their waiting list (the hold sweeper's question).
        sa.Index("ix_events_set_aside", "status", postgresql_where=sa.text("set_aside_tickets > 0"),
                 sqlite_where=sa.text("set_aside_tickets > 0")),
        {"sqlite_autoincrement": True},  # a deleted event's id is never given to a new one
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    date: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(sa.String(200))
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR", server_default="EUR")
    seating: Mapped[str] = mapped_column(sa.String(16), default=Seating.GENERAL, server_default=Seating.GENERAL)
    total_tickets: Mapped[int]
    available_tickets: Mapped[int]
    set_aside_tickets: Mapped[int] = mapped_column(default=0, server_default="0")
    # Goes up with every change of a seat's status: the seat map's ETag.
    seats_version: Mapped[int] = mapped_column(default=0, server_default="0")
    status: Mapped[str] = mapped_column(sa.String(16), default=EventStatus.SCHEDULED)
    organizer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The types on offer: a removed type that bookings or holds once took stays a row of
    # their history (`removed_at`), out of the event's sight.
    ticket_types: Mapped[list["TicketType"]] = relationship(
        primaryjoin="and_(Event.id == TicketType.event_id, TicketType.removed_at.is_(None))",
        lazy="selectin", order_by="TicketType.id", back_populates="event", cascade="all, delete-orphan",
        passive_deletes=True,
    )


class TicketType(db.Model):
    __tablename__ = "ticket_types"
    __table_args__ = (
        # Names are unique among the event's types on offer (a removed type's may be reused).
        sa.Index("uq_ticket_types_event_id_name", "event_id", "name", unique=True,
                 sqlite_where=sa.text("removed_at IS NULL"), postgresql_where=sa.text("removed_at IS NULL")),
        sa.UniqueConstraint("event_id", "id", name="uq_ticket_types_event_id_id"),  # seats' key
        sa.CheckConstraint(
            "0 <= available_quantity AND 0 <= set_aside AND available_quantity + set_aside <= quantity",
            name="quantity_in_range",
        ),
        sa.CheckConstraint("0 <= price AND price <= 100000", name="price_in_range"),
        sa.Index("ix_ticket_types_set_aside", "event_id", postgresql_where=sa.text("set_aside > 0"),
                 sqlite_where=sa.text("set_aside > 0")),
        {"sqlite_autoincrement": True},  # a deleted type's id is never given to a new one
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(100))
    price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[int]
    available_quantity: Mapped[int]
    set_aside: Mapped[int] = mapped_column(default=0, server_default="0")
    sales_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sales_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the type is deleted while items, tickets or waiting-list entries still
    # name it: it then has no tickets (quantity 0) and is no longer listed or sold.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship(back_populates="ticket_types")

    def on_sale(self, now):
        return (self.sales_start is None or self.sales_start <= now) and (self.sales_end is None or self.sales_end > now)


class Hold(db.Model):
    """Tickets (and seats) taken for a customer until `expires_at`: confirmed into a
    booking, released, or expired by the sweeper (`eventbook.holds.sweeper`)."""

    __tablename__ = "holds"
    __table_args__ = (
        sa.CheckConstraint("tickets_count > 0", name="tickets_positive"),
        sa.CheckConstraint(_one_of("status", HoldStatus.ALL), name="status_valid"),
        # One HELD hold per customer and event (anti-scalping).
        sa.Index("uq_holds_one_held", "user_id", "event_id", unique=True,
                 sqlite_where=sa.text("status = 'HELD'"), postgresql_where=sa.text("status = 'HELD'")),
        sa.Index("ix_holds_status_expires_at", "status", "expires_at"),
        {"sqlite_autoincrement": True},  # a removed event's holds' ids are never given to new ones
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    tickets_count: Mapped[int]
    total_amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(sa.String(16), default=HoldStatus.HELD)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship(lazy="joined", innerjoin=True)
    items: Mapped[list["Item"]] = relationship(lazy="selectin", order_by="Item.id",
                                               primaryjoin="Hold.id == Item.hold_id", viewonly=True)
    seats: Mapped[list["Seat"]] = relationship(lazy="selectin", order_by="Seat.position",
                                               primaryjoin="Hold.id == Seat.hold_id", viewonly=True)

    @staticmethod
    def ended_as(status, now):
        """SQL: what a HELD hold ended `now` becomes: `status` (RELEASED), or EXPIRED once
        past its expiry, whatever ends it."""
        return sa.case((Hold.expires_at <= now, HoldStatus.EXPIRED), else_=status)


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint("tickets_count > 0", name="tickets_positive"),
        sa.CheckConstraint(_one_of("status", BookingStatus.ALL), name="status_valid"),
        # One CONFIRMED booking per customer and event; cancelled ones may pile up.
        sa.Index("uq_bookings_one_confirmed", "user_id", "event_id", unique=True,
                 sqlite_where=sa.text("status = 'CONFIRMED'"), postgresql_where=sa.text("status = 'CONFIRMED'")),
        # A customer's own, newest first, a page at a time: in the order they are listed in.
        sa.Index("ix_bookings_user_id_created_at_id", "user_id", "created_at", "id"),
        # With the id: an event's confirmed bookings (its figures) are read from the index alone.
        sa.Index("ix_bookings_event_id_status_id", "event_id", "status", "id"),
        sa.Index("ix_bookings_event_id_id", "event_id", "id"),  # an event's bookings in order, a page at a time
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    tickets_count: Mapped[int]
    total_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), server_default="0")
    status: Mapped[str] = mapped_column(sa.String(16), default=BookingStatus.CONFIRMED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship(lazy="joined", innerjoin=True)
    user: Mapped[User] = relationship(lazy="select")
    items: Mapped[list["Item"]] = relationship(lazy="selectin", order_by="Item.id",
                                               primaryjoin="Booking.id == Item.booking_id", viewonly=True)
    tickets: Mapped[list["Ticket"]] = relationship(lazy="select", order_by="Ticket.id", viewonly=True)
    seats: Mapped[list["Seat"]] = relationship(
        secondary="tickets", primaryjoin="Booking.id == Ticket.booking_id", secondaryjoin="Ticket.seat_id == Seat.id",
        lazy="selectin", order_by="Seat.position", viewonly=True)


class Item(db.Model):
    """What a hold or a booking holds of one ticket type, at the price it was taken at.
    A hold's items become its booking's when it is confirmed (`booking_id` is set)."""

    __tablename__ = "items"
    __table_args__ = (
        sa.CheckConstraint("count > 0", name="count_positive"),
        sa.CheckConstraint("hold_id IS NOT NULL OR booking_id IS NOT NULL", name="has_owner"),
        # A type's items with what they are counted and summed by: an event's figures
        # read them from the index alone (PostgreSQL).
        sa.Index("ix_items_ticket_type_id_booking_id", "ticket_type_id", "booking_id",
                 postgresql_include=["count", "unit_price"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hold_id: Mapped[int | None] = mapped_column(sa.ForeignKey("holds.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    ticket_type_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket_types.id"))
    count: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Money)


# Seat ids go past 2**31 (see SeatRange); SQLite's integers are 64-bit already.
SeatId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SEATS_PER_RANGE = 100_000  # ids set apart for each range: more than a map's seats


class SeatRange(db.Model):
    """A range of numbered seats in one row of a RESERVED event's seat map, as the map
    was put: a map is written as its ranges, one row each, whatever its number of seats.

    The seat numbered `n` has the id `first_seat_id + n - first_number` and the place
    `position + n - first_number` in the map (sections, then rows, in the order given;
    numbers ascending). A new range's seats have the ids from `id * SEATS_PER_RANGE` on:
    never a replaced map's. A seat gets its own row (`Seat`) when it is first asked for
    (`inventory.add_seat_rows`)."""

    __tablename__ = "seat_ranges"
    __table_args__ = (
        sa.CheckConstraint("first_number <= last_number", name="numbers_ascending"),
        # No two ranges of a row share a seat (on PostgreSQL; the map's validator checks
        # it on both).
        ExcludeConstraint(("event_id", "="), ("section", "="), ("row", "="),
                          (sa.func.int4range(sa.column("first_number"), sa.column("last_number"),
                                             sa.literal_column("'[]'")), "&&"),
                          using="gist", name="ex_seat_ranges_place").ddl_if(dialect="postgresql"),
        sa.UniqueConstraint("event_id", "position", name="uq_seat_ranges_event_id_position"),
        sa.ForeignKeyConstraint(["event_id", "ticket_type_id"], ["ticket_types.event_id", "ticket_types.id"],
                                name="fk_seat_ranges_event_id_ticket_types"),
        sa.Index("ix_seat_ranges_event_id_first_seat_id", "event_id", "first_seat_id"),
        {"sqlite_autoincrement": True},  # a replaced map's ids are never given to new seats
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int]
    ticket_type_id: Mapped[int]
    section: Mapped[str] = mapped_column(sa.String(50))
    row: Mapped[str] = mapped_column(sa.String(20))
    first_number: Mapped[int]
    last_number: Mapped[int]
    position: Mapped[int]
    first_seat_id: Mapped[int] = mapped_column(SeatId)


_TAKEN = sa.text(f"status != '{SeatStatus.AVAILABLE}'")


class Seat(db.Model):
    """A seat of a RESERVED event that has been asked for at least once: its range's
    seat, with its status. A seat without a row is AVAILABLE. (Its place is its range's,
    which no other range shares: see SeatRange.)"""

    __tablename__ = "seats"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", SeatStatus.ALL), name="status_valid"),
        # A seat's type is one of its event's: one key checked per seat, not two.
        sa.ForeignKeyConstraint(["event_id", "ticket_type_id"], ["ticket_types.event_id", "ticket_types.id"],
                                name="fk_seats_event_id_ticket_types"),
        sa.Index("ix_seats_ticket_type_id", "ticket_type_id"),  # for that key's checks when a type goes
        # An event's seats that are held or booked, in map order (the seat list, a map
        # in use, a cancel). Only those: a sale finds its seats by their ids, and an index
        # of all the event's rows would draw a plan made while the table was small into
        # reading all of them to find two.
        sa.Index("ix_seats_event_id_position", "event_id", "position", postgresql_where=_TAKEN, sqlite_where=_TAKEN),
        # Seats are looked up by their hold or booking, never by its absence: a seat
        # given back adds no entry to these.
        sa.Index("ix_seats_hold_id", "hold_id", postgresql_where=sa.text("hold_id IS NOT NULL"),
                 sqlite_where=sa.text("hold_id IS NOT NULL")),
        sa.Index("ix_seats_booking_id", "booking_id", postgresql_where=sa.text("booking_id IS NOT NULL"),
                 sqlite_where=sa.text("booking_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(SeatId, primary_key=True, autoincrement=False)  # its range's: see SeatRange
    range_id: Mapped[int] = mapped_column(sa.ForeignKey("seat_ranges.id"), index=True)
    event_id: Mapped[int]
    ticket_type_id: Mapped[int]
    section: Mapped[str] = mapped_column(sa.String(50))
    row: Mapped[str] = mapped_column(sa.String(20))
    number: Mapped[int]
    position: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default=SeatStatus.AVAILABLE)
    hold_id: Mapped[int | None] = mapped_column(sa.ForeignKey("holds.id"))
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"))


class Ticket(db.Model):
    """One admission of a CONFIRMED booking: one per unit, or per seat. `code` is what
    the attendee shows at the door (more than 128 random bits, URL-safe)."""

    __tablename__ = "tickets"
    __table_args__ = (
        # The checked-in tickets of a type (an event's figures), and nothing of the others.
        sa.Index("ix_tickets_checked_in", "ticket_type_id", "booking_id",
                 postgresql_where=sa.text("checked_in_at IS NOT NULL"), sqlite_where=sa.text("checked_in_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    ticket_type_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket_types.id"))
    seat_id: Mapped[int | None] = mapped_column(SeatId, sa.ForeignKey("seats.id", ondelete="SET NULL"), index=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The nonce of the scan that last checked the ticket in, and that scan's time: kept
    # past an undo, so that a retry of that scan gets its answer and admits no one again.
    check_in_nonce: Mapped[str | None] = mapped_column(sa.String(100))
    check_in_nonce_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    seat: Mapped["Seat | None"] = relationship(lazy="joined")


class WaitlistEntry(db.Model):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        sa.CheckConstraint("tickets_count > 0", name="tickets_positive"),
        sa.CheckConstraint(_one_of("status", EntryStatus.ALL), name="status_valid"),
        # One live entry per customer and event.
        sa.Index("uq_waitlist_entries_one_live", "user_id", "event_id", unique=True,
                 sqlite_where=sa.text("status IN ('WAITING', 'OFFERED')"),
                 postgresql_where=sa.text("status IN ('WAITING', 'OFFERED')")),
        sa.Index("ix_waitlist_entries_queue", "event_id", "status", "id"),
        sa.Index("ix_waitlist_entries_user_id_event_id_id", "user_id", "event_id", "id"),  # a customer's own, newest first
        {"sqlite_autoincrement": True},  # a removed event's entries' ids are never given to new ones
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    ticket_type_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket_types.id"))
    tickets_count: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default=EntryStatus.WAITING)
    hold_id: Mapped[int | None] = mapped_column(sa.ForeignKey("holds.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Its place in line, read with the entry when a query asks for it
    # (`waitlist.service.placed`): None unless WAITING.
    position: Mapped[int | None] = query_expression()

    user: Mapped[User] = relationship(lazy="select")


class RevokedToken(db.Model):
    """Logged-out tokens, checked on every authenticated request until they expire."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class TokenFamily(db.Model):
    """One login's tokens. Refreshing moves `refresh_jti` to the new refresh token, so
    presenting an older one shows it was copied (theft): the family is revoked."""

    __tablename__ = "token_families"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    refresh_jti: Mapped[str] = mapped_column(sa.String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationKind:
    BOOKING_CONFIRMED = "BOOKING_CONFIRMED"
    BOOKING_CANCELLED = "BOOKING_CANCELLED"
    EVENT_UPDATED = "EVENT_UPDATED"
    EVENT_CANCELLED = "EVENT_CANCELLED"
    WAITLIST_OFFER = "WAITLIST_OFFER"
    ALL = (BOOKING_CONFIRMED, BOOKING_CANCELLED, EVENT_UPDATED, EVENT_CANCELLED, WAITLIST_OFFER)
    # The account's own security emails: sent, never listed (GET /api/notifications). A
    # reset's email carries a code that sets the password, which a stolen access token
    # must not read; a change's tells the owner, who may not be the one who made it.
    PASSWORD_RESET = "PASSWORD_RESET"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
    UNLISTED = (PASSWORD_RESET, PASSWORD_CHANGED)


class NotificationStatus:
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    ALL = (PENDING, SENT, FAILED)


class Notification(db.Model):
    """The outbox. A row is one email: its `kind` and the `params` its template needs
    (`eventbook.notifications.templates` renders subject and body). A row without a
    recipient (`user_id` NULL) is a fan-out: a worker expands it into one row per
    attendee, so an event change costs the request one INSERT whatever the audience.

    `subject` and `body` are only set on rows written before templates (migration 0004)."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_due", "status", "next_attempt_at"),
        sa.Index("ix_notifications_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    recipient: Mapped[str | None] = mapped_column(sa.String(254))
    params: Mapped[dict | None] = mapped_column(sa.JSON)
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str | None] = mapped_column(sa.Text)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id", ondelete="SET NULL"))
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(sa.String(16), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(db.Model):
    """The first answer under an `Idempotency-Key`, which a repeat is answered with
    again: a success's status and its booking (rendered as it is now), or a refusal's
    status and its envelope (`refusal`, JSON), with no booking."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.CheckConstraint("(booking_id IS NULL) <> (refusal IS NULL)", name="booking_or_refusal"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int]
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id", ondelete="CASCADE"))
    refusal: Mapped[str | None] = mapped_column(sa.Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
