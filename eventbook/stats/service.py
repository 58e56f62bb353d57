"""Counting, in the database: an event's figures in one statement (one snapshot, so
that capacity - available - set aside == sold + held holds in what it answers), and
the system's for admins. Money is summed as NUMERIC and comes back as Decimal."""

from decimal import Decimal

from sqlalchemy import Numeric, and_, func, select, type_coerce

from eventbook.events.service import managed
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
    Notification,
    NotificationStatus,
    Role,
    Ticket,
    TicketType,
    User,
    WaitlistEntry,
    utcnow,
)
from eventbook.notifications import outbox

SUM = Numeric(20, 2, asdecimal=True)  # wider than a column: a sum of many Numeric(12, 2)
ZERO = Decimal("0.00")


def _money(expression):
    return type_coerce(func.coalesce(func.sum(expression), 0), SUM)


def event_stats(event_id, user):
    """The figures of one event and of each of its ticket types, for its organizer or an
    admin (404 unknown, 403 not theirs)."""
    type_ids = {ticket_type.id for ticket_type in managed(event_id, user).ticket_types}
    while True:
        rows = _figures(event_id, type_ids)
        shown = {row.type_id for row in rows if row.type_id is not None}
        if shown <= type_ids:
            break
        type_ids = shown  # a type added since they were read: counted again, with it
    by_type = [
        {"ticket_type_id": type_id, "name": name, "sold": sold, "held": held, "available": available,
         "checked_in": checked, "revenue": revenue}
        for *_, type_id, name, available, sold, held, revenue, checked in rows
        if type_id is not None
    ]
    capacity, available, set_aside, currency, waiting = rows[0][:5]
    return {
        "capacity": capacity, "available": available, "set_aside": set_aside, "currency": currency,
        **{name: sum(entry[name] for entry in by_type) for name in ("sold", "held", "checked_in")},
        "revenue": sum((entry["revenue"] for entry in by_type), ZERO),
        "by_type": by_type,
        "waiting": waiting,
    }


def _figures(event_id, type_ids):
    """The event's row for each of its ticket types on offer, with their figures. Items
    and tickets are read by the ids of the types they are of (`type_ids`, the types on
    offer): the planner then estimates each type's rows from its statistics and reads
    them from an index, where from the event's bookings it read the whole tables."""
    confirmed = (Booking.event_id == event_id, Booking.status == BookingStatus.CONFIRMED)
    type_ids = sorted(type_ids)
    sold = (
        select(Item.ticket_type_id, func.sum(Item.count).label("sold"), _money(Item.count * Item.unit_price)
               .label("revenue"))
        .join(Booking, Booking.id == Item.booking_id).where(Item.ticket_type_id.in_(type_ids), *confirmed)
        .group_by(Item.ticket_type_id).subquery("sold")
    )
    held = (
        select(Item.ticket_type_id, func.sum(Item.count).label("held"))
        .join(Hold, Hold.id == Item.hold_id).where(Hold.event_id == event_id, Hold.status == HoldStatus.HELD)
        .group_by(Item.ticket_type_id).subquery("held")
    )
    checked_in = (
        select(Ticket.ticket_type_id, func.count().label("checked_in"))
        .join(Booking, Booking.id == Ticket.booking_id)
        .where(Ticket.ticket_type_id.in_(type_ids), Ticket.checked_in_at.is_not(None), *confirmed)
        .group_by(Ticket.ticket_type_id).subquery("checked_in")
    )
    waiting = select(func.count()).where(
        WaitlistEntry.event_id == event_id, WaitlistEntry.status == EntryStatus.WAITING).scalar_subquery()
    return db.session.execute(
        select(Event.total_tickets, Event.available_tickets, Event.set_aside_tickets, Event.currency,
               waiting.label("waiting"), TicketType.id.label("type_id"), TicketType.name, TicketType.available_quantity,
               func.coalesce(sold.c.sold, 0), func.coalesce(held.c.held, 0),
               type_coerce(func.coalesce(sold.c.revenue, 0), SUM), func.coalesce(checked_in.c.checked_in, 0))
        .select_from(Event)
        .outerjoin(TicketType, and_(TicketType.event_id == Event.id, TicketType.removed_at.is_(None)))
        .outerjoin(sold, sold.c.ticket_type_id == TicketType.id)
        .outerjoin(held, held.c.ticket_type_id == TicketType.id)
        .outerjoin(checked_in, checked_in.c.ticket_type_id == TicketType.id)
        .where(Event.id == event_id)
        .order_by(TicketType.id)
    ).all()


def _by(column, known, *where):
    """{value: count} of a column, every known value present (0 when none)."""
    found = dict(db.session.execute(select(column, func.count()).where(*where).group_by(column)).all())
    return {**dict.fromkeys(known, 0), **found}


def admin_stats():
    confirmed = Booking.status == BookingStatus.CONFIRMED
    bookings, tickets = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Booking.tickets_count), 0)).where(confirmed)).one()
    revenue = db.session.execute(
        select(Event.currency, _money(Booking.total_amount)).join(Event, Event.id == Booking.event_id)
        .where(confirmed).group_by(Event.currency).order_by(Event.currency)
    ).all()
    return {
        "users_by_role": _by(User.role, Role.ALL),
        "events_by_status": _by(Event.status, EventStatus.ALL),
        "bookings": bookings,
        "tickets_sold": tickets,
        "revenue_by_currency": dict(revenue),
        "active_holds": db.session.scalar(
            select(func.count()).where(Hold.status == HoldStatus.HELD, Hold.expires_at > utcnow())),
        "waiting_entries": db.session.scalar(
            select(func.count()).where(WaitlistEntry.status == EntryStatus.WAITING)),
        "notifications_by_status": _by(Notification.status, NotificationStatus.ALL, outbox.EMAILS),
    }
