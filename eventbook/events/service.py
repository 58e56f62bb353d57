"""Events: publishing, changing, cancelling (browsing is in search.py)."""

from sqlalchemy import exists, select, update

from eventbook import inventory
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import Booking, BookingStatus, Event, EventStatus, Role, utcnow
from eventbook.notifications import outbox


def get(event_id):
    event = db.session.get(Event, event_id)
    if event is None:
        error(404, "not_found", "Event not found")
    return event


def ensure_manager(event, user):
    """Only the organizer who owns the event, or an admin, may manage it."""
    if not (user.role == Role.ADMIN or (user.role == Role.ORGANIZER and event.organizer_id == user.id)):
        error(403, "forbidden", "Only the event's organizer or an admin may do this")


def create(organizer, data):
    now = utcnow()
    event = Event(
        **data,
        available_tickets=data["total_tickets"],
        status=EventStatus.SCHEDULED,
        organizer_id=organizer.id,
        created_at=now,
        updated_at=now,
    )
    db.session.add(event)
    db.session.commit()
    return event


NOTIFIED_FIELDS = ("title", "date", "location")


def change(event_id, user, data):
    """Apply a partial update; attendees hear about a new title, date or location."""
    ensure_manager(get(event_id), user)
    event = inventory.lock(event_id)
    if event is None:
        error(404, "not_found", "Event not found")
    if event.status == EventStatus.CANCELLED:
        db.session.rollback()
        error(409, "event_closed", "A cancelled event cannot be changed")
    now = utcnow()
    if "total_tickets" in data and data["total_tickets"] != event.total_tickets:
        if inventory.resize(event_id, data.pop("total_tickets"), now) is None:
            sold = event.total_tickets - event.available_tickets
            db.session.rollback()
            error(409, "capacity_below_sold", f"{sold} tickets are already sold", sold=sold)
    data.pop("total_tickets", None)
    changed = {name for name, value in data.items() if getattr(event, name) != value}
    for name in changed:
        setattr(event, name, data[name])
    notes = []
    if changed:
        event.updated_at = now
        if changed & set(NOTIFIED_FIELDS):
            notes.append(outbox.event_updated(event, now))
    outbox.commit(*notes)
    return event


def remove(event_id, user):
    """Delete an event nobody ever booked; otherwise cancel it and all its bookings."""
    ensure_manager(get(event_id), user)
    event = inventory.lock(event_id)
    if event is None:
        error(404, "not_found", "Event not found")
    ever_booked = db.session.scalar(select(exists().where(Booking.event_id == event_id)))
    if not ever_booked:
        db.session.delete(event)
        db.session.commit()
        return
    if event.status == EventStatus.CANCELLED:  # already cancelled: nothing more to do
        db.session.rollback()
        return
    now = utcnow()
    inventory.close(event_id, now)
    db.session.execute(
        update(Booking)
        .where(Booking.event_id == event_id, Booking.status == BookingStatus.CONFIRMED)
        .values(status=BookingStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    outbox.commit(outbox.event_cancelled(event, now))
