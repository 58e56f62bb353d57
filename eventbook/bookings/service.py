"""Bookings: the overbooking-safe purchase, cancellation, and who may see what."""

from types import SimpleNamespace

from sqlalchemy import exc, insert, select, update

from eventbook import inventory
from eventbook.bookings import idempotency
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import Booking, BookingStatus, Event, EventStatus, Role, User, utcnow
from eventbook.notifications import outbox


def book(user, event_id, tickets_count, idempotency_key=None, dump=None):
    """Sell `tickets_count` tickets of an event to `user`, in one transaction:

    1. (with an Idempotency-Key) the key row, or the stored response to replay;
    2. the conditional UPDATE that takes the tickets if they are there;
    3. the booking row, which the one-CONFIRMED-booking-per-customer index guards;
    4. the BOOKING_CONFIRMED notification row.

    Returns (booking, None), or (None, (status, body)) for a replayed request."""
    now = utcnow()
    key_row = None
    if idempotency_key is not None:
        digest = idempotency.fingerprint({"eventId": event_id, "ticketsCount": tickets_count})
        key_row, replay = idempotency.reserve(user.id, idempotency_key, digest, now)
        if replay:
            return None, replay

    event = inventory.take(event_id, tickets_count, now)
    if event is None:
        db.session.rollback()
        _refuse(event_id, tickets_count, now)

    try:
        row = db.session.execute(
            INSERT_BOOKING,
            {"event_id": event.id, "user_id": user.id, "tickets_count": tickets_count,
             "status": BookingStatus.CONFIRMED, "created_at": now},
        ).one()
    except exc.IntegrityError as integrity_error:
        db.session.rollback()
        if "bookings" not in str(integrity_error.orig):
            raise
        error(409, "already_booked", "You already have a confirmed booking for this event")
    booking = SimpleNamespace(**row._mapping, event=event)  # what BookingSchema reads
    note = outbox.booking_confirmed(booking, user, event)
    if key_row is not None:
        idempotency.record(key_row, 201, dump(booking))
    outbox.commit(note)
    return booking, None


INSERT_BOOKING = insert(Booking.__table__).returning(*Booking.__table__.c)


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
