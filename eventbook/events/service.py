"""Events: publishing, changing, cancelling (browsing is in search.py)."""

from decimal import Decimal

from sqlalchemy import delete, exists, select, update

from eventbook import inventory, waitlist
from eventbook.database import retry_deadlocks
from eventbook.errors import error, invalid, tickets
from eventbook.events.schemas import MAX_TYPES
from eventbook.extensions import db
from eventbook.models import (
    Booking,
    BookingStatus,
    EntryStatus,
    Event,
    EventStatus,
    Hold,
    HoldStatus,
    Item,
    Role,
    Seating,
    SeatRange,
    TicketType,
    WaitlistEntry,
    utcnow,
)
from eventbook.notifications import outbox


def get(event_id):
    event = db.session.get(Event, event_id)
    if event is None:
        error(404, "not_found", "Event not found")
    return event


def locked(event_id):
    """The event, its row locked until commit (`inventory.lock`); a 404 if it has been
    deleted since the request first read it."""
    event = inventory.lock(event_id)
    if event is None:
        db.session.rollback()
        error(404, "not_found", "Event not found")
    return event


def managed(event_id, user):
    """The event, if `user` is its organizer or an admin (404 unknown, 403 not theirs):
    only the organizer who owns an event, or an admin, may manage it."""
    event = get(event_id)
    if not (user.role == Role.ADMIN or (user.role == Role.ORGANIZER and event.organizer_id == user.id)):
        error(403, "forbidden", "Only the event's organizer or an admin may do this")
    return event


def ensure_open(event, now):
    """409 event_closed, the transaction rolled back, unless the event is SCHEDULED and
    has not started: what has taken place is not changed afterwards."""
    if event.status == EventStatus.CANCELLED:
        db.session.rollback()
        error(409, "event_closed", "A cancelled event cannot be changed")
    if event.date <= now:
        db.session.rollback()
        error(409, "event_closed", "This event has started: it can no longer be changed")


def create(organizer, data):
    """Publish an event with its ticket types (`new`)."""
    event = new(organizer.id, data, utcnow())
    db.session.add(event)
    db.session.commit()
    return event


def new(organizer_id, data, now):
    """A new SCHEDULED event (not yet added to the session), every ticket available, with
    its ticket types: one "General admission" type, free, of every ticket, when none are
    given."""
    data = dict(data)
    types = data.pop("ticket_types", None) or [
        {"name": "General admission", "price": Decimal("0.00"), "quantity": data["total_tickets"]}]
    event = Event(**data, available_tickets=data["total_tickets"], status=EventStatus.SCHEDULED,
                  organizer_id=organizer_id, created_at=now, updated_at=now)
    event.ticket_types = [TicketType(**ticket_type, available_quantity=ticket_type["quantity"]) for ticket_type in types]
    return event


NOTIFIED_FIELDS = ("title", "date", "location")


@retry_deadlocks
def change(event_id, user, data):
    """Apply a partial update; attendees hear about a new title, date or location. A
    larger capacity goes to the waiting list first, while anyone waits."""
    managed(event_id, user)
    event = locked(event_id)
    now = utcnow()
    ensure_open(event, now)
    data = dict(data)
    if "date" in data:
        late = sorted(kind.name for kind in event.ticket_types if kind.sales_start and kind.sales_start >= data["date"])
        if late:
            db.session.rollback()
            invalid("date", f"Must be after the sales start of every ticket type (not of {', '.join(late)}): move those first.")
    total = data.pop("total_tickets", event.total_tickets)
    grew = total > event.total_tickets
    if total != event.total_tickets:
        if event.seating == Seating.RESERVED:
            db.session.rollback()
            invalid("totalTickets", "A seated event's capacity is its seat map (PUT .../seats).")
        if not inventory.resize(event_id, total, now):
            taken = event.total_tickets - event.available_tickets - event.set_aside_tickets
            db.session.rollback()
            error(409, "capacity_below_sold", f"{tickets(taken)} already sold or held", sold=taken)
        [only, *others] = event.ticket_types
        if not others and only.quantity == event.total_tickets:  # one type of every ticket: it follows
            inventory.resize_type(only.id, event_id, total)
    changed = {name for name, value in data.items() if getattr(event, name) != value}
    was = event.title if "title" in changed else None
    for name in changed:
        setattr(event, name, data[name])
    notes = []
    if changed:
        event.updated_at = now
        if changed & set(NOTIFIED_FIELDS):
            notes.extend(outbox.event_updated(event, now, was))
    outbox.commit(*notes)
    if grew:
        waitlist.offer_soon(event_id)
    return db.session.get(Event, event_id, populate_existing=True)


