"""Selling on PostgreSQL: each sale is one statement, auto-committed.

A data-modifying WITH runs every step of a sale in the server, in one round trip:
the rows it locks (the event's, its types') are held only while the server runs it
and commits it, never while Python works between statements. `tests/test_sales_sql.py`
prints the three statements as SQL; `docs/booking.md` shows them.

    BOOK:  taken_event (inventory.take_event) -> taken_types (inventory.take_types of
           `wanted`) -> booked (INSERT bookings) -> taken_seats (inventory.take_seats)
           -> items, tickets, noted (BOOKING_CONFIRMED), keyed (Idempotency-Key row),
           left (the customer's WAITING entry) -> SELECT, through `whole`

Each step reads the one before it, so when the event cannot be taken nothing is. When
the event was taken but a type or a seat was not, the final SELECT calls
`eventbook_all_or_nothing(false)` (migration 0004), which raises: PostgreSQL then undoes
the whole statement, and the caller is told `NotTaken`, as when nothing was taken.
"""

from flask import current_app
from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError

from eventbook import inventory
from eventbook.database import autocommit
from eventbook.extensions import db
from eventbook.models import (
    Booking,
    BookingStatus,
    EntryStatus,
    Event,
    Hold,
    HoldStatus,
    IdempotencyKey,
    Item,
    Notification,
    NotificationKind,
    NotificationStatus,
    Seat,
    Seating,
    SeatStatus,
    Ticket,
    TicketType,
    UTCDateTime,
    WaitlistEntry,
)
from eventbook.sales import NotTaken, codes

_events, _types, _seats, _holds, _bookings = (Event.__table__, TicketType.__table__, Seat.__table__, Hold.__table__,
                                             Booking.__table__)
_items, _tickets, _notes, _keys, _entries = (Item.__table__, Ticket.__table__, Notification.__table__,
                                             IdempotencyKey.__table__, WaitlistEntry.__table__)
EVENT_ID = bindparam("event", type_=Integer)
USER_ID = bindparam("customer", type_=Integer)
NOW = bindparam("now", type_=UTCDateTime())
NOT_WHOLE = "EB409"  # the SQLSTATE eventbook_all_or_nothing raises


def book(order):
    row = _run(BOOK, _values(order, codes(order.tickets)))
    return row.booking_id, [row.note_id]


def hold(order, expires_at):
    row = _run(HOLD, {**_values(order, []), "hold_expires_at": expires_at})
    return row.hold_id, []


def confirm(hold_id, customer_id, email, key, now):
    values = {"hold": hold_id, "customer": customer_id, "email": email, "now": now,
              "codes": codes(current_app.config["MAX_TICKETS_PER_BOOKING"]), **_key_values(key)}
    row = _run(CONFIRM, values)
    return row.booking_id, [row.note_id]


def _run(statement, values):
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()  # a read of this request: the sale commits by itself, on its own connection
    try:
        with autocommit() as connection:
            row = connection.execute(statement, values).one()
    except DBAPIError as failure:
        if getattr(failure.orig, "pgcode", None) == NOT_WHOLE:
            raise NotTaken() from None
        raise
    if row[0] is None:
        raise NotTaken()
    return row


def _values(order, ticket_codes):
    shorthand = sum(count for type_id, count in order.items if type_id is None)
    listed = [(type_id, count) for type_id, count in order.items if type_id is not None]
    return {
        "event": order.event_id, "customer": order.customer_id, "email": order.email, "now": order.now,
        "tickets": order.tickets, "shorthand": shorthand,
        "type_ids": [type_id for type_id, _ in listed], "counts": [count for _, count in listed],
        "seat_ids": list(order.seat_ids), "seat_count": len(order.seat_ids), "seat_changes": int(bool(order.seat_ids)),
        "codes": ticket_codes, **_key_values(order.key),
    }


def _key_values(key):
    return {"idempotency_key": key and key.key, "digest": key and key.digest, "key_expires_at": key and key.expires_at}


