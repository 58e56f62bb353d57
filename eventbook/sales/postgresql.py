"""Selling on PostgreSQL: each sale is one statement, auto-committed.

A data-modifying WITH runs every step of a sale in the server, in one round trip:
the rows it locks (the event's, its types') are held only while the server runs it
and commits it, never while Python works between statements. `tests/test_sales_sql.py`
prints the four statements as SQL; `docs/booking.md` shows them.

    BOOK:  taken_event (inventory.take_event) -> taken_types (inventory.take_types of
           `wanted`) -> booked (INSERT bookings) -> taken_seats (inventory.take_seats)
           -> items, tickets, noted (BOOKING_CONFIRMED), keyed (Idempotency-Key row),
           left (the customer's WAITING entry) -> SELECT, through `whole`

Each step reads the one before it, so when the event cannot be taken nothing is. When
the event was taken but a type or a seat was not, the final SELECT calls
`eventbook_all_or_nothing(false)` (migration 0004), which raises: PostgreSQL then undoes
the whole statement, and the caller is told `NotTaken`, as when nothing was taken.
"""

from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import (
    ARRAY,
    BigInteger,
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
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import DBAPIError

from eventbook import inventory
from eventbook.database import Prepared, autocommit, retry_deadlocks
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
from eventbook.sales import NotTaken, Sold, codes

_events, _types, _seats, _holds, _bookings = (Event.__table__, TicketType.__table__, Seat.__table__, Hold.__table__,
                                             Booking.__table__)
_items, _tickets, _notes, _keys, _entries = (Item.__table__, Ticket.__table__, Notification.__table__,
                                             IdempotencyKey.__table__, WaitlistEntry.__table__)
EVENT_ID = bindparam("event", type_=Integer)
USER_ID = bindparam("customer", type_=Integer)
NOW = bindparam("now", type_=UTCDateTime())
# The seats asked for, as one array: the statements' text is the same for any number of
# seats, so PostgreSQL can prepare each once.
SEAT_IDS = bindparam("seat_ids", type_=ARRAY(BigInteger))
ASKED_SEATS = _seats.c.id == func.any(SEAT_IDS)
NOT_WHOLE = "EB409"  # the SQLSTATE eventbook_all_or_nothing raises


def book(order):
    row = _run(BOOK_SEATS if order.seat_ids else BOOK, _values(order, codes(order.tickets)))
    return Sold(row["booking_id"], [row["note_id"]], _booking(row))


def hold(order, expires_at):
    row = _run(HOLD_SEATS if order.seat_ids else HOLD, {**_values(order, []), "hold_expires_at": expires_at})
    return Sold(row["hold_id"], [], _hold(row))


def confirm(hold_id, customer_id, email, key, now):
    """The statement writes a ticket per code it is sent, and takes nothing unless every
    ticket has one: MAX_TICKETS_PER_BOOKING codes, as many as a hold has, unless it was
    taken under a higher limit (then it is read, and tried again with its own count)."""
    values = {"hold": hold_id, "customer": customer_id, "email": email, "now": now, **_key_values(key)}
    limit = current_app.config["MAX_TICKETS_PER_BOOKING"]
    try:
        row = _run(CONFIRM, {**values, "codes": codes(limit)})
    except NotTaken:
        held = db.session.scalar(select(_holds.c.tickets_count).where(_holds.c.id == hold_id))
        if held is None or held <= limit:
            raise
        row = _run(CONFIRM, {**values, "codes": codes(held)})
    return Sold(row["booking_id"], [row["note_id"]], _booking(row))


def one_order_at_a_time(customer_id, event_id, wait=True):
    """In the session's transaction (a waiting-list join or leave, a release, an offer):
    take the customer's turn for the event, waiting for a booking, hold or confirm of
    theirs being made, as they wait for each other; without `wait`, whether the turn
    was free."""
    taken = db.session.scalar(text(ONE_ORDER_AT_A_TIME if wait else TURN_IF_FREE),
                              {"customer": customer_id, "event": event_id})
    return taken is not False  # the lock answers void, the try true or false


def _run(statement, values):
    """Run one sales statement; it commits by itself."""
    _end_session_transaction()
    row = _execute(statement, values)
    if row is None:
        raise NotTaken()
    return row


@retry_deadlocks  # a writer that locks the event before its holds (a cancel) can cross a confirm or a sweep
def _execute(statement, values):
    try:
        with autocommit() as connection:
            return statement.execute(connection, values).mappings().first()
    except DBAPIError as failure:
        if getattr(failure.orig, "pgcode", None) == NOT_WHOLE:
            raise NotTaken() from None
        raise


def _end_session_transaction():
    """A statement here commits by itself, on its own connection: what the session read
    before it (in this request, or this sweep) is committed first, and its connection
    goes back to the pool."""
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()


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
        .where(_types.c.event_id == EVENT_ID, _types.c.removed_at.is_(None),
               bindparam("shorthand", type_=Integer) > 0)
        .having(func.count() == 1)
    )
    listed = func.unnest(
        bindparam("type_ids", type_=ARRAY(Integer)), bindparam("counts", type_=ARRAY(Integer))
    ).table_valued("ticket_type_id", "count").render_derived()
    by_seat = (
        select(_seats.c.ticket_type_id, func.count())
        .where(ASKED_SEATS, _seats.c.event_id == EVENT_ID)
        .group_by(_seats.c.ticket_type_id)
    )
    return union_all(only_type, select(listed.c.ticket_type_id, listed.c["count"]), by_seat).cte("wanted")