@retry_deadlocks
def remove(event_id, user):
    """Delete an event nobody ever booked (with its holds, HELD ones too, and its
    waiting list); otherwise cancel it with its bookings, holds and waiting list, unless
    it has started with CONFIRMED bookings (409 event_closed: the bookings of what took
    place stand)."""
    managed(event_id, user)
    # Its HELD holds first, then the event, in the order every writer of a hold locks
    # them (a confirm, a release, a sweep): a delete racing them waits, never deadlocks,
    # and sees the booking a confirm that went first made.
    db.session.execute(select(Hold.id).where(Hold.event_id == event_id, Hold.status == HoldStatus.HELD)
                       .order_by(Hold.id).with_for_update())
    event = locked(event_id)
    if not db.session.scalar(select(exists().where(Booking.event_id == event_id))):
        holds = select(Hold.id).where(Hold.event_id == event_id).scalar_subquery()
        inventory.remove_seat_map(event_id)
        db.session.execute(delete(WaitlistEntry).where(WaitlistEntry.event_id == event_id))
        db.session.execute(delete(Item).where(Item.hold_id.in_(holds)))
        db.session.execute(delete(Hold).where(Hold.event_id == event_id))
        db.session.delete(event)
        db.session.commit()
        return
    if event.status == EventStatus.CANCELLED:  # already cancelled: nothing more to do
        db.session.rollback()
        return
    now = utcnow()
    if event.date <= now and db.session.scalar(select(exists().where(
            Booking.event_id == event_id, Booking.status == BookingStatus.CONFIRMED))):
        db.session.rollback()
        error(409, "event_closed", "This event has started: its bookings stand")
    inventory.close(event_id, now)
    db.session.execute(
        update(Booking)
        .where(Booking.event_id == event_id, Booking.status == BookingStatus.CONFIRMED)
        .values(status=BookingStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Hold).where(Hold.event_id == event_id, Hold.status == HoldStatus.HELD)
        .values(status=Hold.ended_as(HoldStatus.RELEASED, now), ended_at=now)
        .execution_options(synchronize_session=False))
    db.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.status.in_([EntryStatus.WAITING, EntryStatus.OFFERED]))
        .values(status=EntryStatus.LAPSED, updated_at=now).execution_options(synchronize_session=False))
    outbox.commit(*outbox.event_cancelled(event, now))


# -- ticket types --------------------------------------------------------------------


def ticket_type_of(event, type_id):
    ticket_type = db.session.get(TicketType, type_id)
    if ticket_type is None or ticket_type.event_id != event.id or ticket_type.removed_at is not None:
        error(404, "not_found", "Ticket type not found")
    return ticket_type


def open_to_change(event_id, user):
    """The event, locked, if `user` manages it and it is open (`ensure_open`)."""
    managed(event_id, user)
    event = locked(event_id)
    ensure_open(event, utcnow())
    return event


def _sells_before(event, sales_start):
    """422 unless a type's sales start before its event does: it could never sell."""
    if sales_start and sales_start >= event.date:
        db.session.rollback()
        invalid("salesStart", "Must be before the event's date: the type could never sell.")


def _name_free(event, name, but=None):
    taken = {ticket_type.name.casefold() for ticket_type in event.ticket_types if ticket_type.id != but}
    if name.casefold() in taken:
        db.session.rollback()
        invalid("name", "A ticket type of this event already has this name.")