# -- the statements ------------------------------------------------------------------


def _wanted():
    """The order's (ticket_type_id, count) pairs: the event's only type for the
    `ticketsCount` shorthand, the listed items, or the seats asked for counted by type."""
    only_type = (
        select(func.min(_types.c.id).label("ticket_type_id"), bindparam("shorthand", type_=Integer).label("count"))
        .where(_types.c.event_id == EVENT_ID, bindparam("shorthand", type_=Integer) > 0)
        .having(func.count() == 1)
    )
    listed = func.unnest(
        bindparam("type_ids", type_=ARRAY(Integer)), bindparam("counts", type_=ARRAY(Integer))
    ).table_valued("ticket_type_id", "count").render_derived()
    by_seat = (
        select(_seats.c.ticket_type_id, func.count())
        .where(_seats.c.id.in_(bindparam("seat_ids", expanding=True)), _seats.c.event_id == EVENT_ID)
        .group_by(_seats.c.ticket_type_id)
    )
    return union_all(only_type, select(listed.c.ticket_type_id, listed.c["count"]), by_seat).cte("wanted")


def _take(*, for_hold=False):
    """The takes every sale starts with: the event, then its types, each step only if
    the one before took something. Also what was taken of each type (`counted`)."""
    take_event = inventory.take_event()
    if for_hold:  # a customer with a booking cannot hold more (409 already_booked)
        take_event = take_event.where(~exists().where(
            _bookings.c.event_id == EVENT_ID, _bookings.c.user_id == USER_ID,
            _bookings.c.status == BookingStatus.CONFIRMED))
    taken_event = take_event.cte("taken_event")
    wanted = _wanted()
    taken_types = inventory.take_types(wanted).where(exists(select(taken_event.c.id))).cte("taken_types")
    return taken_event, wanted, taken_types, _counted(wanted, taken_types)


def _counted(wanted, taken_types):
    """The types taken, with the count taken of each: (ticket_type_id, count, price)."""
    return select(taken_types.c.id.label("ticket_type_id"), wanted.c["count"], taken_types.c.price) \
        .join_from(taken_types, wanted, wanted.c.ticket_type_id == taken_types.c.id).cte("counted")


def _total(counted):
    return select(func.coalesce(func.sum(counted.c.price * counted.c["count"]), 0)).scalar_subquery()


def _booking_parts(booked, event, counts, seats_taken):
    """What a CONFIRMED booking writes beside its row: one ticket per unit of `counts`
    (ticket_type_id, count), or per seat of `seats_taken` (id, ticket_type_id); its
    BOOKING_CONFIRMED notification; its Idempotency-Key row. And the customer leaves
    the event's waiting list."""
    unit = func.generate_series(1, counts.c["count"]).table_valued("n").alias("unit")
    units = union_all(
        select(counts.c.ticket_type_id, null().cast(Integer).label("seat_id"))
        .select_from(counts.join(unit, true()))
        .where(~exists(select(seats_taken.c.id))),
        select(seats_taken.c.ticket_type_id, seats_taken.c.id),
    ).subquery("units")
    numbered = select(
        units, func.row_number().over(order_by=(units.c.seat_id, units.c.ticket_type_id)).label("n")
    ).subquery("numbered")
    code = func.unnest(bindparam("codes", type_=ARRAY(String))).table_valued("code", with_ordinality="n") \
        .render_derived()
    tickets = insert(_tickets).from_select(
        ["booking_id", "ticket_type_id", "seat_id", "code"],
        select(booked.c.id, numbered.c.ticket_type_id, numbered.c.seat_id, code.c.code)
        .select_from(booked.join(numbered, true()).join(code, code.c.n == numbered.c.n)),
    ).returning(_tickets.c.id).cte("tickets")
    params = func.json_build_object(
        "title", event.c.title, "date", event.c.date, "location", event.c.location, "booking", booked.c.id,
        "tickets", booked.c.tickets_count, "total", cast(booked.c.total_amount, Text), "currency", event.c.currency)
    noted = insert(_notes).from_select(
        ["kind", "user_id", "recipient", "params", "event_id", "booking_id", "status", "attempts",
         "next_attempt_at", "created_at"],
        select(literal(NotificationKind.BOOKING_CONFIRMED), booked.c.user_id, bindparam("email", type_=String), params,
               booked.c.event_id, booked.c.id, literal(NotificationStatus.PENDING), literal(0), NOW, NOW)
        .select_from(booked.join(event, event.c.id == booked.c.event_id)),
    ).returning(_notes.c.id).cte("noted")
    key = bindparam("idempotency_key", type_=String)
    keyed = insert(_keys).from_select(
        ["user_id", "key", "request_hash", "response_status", "booking_id", "expires_at"],
        select(booked.c.user_id, key, bindparam("digest", type_=String), literal(201), booked.c.id,
               bindparam("key_expires_at", type_=UTCDateTime())).where(key.is_not(None)),
    ).returning(_keys.c.key).cte("keyed")
    left = _leave_waitlist(booked).cte("left")
    return tickets, noted, keyed, left


