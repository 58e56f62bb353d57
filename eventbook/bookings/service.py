"""Bookings: the overbooking-safe purchase, cancellation, and who may see what."""

from types import SimpleNamespace

from sqlalchemy import Integer, String, bindparam, exc, insert, select, update

from eventbook import inventory
from eventbook.bookings import idempotency
from eventbook.database import Prepared, autocommit
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import Booking, BookingStatus, Event, EventStatus, Notification, Role, User, utcnow
from eventbook.notifications import outbox


def book(user, event_id, tickets_count, idempotency_key=None, dump=None):
    """Sell `tickets_count` tickets of an event to `user`, in one transaction:

    1. (with an Idempotency-Key) the key row, or the stored response to replay;
    2. the conditional UPDATE that takes the tickets if they are there;
    3. the booking row, which the one-CONFIRMED-booking-per-customer index guards;
    4. the BOOKING_CONFIRMED notification row.

    On PostgreSQL, all of it is one auto-committed statement (`BOOK`, or `BOOK_KEYED`
    with a key): the event's row lock is held only while the database runs it and
    commits, never while Python works between statements. `dump` renders a booking
    for a replayed response (and on SQLite for the key's stored one). Returns
    (booking, None), or (None, (status, body)) for a replayed request."""
    now = utcnow()
    values = {"event_id": event_id, "count": tickets_count, "now": now, "user_id": user.id,
              "booking_status": BookingStatus.CONFIRMED, "email": user.email}
    keyed = idempotency_key is not None
    if keyed:
        values |= idempotency.values(idempotency_key, {"eventId": event_id, "ticketsCount": tickets_count}, now)
    postgresql = db.engine.dialect.name == "postgresql"
    try:
        if postgresql:
            with autocommit() as connection:
                booking, note = _book_in_one_statement(connection, values, BOOK_KEYED if keyed else BOOK)
        else:
            if keyed:
                replay = idempotency.reserve(db.session.connection(), user.id, values, now, dump)
                if replay:
                    return None, replay
            booking, note = _book_in_three(values, user)
    except exc.IntegrityError as integrity_error:
        db.session.rollback()
        if postgresql and keyed:  # a first use of the same key was faster
            replay = idempotency.replay(user.id, values, now, dump)
            if replay not in (None, idempotency.RETRY):
                return None, replay
        violated = _constraint(integrity_error)
        if "bookings" in violated:
            error(409, "already_booked", "You already have a confirmed booking for this event")
        if "idempotency_keys" in violated:  # its row went in between: unlikely
            error(409, "idempotency_key_reused", "This Idempotency-Key is being reused, retry")
        raise
    if booking is None:
        db.session.rollback()
        if postgresql and keyed:  # nothing written: because the key was used before?
            replay = idempotency.replay(user.id, values, now, dump)
            if replay is idempotency.RETRY:
                return book(user, event_id, tickets_count, idempotency_key, dump)
            if replay:
                return None, replay
        _refuse(event_id, tickets_count, now)
    if keyed and not postgresql:
        idempotency.record(db.session.connection(), user.id, idempotency_key, 201, dump(booking))
    outbox.commit(note)
    return booking, None


def _constraint(integrity_error):
    """The violated constraint's name (PostgreSQL), or SQLite's message, which names the
    table ("UNIQUE constraint failed: bookings.event_id, ..."). Not PostgreSQL's message:
    its detail quotes the values, and an Idempotency-Key may say anything."""
    diag = getattr(integrity_error.orig, "diag", None)
    return (diag.constraint_name if diag is not None else None) or str(integrity_error.orig)


def _book_in_one_statement(connection, values, statement):
    rows = statement.run(connection, values)
    if not rows:
        return None, None
    [row] = rows
    event = SimpleNamespace(**{name: row[label] for name, label in _EVENT_LABELS})
    booking = SimpleNamespace(**{name: row[label] for name, label in _BOOKING_LABELS}, event=event)
    return booking, row["note_id"]


def _book_in_three(values, user):
    event = inventory.take(values["event_id"], values["count"], values["now"])
    if event is None:
        return None, None
    row = db.session.execute(INSERT_BOOKING, values).one()
    booking = SimpleNamespace(**row._mapping, event=event)  # what BookingSchema reads
    return booking, outbox.booking_confirmed(booking, user, event)