def _take(*, for_hold=False):
    """The takes every sale starts with: the event, then its types, each step only if
    the one before took something; and what was taken of each type (`counted`)."""
    take_event = inventory.take_event()
    if for_hold:  # a customer with a booking cannot hold more (409 already_booked)
        take_event = take_event.where(~exists().where(
            _bookings.c.event_id == EVENT_ID, _bookings.c.user_id == USER_ID,
            _bookings.c.status == BookingStatus.CONFIRMED))
    else:  # nor book while holding tickets of the event, a waiting-list offer included (409 already_holding)
        take_event = take_event.where(~exists().where(
            _holds.c.event_id == EVENT_ID, _holds.c.user_id == USER_ID,
            _holds.c.status == HoldStatus.HELD, _holds.c.expires_at > NOW))
    taken_event = take_event.cte("taken_event")
    wanted = _wanted()
    taken_types = inventory.take_types(wanted).where(exists(select(taken_event.c.id))).cte("taken_types")
    counted = select(taken_types.c.id.label("ticket_type_id"), wanted.c["count"], taken_types.c.price) \
        .join_from(taken_types, wanted, wanted.c.ticket_type_id == taken_types.c.id).cte("counted")
    return taken_event, wanted, taken_types, counted


def _total(counted):
    return select(func.coalesce(func.sum(counted.c.price * counted.c["count"]), 0)).scalar_subquery()


def _whole(taken_event, wanted, taken_types, taken_seats):
    """True, or an error that undoes the statement: when the event was taken, every
    wanted type and every seat asked for must have been taken too."""
    every_type = (select(func.count()).select_from(taken_types).scalar_subquery()
                  == select(func.count()).select_from(wanted).scalar_subquery())
    every_ticket = (select(func.coalesce(func.sum(wanted.c["count"]), 0)).scalar_subquery()
                    == bindparam("tickets", type_=Integer))
    every_seat = (select(func.count()).select_from(taken_seats).scalar_subquery()
                  == bindparam("seat_count", type_=Integer))
    return func.eventbook_all_or_nothing(
        or_(not_(exists(select(taken_event.c.id))), and_(every_type, every_ticket, every_seat)))


