"""Bookings: the overbooking-safe purchase, cancellation, and who may see what."""

from sqlalchemy import exc, func, select, update
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.exceptions import HTTPException

from eventbook import inventory, sales, waitlist
from eventbook.bookings import idempotency
from eventbook.database import retry_deadlocks
from eventbook.errors import error
from eventbook.events import service as events
from eventbook.extensions import db
from eventbook.holds import service as holds
from eventbook.models import Booking, BookingStatus, Event, Item, Role, Seat, Ticket, User, utcnow
from eventbook.notifications import outbox
from eventbook.sales import refusal
from eventbook.schemas import utc_text


def order_of(customer, data, now, key=None):
    """The sales.Order a request asks for (items of one type merged)."""
    counts = {}
    if "tickets_count" in data:
        counts[data.get("ticket_type_id")] = data["tickets_count"]
    for item in data.get("items", ()):
        counts[item["ticket_type_id"]] = counts.get(item["ticket_type_id"], 0) + item["count"]
    return sales.Order(event_id=data["event_id"], customer_id=customer.id, email=customer.email,
                       items=tuple(counts.items()), seat_ids=tuple(data.get("seat_ids", ())), key=key, now=now)


def book(customer, data, idempotency_key=None, path="/api/bookings"):
    """Sell tickets to `customer` in one transaction (`eventbook.sales`): (booking,
    status, replayed). A repeat of an Idempotency-Key gets the first answer again."""
    now = utcnow()
    key = idempotency.key_of(idempotency_key, path, data, now)
    replayed = idempotency.replay(customer.id, key, now)
    if replayed:
        return replay(*replayed)
    order = order_of(customer, data, now, key)
    for last_try in (False, True):
        try:
            sold = sales.book(order)
        except sales.NotTaken:
            # A first use of the same key at the same moment may be what took the tickets.
            replayed = idempotency.replay(customer.id, key, now)
            if replayed:
                return replay(*replayed)
            if not last_try and holds.end_own_if_due(customer.id, order.event_id, now):
                continue  # the customer's own hold had expired, and no sweep had ended it yet
            try:
                refusal.explain(order)  # returns if what stood in the way came back meanwhile
            except HTTPException as refused:
                return replay(*idempotency.keep_refusal(customer.id, key, refused, now))
            if last_try:
                refusal.taken_meanwhile(order)
            continue
        except exc.IntegrityError as refused:
            return replay(*conflict(refused, customer.id, key, now))
        outbox.submit(sold.notes)
        return sold.written or load(sold.id), 201, False


def replay(booking_id, status):
    """What a repeated Idempotency-Key is answered with: (booking, status, replayed)."""
    return load(booking_id), status, True


def conflict(integrity_error, customer_id, key, now):
    """A unique index refused the sale: a first use of the same key was faster (its
    booking id and status, to replay), or the customer has a confirmed booking for this
    event already (a refusal by the rules, kept for the key as `refusal.explain`'s are)."""
    db.session.rollback()
    replayed = idempotency.replay(customer_id, key, now)
    if replayed:
        return replayed
    violated = _constraint(integrity_error)
    if "bookings" in violated:
        try:
            refusal.already_booked()
        except HTTPException as refused:
            return idempotency.keep_refusal(customer_id, key, refused, now)
    if "idempotency_keys" in violated:
        error(409, "idempotency_key_reused", "This Idempotency-Key is being used by another request, retry")
    raise integrity_error


def _constraint(integrity_error):
    """The violated constraint's name (PostgreSQL), or SQLite's message, which names the
    table ("UNIQUE constraint failed: bookings.user_id, ..."). Not PostgreSQL's message:
    its detail quotes the values, and an Idempotency-Key may say anything."""
    diag = getattr(integrity_error.orig, "diag", None)
    return (diag.constraint_name if diag is not None else None) or str(integrity_error.orig)


def load(booking_id):
    """A booking with everything its response shows (its event and the event's ticket
    types, its items, its seats), in one query."""
    return db.session.execute(
        select(Booking).where(Booking.id == booking_id).options(
            joinedload(Booking.event).joinedload(Event.ticket_types), joinedload(Booking.items),
            joinedload(Booking.seats))
        .execution_options(populate_existing=True)
    ).unique().scalar_one_or_none()


def visible(booking_id, user):
    """The booking if `user` may see it (its customer, the event's organizer, an admin);
    404 for everyone else, who need not learn that it exists."""
    booking = load(booking_id)
    if booking is None or not (
        user.role == Role.ADMIN
        or booking.user_id == user.id
        or (user.role == Role.ORGANIZER and booking.event.organizer_id == user.id)
    ):
        error(404, "not_found", "Booking not found")
    return booking


@retry_deadlocks  # an event's cancel, or a release, can lock the booking or its holds before the event
def cancel(booking_id, user):
    """Cancel a booking and return its tickets and seats, exactly once however many
    cancels race: one conditional UPDATE on the booking's status decides.

    Not once a ticket of it has been checked in (409 `already_checked_in`: its holder
    is inside; undoing the check-in comes first). The UPDATE holds the booking's row, and
    a check-in shares that row's lock (`tickets.service.check_in`), so the tickets read
    after it show every check-in that came first, and a later one sees the cancel."""
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
        first_in = db.session.scalar(select(func.min(Ticket.checked_in_at)).where(Ticket.booking_id == booking_id))
        if first_in is not None:
            db.session.rollback()
            error(409, "already_checked_in", "A ticket of this booking has been checked in, so it cannot be "
                  "cancelled (the organizer can undo the check-in)", checkedInAt=utc_text(first_in))
        inventory.give_back(event.id, counts_of(Item.booking_id == booking_id), seats=Seat.booking_id == booking_id)
        customer = db.session.get(User, booking.user_id)
        notes.append(outbox.booking_cancelled(booking, customer, event, now))
    outbox.commit(*notes)
    if cancelled:
        waitlist.offer_soon(event.id)
    return load(booking_id)


def counts_of(owner):
    """{ticket_type_id: count} of the items of one hold or booking (`owner`: a condition)."""
    return dict(db.session.execute(
        select(Item.ticket_type_id, db.func.sum(Item.count)).where(owner).group_by(Item.ticket_type_id)
    ).all())


def mine(user, event_id=None):
    """The user's bookings, newest first; of one event if `event_id` is given."""
    stmt = select(Booking).where(Booking.user_id == user.id)
    if event_id is not None:
        stmt = stmt.where(Booking.event_id == event_id)
    return stmt.order_by(Booking.created_at.desc(), Booking.id.desc())


def of_event(event_id, user):
    """An event's bookings, for its organizer or an admin (404 unknown, 403 not theirs)."""
    events.managed(event_id, user)
    # Each booking is shown with its customer: read for the whole page at once.
    return select(Booking).where(Booking.event_id == event_id).order_by(Booking.id).options(selectinload(Booking.user))