def _book_statement(keyed=False):
    """WITH taken AS (inventory.TAKE), booked AS (INSERT booking), noted AS (INSERT
    notification) SELECT the event, the booking and the notification's id. Keyed: the
    UPDATE takes nothing when the customer has a row for the key already, and `written`
    INSERTs the key's row."""
    take = inventory.TAKE.where(idempotency.unused()) if keyed else inventory.TAKE
    taken = take.cte("taken")
    now = bindparam("now", type_=_bookings.c.created_at.type)
    booked = (
        insert(_bookings)
        .from_select(
            ["event_id", "user_id", "tickets_count", "status", "created_at"],
            select(taken.c.id, bindparam("user_id", type_=Integer), bindparam("count", type_=Integer),
                   bindparam("booking_status", type_=String), now),
        )
        .returning(*_bookings.c)
        .cte("booked")
    )
    note = outbox.confirmed_sql(booked, taken, now)
    noted = (
        insert(_notifications)
        .from_select(list(note), select(*note.values()).select_from(booked.join(taken, taken.c.id == booked.c.event_id)))
        .returning(_notifications.c.id, _notifications.c.booking_id)
        .cte("noted")
    )
    joined = taken.join(booked, booked.c.event_id == taken.c.id).join(noted, noted.c.booking_id == booked.c.id)
    if keyed:
        written = idempotency.written(taken, booked).cte("written")
        joined = joined.join(written, written.c.user_id == booked.c.user_id)
    return select(
        *(column.label(f"event_{column.name}") for column in taken.c),
        *(column.label(f"booking_{column.name}") for column in booked.c),
        noted.c.id.label("note_id"),
    ).select_from(joined)


_events, _bookings, _notifications = Event.__table__, Booking.__table__, Notification.__table__
INSERT_BOOKING = insert(_bookings).returning(*_bookings.c).values(
    event_id=bindparam("event_id"), user_id=bindparam("user_id"), tickets_count=bindparam("count"),
    status=bindparam("booking_status"), created_at=bindparam("now"),
)
BOOK = Prepared("eventbook_book", _book_statement())
BOOK_KEYED = Prepared("eventbook_book_keyed", _book_statement(keyed=True))
_EVENT_LABELS = [(column.name, f"event_{column.name}") for column in _events.c]  # of BOOK's rows
_BOOKING_LABELS = [(column.name, f"booking_{column.name}") for column in _bookings.c]


def _refuse(event_id, tickets_count, now):
    """Say why the conditional UPDATE took nothing (read after the fact, for the message)."""
    event = db.session.get(Event, event_id)
    if event is None:
        error(404, "not_found", "Event not found")
    if event.status != EventStatus.SCHEDULED:
        error(409, "event_closed", "This event has been cancelled")
    if event.date <= now:
        error(409, "event_closed", "This event has already started")
    left = event.available_tickets
    if left == 0:
        error(409, "sold_out", "Sold out: no tickets left", availableTickets=0)
    error(409, "not_enough_tickets",
          f"Only {left} ticket{'s' if left != 1 else ''} left", availableTickets=left)


def visible(booking_id, user):
    """The booking if `user` may see it (its customer, the event's organizer, an admin);
    404 for everyone else, who need not learn that it exists."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or not (
        user.role == Role.ADMIN
        or booking.user_id == user.id
        or (user.role == Role.ORGANIZER and booking.event.organizer_id == user.id)
    ):
        error(404, "not_found", "Booking not found")
    return booking


def cancel(booking_id, user):
    """Cancel a booking and return its tickets, exactly once however many cancels race."""
    booking = visible(booking_id, user)
    if not (user.role == Role.ADMIN or booking.user_id == user.id):
        error(403, "forbidden", "Only the customer who booked, or an admin, may cancel")
    if booking.status == BookingStatus.CANCELLED:
        return booking
    now = utcnow()
    event = inventory.lock(booking.event_id)
    if event.date <= now:
        db.session.rollback()
        error(409, "event_closed", "The event has already started")
    cancelled = db.session.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == BookingStatus.CONFIRMED)
        .values(status=BookingStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    notes = []
    if cancelled:
        inventory.give_back(booking.event_id, booking.tickets_count)
        customer = db.session.get(User, booking.user_id)
        notes.append(outbox.booking_cancelled(booking, customer, event))
    outbox.commit(*notes)
    return db.session.execute(
        select(Booking).where(Booking.id == booking_id).execution_options(populate_existing=True)
    ).unique().scalar_one()


def mine(user):
    return select(Booking).where(Booking.user_id == user.id).order_by(Booking.created_at.desc(), Booking.id.desc())


def of_event(event_id):
    return select(Booking).where(Booking.event_id == event_id).order_by(Booking.id)