@retry_deadlocks
def add_ticket_type(event_id, user, data):
    event = open_to_change(event_id, user)
    if len(event.ticket_types) >= MAX_TYPES:
        db.session.rollback()
        invalid("_schema", f"An event has at most {MAX_TYPES} ticket types.")
    _name_free(event, data["name"])
    _sells_before(event, data.get("sales_start"))  # its salesEnd is in the future: TicketTypeCreateSchema
    data = dict(data)
    if event.seating == Seating.RESERVED:  # its quantity is its seats: none until the map gives it some
        data["quantity"] = 0
    ticket_type = TicketType(event_id=event_id, available_quantity=data["quantity"], **data)
    db.session.add(ticket_type)
    event.updated_at = utcnow()
    db.session.commit()
    return ticket_type


@retry_deadlocks
def change_ticket_type(event_id, type_id, user, data):
    event = open_to_change(event_id, user)
    ticket_type = ticket_type_of(event, type_id)
    data = dict(data)
    if "name" in data:
        _name_free(event, data["name"], but=type_id)
    start, end = data.get("sales_start", ticket_type.sales_start), data.get("sales_end", ticket_type.sales_end)
    if start and end and start >= end:
        db.session.rollback()
        invalid("salesEnd", "Must be after salesStart.")
    if "sales_start" in data:
        _sells_before(event, start)
    quantity = data.pop("quantity", ticket_type.quantity)
    grew = quantity > ticket_type.quantity
    if quantity != ticket_type.quantity:
        if event.seating == Seating.RESERVED:
            db.session.rollback()
            invalid("quantity", "A seated event's quantities are its seat map (PUT .../seats).")
        if not inventory.resize_type(type_id, event_id, quantity):
            taken = ticket_type.quantity - ticket_type.available_quantity - ticket_type.set_aside
            db.session.rollback()
            error(409, "capacity_below_sold", f"{tickets(taken)} of this type already sold or held", sold=taken)
    for name, value in data.items():
        setattr(ticket_type, name, value)
    event.updated_at = utcnow()
    db.session.commit()
    if grew:
        waitlist.offer_soon(event_id)
    return db.session.get(TicketType, type_id, populate_existing=True)


@retry_deadlocks
def remove_ticket_type(event_id, type_id, user):
    """Delete a type nothing is sold, held or set aside of now, and that has no seats.
    One that past bookings, holds or waiting-list entries name stays their history,
    removed from the event's types with no tickets left; its WAITING entries lapse."""
    event = open_to_change(event_id, user)
    ticket_type = ticket_type_of(event, type_id)
    if ticket_type.available_quantity != ticket_type.quantity:
        db.session.rollback()
        error(409, "capacity_below_sold", "Tickets of this type are sold, held or set aside for its waiting list: "
                                          "it cannot be deleted")
    if db.session.scalar(select(exists().where(SeatRange.event_id == event_id, SeatRange.ticket_type_id == type_id))):
        db.session.rollback()
        error(409, "capacity_below_sold", "Seats of the seat map have this type: it cannot be deleted")
    if len(event.ticket_types) == 1:
        db.session.rollback()
        error(409, "capacity_below_sold", "An event keeps at least one ticket type")
    now = utcnow()
    if db.session.scalar(select(exists().where(Item.ticket_type_id == type_id)
                                | exists().where(WaitlistEntry.ticket_type_id == type_id))):
        inventory.retire_type(type_id, now)
        lapsed = db.session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.ticket_type_id == type_id, WaitlistEntry.status == EntryStatus.WAITING)
            .values(status=EntryStatus.LAPSED, updated_at=now).execution_options(synchronize_session=False)).rowcount
    else:
        db.session.delete(ticket_type)
        lapsed = 0
    event.updated_at = now
    db.session.commit()
    if lapsed:  # what was set aside for the line may now go to the next in it, or to the public
        waitlist.offer_soon(event_id)