def _leave_waitlist(written):
    return (
        update(_entries)
        .where(_entries.c.event_id == select(written.c.event_id).scalar_subquery(),
               _entries.c.user_id == USER_ID, _entries.c.status == EntryStatus.WAITING)
        .values(status=EntryStatus.LEFT, updated_at=NOW)
        .returning(_entries.c.id)
    )


def _count(part):
    return select(func.count()).select_from(part).scalar_subquery().label(part.name)


def _whole(taken_event, wanted, taken_types, taken_seats):
    """True, or an error that undoes the statement: when the event was taken, every
    wanted type and every seat asked for must have been taken too."""
    counted = (
        select(func.count()).select_from(taken_types).scalar_subquery()
        == select(func.count()).select_from(wanted).scalar_subquery()
    )
    all_tickets = select(func.coalesce(func.sum(wanted.c["count"]), 0)).scalar_subquery() == bindparam(
        "tickets", type_=Integer)
    all_seats = select(func.count()).select_from(taken_seats).scalar_subquery() == bindparam(
        "seat_count", type_=Integer)
    return func.eventbook_all_or_nothing(
        or_(not_(exists(select(taken_event.c.id))), and_(counted, all_tickets, all_seats)))


def _book_statement():
    taken_event, wanted, taken_types, counted = _take()
    booked = insert(_bookings).from_select(
        ["event_id", "user_id", "tickets_count", "total_amount", "status", "created_at"],
        select(taken_event.c.id, USER_ID, bindparam("tickets", type_=Integer), _total(counted),
               literal(BookingStatus.CONFIRMED), NOW),
    ).returning(*_bookings.c).cte("booked")
    taken_seats = inventory.take_seats(SeatStatus.BOOKED, booking_id=select(booked.c.id).scalar_subquery()) \
        .where(exists(select(booked.c.id))).cte("taken_seats")
    items = insert(_items).from_select(
        ["booking_id", "ticket_type_id", "count", "unit_price"],
        select(booked.c.id, counted.c.ticket_type_id, counted.c["count"], counted.c.price)
        .select_from(booked.join(counted, true())),
    ).returning(_items.c.id).cte("items")
    tickets, noted, keyed, left = _booking_parts(booked, taken_event, counted, taken_seats)
    return select(
        select(booked.c.id).scalar_subquery().label("booking_id"),
        select(noted.c.id).scalar_subquery().label("note_id"),
        *(_count(part) for part in (items, tickets, keyed, left)),
        _whole(taken_event, wanted, taken_types, taken_seats).label("whole"),
    )