def _booking_parts(booked, event, counted, taken_seats):
    """What a CONFIRMED booking writes beside its row: one ticket per unit of `counted`
    (ticket_type_id, count), or per seat of `taken_seats`; its BOOKING_CONFIRMED
    notification; its Idempotency-Key row. And the customer leaves the event's waiting
    list. The notification's and the tickets' CTEs, and the others to add to the
    statement with them."""
    unit = func.generate_series(1, counted.c["count"]).table_valued("n").alias("unit")
    units = union_all(
        select(counted.c.ticket_type_id, null().cast(Integer).label("seat_id"))
        .select_from(counted.join(unit, true()))
        .where(~exists(select(taken_seats.c.id))),
        select(taken_seats.c.ticket_type_id, taken_seats.c.id),
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
    return noted, tickets, (keyed, left)


def _leave_waitlist(written):
    return (
        update(_entries)
        .where(_entries.c.event_id == select(written.c.event_id).scalar_subquery(),
               _entries.c.user_id == USER_ID, _entries.c.status == EntryStatus.WAITING)
        .values(status=EntryStatus.LEFT, updated_at=NOW)
        .returning(_entries.c.id)
    )


def _book_statement():
    taken_event, wanted, taken_types, counted = _take()
    booked = insert(_bookings).from_select(
        ["event_id", "user_id", "tickets_count", "total_amount", "status", "created_at"],
        select(taken_event.c.id, USER_ID, bindparam("tickets", type_=Integer), _total(counted),
               literal(BookingStatus.CONFIRMED), NOW),
    ).returning(*_bookings.c).cte("booked")
    taken_seats = inventory.take_seats(SeatStatus.BOOKED, ASKED_SEATS, booking_id=select(booked.c.id).scalar_subquery()) \
        .where(exists(select(booked.c.id))).cte("taken_seats")
    items = insert(_items).from_select(
        ["booking_id", "ticket_type_id", "count", "unit_price"],
        select(booked.c.id, counted.c.ticket_type_id, counted.c["count"], counted.c.price)
        .select_from(booked.join(counted, true())),
    ).returning(_items.c.id).cte("items")
    noted, tickets, others = _booking_parts(booked, taken_event, counted, taken_seats)
    return select(
        *_columns(booked, "booking"), *_columns(taken_event, "event"),
        _items_of(counted, counted.c.price), _seats_of(taken_seats), _types_of(EVENT_ID, taken_types),
        noted.c.id.label("note_id"),
        _whole(taken_event, wanted, taken_types, taken_seats).label("whole"),
    ).select_from(booked.join(taken_event, taken_event.c.id == booked.c.event_id).join(noted, true())) \
        .add_cte(items, tickets, *others)


def _hold_statement():
    taken_event, wanted, taken_types, counted = _take(for_hold=True)
    held = insert(_holds).from_select(
        ["event_id", "user_id", "tickets_count", "total_amount", "status", "expires_at", "created_at"],
        select(taken_event.c.id, USER_ID, bindparam("tickets", type_=Integer), _total(counted),
               literal(HoldStatus.HELD), bindparam("hold_expires_at", type_=UTCDateTime()), NOW),
    ).returning(*_holds.c).cte("held")
    taken_seats = inventory.take_seats(SeatStatus.HELD, ASKED_SEATS, hold_id=select(held.c.id).scalar_subquery()) \
        .where(exists(select(held.c.id))).cte("taken_seats")
    items = insert(_items).from_select(
        ["hold_id", "ticket_type_id", "count", "unit_price"],
        select(held.c.id, counted.c.ticket_type_id, counted.c["count"], counted.c.price)
        .select_from(held.join(counted, true())),
    ).returning(_items.c.id).cte("items")
    left = _leave_waitlist(held).cte("left")
    return select(
        *_columns(held, "hold"), taken_event.c.currency.label("event_currency"),
        _items_of(counted, counted.c.price), _seats_of(taken_seats),
        _whole(taken_event, wanted, taken_types, taken_seats).label("whole"),
    ).select_from(held.join(taken_event, taken_event.c.id == held.c.event_id)).add_cte(items, left)


def _confirm_statement():
    """A HELD hold of this customer that has not expired, on an event that is still
    scheduled and has not started, becomes CONFIRMED, and a booking with its items,
    seats and total. The event's counters do not move: its
    tickets were taken when it was held."""
    # The booking's id is drawn first, so that the hold's own UPDATE can name it (a row
    # is updated once per statement).
    new_booking = select(func.nextval(func.pg_get_serial_sequence("bookings", "id")).label("id")).cte("new_booking")
    booking_id = select(new_booking.c.id).scalar_subquery()
    confirmed = (
        update(_holds)
        .where(_holds.c.id == bindparam("hold", type_=Integer), _holds.c.user_id == USER_ID,
               _holds.c.status == HoldStatus.HELD, _holds.c.expires_at > NOW,
               inventory.on_sale_event(_holds.c.event_id, NOW))
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
        .returning(_items.c.ticket_type_id, _items.c["count"], _items.c.unit_price).cte("items")
    event_id = select(confirmed.c.event_id).scalar_subquery()
    # The event row is locked after the hold's (the lock order), once, in the mode the
    # statement needs: a change of the event being written is waited for and read as
    # committed, so the booking and its confirmation name the event as it now is, and a
    # change's EVENT_UPDATED, told to the bookings it saw, never misses this one. A seated
    # event's seat map changes (its row first, then its seats): its UPDATE is that lock,
    # and its row the one read. Another event's row is read under a share lock (a share
    # lock taken before that UPDATE would deadlock two confirms of one seated event).
    seat_map = update(_events).where(_events.c.id == event_id, _events.c.seating == Seating.RESERVED) \
        .values(seats_version=_events.c.seats_version + 1).returning(*_events.c).cte("seat_map")
    seats = inventory.book_held_seats(hold_id, booking_id).where(exists(select(seat_map.c.id))).cte("taken_seats")
    general = select(_events).where(_events.c.id == event_id, _events.c.seating == Seating.GENERAL) \
        .with_for_update(read=True).cte("general")
    event = union_all(select(seat_map), select(general)).cte("event")
    noted, tickets, others = _booking_parts(booked, event, items, seats)
    converted = update(_entries).where(_entries.c.hold_id == hold_id) \
        .values(status=EntryStatus.CONVERTED, updated_at=NOW).returning(_entries.c.id).cte("converted")
    # A code for every ticket, or nothing: a hold taken under a higher
    # MAX_TICKETS_PER_BOOKING has more tickets than the codes sent for the current one.
    every_ticket = func.eventbook_all_or_nothing(
        select(func.count()).select_from(tickets).scalar_subquery() == booked.c.tickets_count)
    return select(
        *_columns(booked, "booking"), *_columns(event, "event"),
        _items_of(items, items.c.unit_price), _seats_of(seats), _types_of(event_id),
        noted.c.id.label("note_id"), every_ticket.label("whole"),
    ).select_from(booked.join(event, event.c.id == booked.c.event_id).join(noted, true())) \
        .add_cte(tickets, *others, converted)


def _expire_statement():
    """Up to `:batch` HELD holds past their expiry (skipping those another sweeper has
    locked) become EXPIRED, and give their tickets and seats back; their waiting-list
    offers lapse. The holds' conditional UPDATE decides against a confirm or a release
    racing it: a hold that is no longer HELD gives nothing back. Returns how many holds
    were due and the events whose tickets came back."""
    due = (
        select(_holds.c.id)
        .where(_holds.c.status == HoldStatus.HELD, _holds.c.expires_at <= NOW)
        .order_by(_holds.c.id).limit(bindparam("batch", type_=Integer))
        .with_for_update(skip_locked=True)
        .cte("due").prefix_with("MATERIALIZED")  # chosen once: the batch is what it locked
    )
    ended = (
        update(_holds)
        .where(_holds.c.id.in_(select(due.c.id)), _holds.c.status == HoldStatus.HELD)
        .values(status=HoldStatus.EXPIRED, ended_at=NOW)
        .returning(_holds.c.id, _holds.c.event_id)
        .cte("ended")
    )
    returned = (
        select(ended.c.event_id, _items.c.ticket_type_id, func.sum(_items.c["count"]).label("count"))
        .join_from(_items, ended, _items.c.hold_id == ended.c.id)
        .group_by(ended.c.event_id, _items.c.ticket_type_id)
        .cte("returned")
    )
    given_events, given_types, freed_seats = inventory.give_back_all(returned, _seats.c.hold_id.in_(select(ended.c.id)))
    lapsed = (
        update(_entries)
        .where(_entries.c.hold_id.in_(select(ended.c.id)), _entries.c.status == EntryStatus.OFFERED,
               inventory.after(freed_seats))  # the lock order: entries last
        .values(status=EntryStatus.LAPSED, updated_at=NOW)
        .returning(_entries.c.id)
        .cte("lapsed")
    )
    return select(
        select(func.count()).select_from(due).scalar_subquery().label("due"),
        select(func.array_agg(given_events.c.id)).scalar_subquery().label("events"),
    ).add_cte(given_types, freed_seats, lapsed)


def expire(batch, now):
    """Expire up to `batch` due holds in one auto-committed statement: (the events whose
    tickets came back, whether `batch` were due: there may be more)."""
    # The sweeper is no request thread: the auto-commit pool is sized for those
    # (`eventbook.database.binds`), so it takes one of the main pool, in auto-commit mode,
    # after its session has given its own back.
    _end_session_transaction()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = EXPIRE.execute(connection, {"batch": batch, "now": now}).mappings().one()
    return sorted(row["events"] or []), row["due"] == batch


# -- what the statements return: the response, without reading it back ------------------


def _columns(written, name):
    """Every column of a written row (a CTE of a table's columns), as `name_column`."""
    return [column.label(f"{name}_{column.name}") for column in written.c]


def _items_of(items, price):
    """The items written, as JSON: [{ticket_type_id, count, unit_price}] (money as text)."""
    return select(func.coalesce(func.json_agg(func.json_build_object(
        "ticket_type_id", items.c.ticket_type_id, "count", items.c["count"], "unit_price", cast(price, Text),
    )), func.json_build_array())).scalar_subquery().label("items")


def _seats_of(taken_seats):
    """The seats taken, as JSON, in map order: [{id, section, row, number}]."""
    seat = _seats.alias("seat")
    return select(func.coalesce(func.json_agg(aggregate_order_by(
        func.json_build_object("id", seat.c.id, "section", seat.c.section, "row", seat.c.row, "number", seat.c.number),
        seat.c.position)), func.json_build_array())) \
        .where(seat.c.id.in_(select(taken_seats.c.id))).scalar_subquery().label("seats")


def _types_of(event_id, taken_types=None):
    """The event's ticket types as they are after the statement, as JSON: those it took
    from with what the take left (`taken_types`), the others as it found them."""
    kind = _types.alias("type")
    available = kind.c.available_quantity
    source = kind
    if taken_types is not None:
        available = func.coalesce(taken_types.c.available_quantity, kind.c.available_quantity)
        source = kind.outerjoin(taken_types, taken_types.c.id == kind.c.id)
    return select(func.json_agg(aggregate_order_by(func.json_build_object(
        "id", kind.c.id, "name", kind.c.name, "price", cast(kind.c.price, Text), "quantity", kind.c.quantity,
        "available_quantity", available, "sales_start", kind.c.sales_start, "sales_end", kind.c.sales_end,
    ), kind.c.id))).select_from(source).where(kind.c.event_id == event_id, kind.c.removed_at.is_(None)).scalar_subquery() \
        .label("ticket_types")


def _booking(row):
    """The booking a BOOK or CONFIRM statement wrote, as BookingSchema reads it."""
    event = _row(row, "event", _events)
    event.ticket_types = [SimpleNamespace(**{**kind, "price": Decimal(kind["price"]),
                                             "sales_start": _time(kind["sales_start"]),
                                             "sales_end": _time(kind["sales_end"])}) for kind in row["ticket_types"]]
    booking = _row(row, "booking", _bookings)
    booking.event, booking.items = event, _written_items(row)
    booking.seats = [SimpleNamespace(**seat) for seat in row["seats"]]
    return booking


def _hold(row):
    """The hold a HOLD statement wrote, as HoldSchema reads it."""
    held = _row(row, "hold", _holds)
    held.event, held.items = SimpleNamespace(currency=row["event_currency"]), _written_items(row)
    held.seats = [SimpleNamespace(**seat) for seat in row["seats"]]
    return held


def _row(row, name, table):
    return SimpleNamespace(**{column.name: row[f"{name}_{column.name}"] for column in table.c})


def _written_items(row):
    return [SimpleNamespace(**{**item, "unit_price": Decimal(item["unit_price"])}) for item in row["items"]]


def _time(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc) if text else None


# One customer's orders for one event, one at a time. A booking is refused to a customer
# who holds tickets of its event, a hold to one who booked it, and either makes the
# customer's waiting-list entry LEFT; but a statement reads what was committed when it
# started, so a booking and a hold (or a join) of the same customer sent at once would
# each miss the other. Each waits on this lock first and then reads: the second sees
# what the first wrote.
ONE_ORDER_AT_A_TIME = "SELECT pg_advisory_xact_lock(:customer, :event)"
TURN_IF_FREE = "SELECT pg_try_advisory_xact_lock(:customer, :event)"  # for a writer that must not wait

BOOK = Prepared("eventbook_book", _book_statement(), first=ONE_ORDER_AT_A_TIME)
HOLD = Prepared("eventbook_hold", _hold_statement(), first=ONE_ORDER_AT_A_TIME)
# A seated order first gives the seats it asks for that have no row yet their row,
# AVAILABLE (`inventory.add_seat_rows`), for the statement's UPDATE to take them. Under
# the event's lock, taken first: the rows are those of the map as it is now (a new map
# is put under that lock), and two orders for one event never add rows at once.
SEATED_FIRST = [
    ONE_ORDER_AT_A_TIME,
    "SELECT FROM events WHERE id = :event FOR NO KEY UPDATE",
    inventory.add_seat_rows(func.unnest(SEAT_IDS).table_valued("id").render_derived().c.id, "postgresql"),
]
BOOK_SEATS = Prepared("eventbook_book_seats", _book_statement(), first=SEATED_FIRST)
HOLD_SEATS = Prepared("eventbook_hold_seats", _hold_statement(), first=SEATED_FIRST)
# A confirm takes the same turn, its event being its hold's: a hold sent while it runs
# would otherwise miss the booking it makes.
CONFIRM = Prepared("eventbook_confirm", _confirm_statement(),
                   first="SELECT pg_advisory_xact_lock(:customer, (SELECT event_id FROM holds WHERE id = :hold))")
EXPIRE = Prepared("eventbook_expire", _expire_statement())