def _hold_statement():
    taken_event, wanted, taken_types, counted = _take(for_hold=True)
    held = insert(_holds).from_select(
        ["event_id", "user_id", "tickets_count", "total_amount", "status", "expires_at", "created_at"],
        select(taken_event.c.id, USER_ID, bindparam("tickets", type_=Integer), _total(counted),
               literal(HoldStatus.HELD), bindparam("hold_expires_at", type_=UTCDateTime()), NOW),
    ).returning(*_holds.c).cte("held")
    taken_seats = inventory.take_seats(SeatStatus.HELD, hold_id=select(held.c.id).scalar_subquery()) \
        .where(exists(select(held.c.id))).cte("taken_seats")
    items = insert(_items).from_select(
        ["hold_id", "ticket_type_id", "count", "unit_price"],
        select(held.c.id, counted.c.ticket_type_id, counted.c["count"], counted.c.price)
        .select_from(held.join(counted, true())),
    ).returning(_items.c.id).cte("items")
    left = _leave_waitlist(held).cte("left")
    return select(
        select(held.c.id).scalar_subquery().label("hold_id"),
        *(_count(part) for part in (items, left)),
        _whole(taken_event, wanted, taken_types, taken_seats).label("whole"),
    )


def _confirm_statement():
    """A HELD hold of this customer that has not expired becomes CONFIRMED, and a
    booking with its items, seats and total. The event's counters do not move: its
    tickets were taken when it was held."""
    # The booking's id is drawn first, so that the hold's own UPDATE can name it (a row
    # is updated once per statement).
    new_booking = select(func.nextval(func.pg_get_serial_sequence("bookings", "id")).label("id")).cte("new_booking")
    booking_id = select(new_booking.c.id).scalar_subquery()
    confirmed = (
        update(_holds)
        .where(_holds.c.id == bindparam("hold", type_=Integer), _holds.c.user_id == USER_ID,
               _holds.c.status == HoldStatus.HELD, _holds.c.expires_at > NOW)
        .values(status=HoldStatus.CONFIRMED, ended_at=NOW, booking_id=booking_id)
        .returning(*_holds.c)
        .cte("confirmed")
    )
    hold_id = select(confirmed.c.id).scalar_subquery()
    booked = insert(_bookings).from_select(
        ["id", "event_id", "user_id", "tickets_count", "total_amount", "status", "created_at"],
        select(confirmed.c.booking_id, confirmed.c.event_id, confirmed.c.user_id, confirmed.c.tickets_count,
               confirmed.c.total_amount, literal(BookingStatus.CONFIRMED), NOW),
    ).returning(*_bookings.c).cte("booked")
    items = update(_items).where(_items.c.hold_id == hold_id).values(booking_id=booking_id) \
        .returning(_items.c.ticket_type_id, _items.c["count"]).cte("items")
    event_id = select(confirmed.c.event_id).scalar_subquery()
    # A seated event's seat map changes: its row first, then its seats (the lock order).
    seat_map = update(_events).where(_events.c.id == event_id, _events.c.seating == Seating.RESERVED) \
        .values(seats_version=_events.c.seats_version + 1).returning(_events.c.id).cte("seat_map")
    seats = update(_seats).where(_seats.c.hold_id == hold_id, exists(select(seat_map.c.id))) \
        .values(status=SeatStatus.BOOKED, booking_id=booking_id) \
        .returning(_seats.c.id, _seats.c.ticket_type_id).cte("taken_seats")
    event = select(_events).where(_events.c.id == event_id).cte("event")
    tickets, noted, keyed, left = _booking_parts(booked, event, items, seats)
    converted = update(_entries).where(_entries.c.hold_id == hold_id) \
        .values(status=EntryStatus.CONVERTED, updated_at=NOW).returning(_entries.c.id).cte("converted")
    return select(
        select(booked.c.id).scalar_subquery().label("booking_id"),
        select(noted.c.id).scalar_subquery().label("note_id"),
        *(_count(part) for part in (tickets, keyed, left, seat_map, converted)),
    )


BOOK = _book_statement()
HOLD = _hold_statement()
CONFIRM = _confirm_statement()
