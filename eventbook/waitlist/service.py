"""Joining, leaving and reading waiting lists, and making offers in queue order.

An offer is a hold for the first customer in line, taken from the tickets set aside
for the list (then from free ones), with a WAITLIST_OFFER notification, in one
transaction under the event's row lock: offers for one event are made one at a time,
by whichever process gets there first.
"""

from datetime import timedelta

from flask import current_app
from sqlalchemy import exc, exists, func, insert, literal_column, or_, select, union, update
from sqlalchemy.orm import selectinload, with_expression

from eventbook import inventory, sales, waitlist
from eventbook.auth import service as auth
from eventbook.database import begin_write, retry_deadlocks
from eventbook.errors import error, invalid, tickets
from eventbook.events.service import get, locked, managed
from eventbook.extensions import db
from eventbook.holds import service as holds
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
    TicketType,
    User,
    WaitlistEntry,
    utcnow,
)
from eventbook.notifications import outbox
from eventbook.pagination import paginate
from eventbook.sales import refusal

LIVE = (EntryStatus.WAITING, EntryStatus.OFFERED)


@retry_deadlocks
def join(event_id, customer, data):
    get(event_id)
    now = utcnow()
    holds.end_own_if_due(customer.id, event_id, now)  # before the event's lock: a hold is locked first
    sales.one_order_at_a_time(customer.id, event_id)  # a booking or hold sent with this join: it first, then these checks
    _not_disabled(customer.id)
    event = locked(event_id)
    if event.status != EventStatus.SCHEDULED or event.date <= now:
        db.session.rollback()
        refusal.closed(event, now)
    if event.seating == Seating.RESERVED:
        db.session.rollback()
        invalid("_schema", "Seated events have no waiting list: pick free seats on the seat map.")
    ticket_type = _type_of(event, data.get("ticket_type_id"))
    count = data["tickets_count"]
    if not ticket_type.on_sale(now):
        db.session.rollback()
        refusal.sales_closed(ticket_type)
    available = min(event.available_tickets, ticket_type.available_quantity)
    if available >= count:
        db.session.rollback()
        error(409, "tickets_available", f"{tickets(available)} available now: book instead of waiting",
              availableTickets=available)
    _not_served_already(event_id, customer.id)
    try:
        entry = db.session.scalar(insert(WaitlistEntry).values(
            event_id=event_id, user_id=customer.id, ticket_type_id=ticket_type.id, tickets_count=count,
            status=EntryStatus.WAITING, created_at=now, updated_at=now).returning(WaitlistEntry))
        db.session.commit()
    except exc.IntegrityError:
        db.session.rollback()
        error(409, "already_waiting", "You are on this event's waiting list already")
    waitlist.offer_soon(event_id)  # tickets may be set aside already
    return db.session.scalar(placed(event_id).where(WaitlistEntry.id == entry.id))


def _not_disabled(customer_id):
    """Refuse a customer disabled since their token was checked. A disable being written
    waits for this join (a share lock on the user's row; on SQLite the write lock, taken
    now), then takes its entry off the list with the others (`admin.service.change`)."""
    begin_write()
    if auth.disabled_now(customer_id):
        db.session.rollback()
        error(401, "unauthorized", "Account is disabled")


def _type_of(event, type_id):
    types = {ticket_type.id: ticket_type for ticket_type in event.ticket_types}
    if type_id is None:
        if len(types) != 1:
            db.session.rollback()
            invalid("ticketTypeId", "This event has several ticket types: say which one.")
        return next(iter(types.values()))
    if type_id not in types:
        db.session.rollback()
        error(404, "not_found", f"Ticket type {type_id} not found (not a ticket type of this event)")
    return types[type_id]


def _not_served_already(event_id, customer_id):
    if db.session.scalar(select(Booking.id).where(Booking.event_id == event_id, Booking.user_id == customer_id,
                                                  Booking.status == BookingStatus.CONFIRMED)):
        db.session.rollback()
        refusal.already_booked()
    held = db.session.scalar(select(Hold.id).where(Hold.event_id == event_id, Hold.user_id == customer_id,
                                                   Hold.status == HoldStatus.HELD))
    if held:
        db.session.rollback()
        refusal.already_holding(held)


def placed(event_id):
    """A select of the event's entries, each with its `position` (1 for the first in
    line; None unless WAITING) read by the same statement: an entry and its place are of
    one moment, so an offer or a leave committed meanwhile never makes a WAITING entry
    counted out of its own line."""
    line = (select(WaitlistEntry.id, func.row_number().over(order_by=WaitlistEntry.id).label("position"))
            .where(WaitlistEntry.event_id == event_id, WaitlistEntry.status == EntryStatus.WAITING)
            .subquery())
    return (select(WaitlistEntry).outerjoin(line, line.c.id == WaitlistEntry.id)
            .where(WaitlistEntry.event_id == event_id)
            .options(with_expression(WaitlistEntry.position, line.c.position))
            .execution_options(populate_existing=True))


def mine(event_id, customer):
    get(event_id)
    entry = db.session.scalar(
        placed(event_id).where(WaitlistEntry.user_id == customer.id, WaitlistEntry.status != EntryStatus.LEFT)
        .order_by(WaitlistEntry.id.desc()).limit(1))
    if entry is None:
        error(404, "not_found", "You are not on this event's waiting list")
    return entry


def leave(event_id, customer):
    """Leave the list (LEFT); an offer made ends in the same transaction (released, or
    expired once past its expiry: `holds.end`), its tickets going to the next in line."""
    get(event_id)
    _leave(event_id, customer.id)


def leave_all(customer_id):
    """Take a customer (a disabled account) off every list they wait on, one event at a
    time, as their own leaves would: an offer made to them goes on to the next in line."""
    events = db.session.scalars(
        select(WaitlistEntry.event_id).where(WaitlistEntry.user_id == customer_id, WaitlistEntry.status.in_(LIVE))
        .order_by(WaitlistEntry.event_id)
    ).all()
    db.session.rollback()
    for event_id in events:
        _leave(event_id, customer_id)


@retry_deadlocks
def _leave(event_id, customer_id):
    """Take the customer's live entry off the event's list, in their turn for it."""
    now = utcnow()
    # The customer's turn first: a confirm or release of the offer locks the hold before
    # the entry, this the entry before the hold; taking turns, they never deadlock.
    sales.one_order_at_a_time(customer_id, event_id)
    # One conditional UPDATE decides, and names the offer as it is when the entry's row
    # is locked: an offer made while this request ran is released too (an offer never
    # goes to an entry that has left: `_offer_to`).
    left = db.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.user_id == customer_id,
               WaitlistEntry.status.in_(LIVE))
        .values(status=EntryStatus.LEFT, updated_at=now)
        .returning(WaitlistEntry.hold_id)
    ).all()
    offers = [hold_id for (hold_id,) in left if hold_id is not None]
    if offers:
        holds.end(offers, HoldStatus.RELEASED, now)  # commits; the entry is LEFT, not lapsed
    db.session.commit()
    if left:
        waitlist.offer_soon(event_id)


def queue(event_id, user, args):
    managed(event_id, user)
    statement = placed(event_id).order_by(WaitlistEntry.id) \
        .options(selectinload(WaitlistEntry.user))  # each entry is shown with its customer: read for the page at once
    return paginate(statement, args, WaitlistEntry)


# -- offers ----------------------------------------------------------------------------


@retry_deadlocks
def offer(event_id):
    """Offer what is set aside for `event_id` to its waiting list, first in line first,
    as long as it covers the first entry; then tickets set aside for nobody go back to
    the public. Once the event has started, no offer is made: its queue lapses, and all
    it had set aside goes back (unsold). How many offers were made."""
    made = 0
    while True:
        event = inventory.lock(event_id)
        now = utcnow()
        if event is None or event.status != EventStatus.SCHEDULED:
            db.session.rollback()
            return made
        if event.date <= now:
            _close(event_id, now)
            db.session.commit()
            return made
        if (event.set_aside_tickets or any(kind.set_aside for kind in event.ticket_types)) \
                and _lapse_never_served(event, now):
            db.session.commit()  # entries that would hold what is set aside up for good
            continue
        # First in line: the first WAITING entry whose type is on sale and has tickets.
        # One whose type is not on sale yet is passed over, and what is set aside for
        # it stays set aside (`set_aside_to_public`) until its type's sales open.
        head = db.session.scalar(
            select(WaitlistEntry).where(WaitlistEntry.event_id == event_id, WaitlistEntry.status == EntryStatus.WAITING,
                                        inventory.type_has_tickets(on_sale_now=True))
            .order_by(WaitlistEntry.id).limit(1), {"now": now})
        if head is not None and _lapse_if_no_longer_a_customer(head, now):
            db.session.commit()
            continue
        if head is not None and not sales.one_order_at_a_time(head.user_id, event_id, wait=False):
            db.session.rollback()  # the customer is booking or holding it: the next pass offers, or not
            return made
        if head is None or not inventory.take_for_offer(event_id, head.ticket_type_id, head.tickets_count):
            db.session.rollback()
            inventory.lock(event_id)
            inventory.set_aside_to_public(event_id)
            db.session.commit()
            return made
        note = _offer_to(head, event, now)
        if note is None:  # the entry left meanwhile: nothing of this offer stays
            db.session.rollback()
            continue
        outbox.commit(note)
        made += 1


def _lapse_never_served(event, now):
    """The event's WAITING entries that no offer can serve any more (their type's sales
    are over, or they ask for more than the event or their type has) become LAPSED:
    how many."""
    never = exists().where(
        TicketType.id == WaitlistEntry.ticket_type_id,
        or_(TicketType.sales_end <= now, WaitlistEntry.tickets_count > TicketType.quantity,
            WaitlistEntry.tickets_count > event.total_tickets))
    return db.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.event_id == event.id, WaitlistEntry.status == EntryStatus.WAITING, never)
        .values(status=EntryStatus.LAPSED, updated_at=now)
    ).rowcount


def _lapse_if_no_longer_a_customer(entry, now):
    """LAPSED, if its customer is disabled or no longer a customer (since an earlier
    release, which left their places in line, or between the change and its clean-up):
    whether it was."""
    if db.session.scalar(select(User.id).where(User.id == entry.user_id, User.role == Role.CUSTOMER,
                                               User.disabled.is_(False))):
        return False
    db.session.execute(
        update(WaitlistEntry).where(WaitlistEntry.id == entry.id, WaitlistEntry.status == EntryStatus.WAITING)
        .values(status=EntryStatus.LAPSED, updated_at=now))
    return True


def _close(event_id, now):
    """The list of `event_id`, which has started (its row locked by the caller): its
    WAITING entries, which no offer can serve any more, become LAPSED, and what it set
    aside goes back to the public, in the caller's transaction. How many lapsed."""
    lapsed = db.session.execute(
        update(WaitlistEntry).where(WaitlistEntry.event_id == event_id, WaitlistEntry.status == EntryStatus.WAITING)
        .values(status=EntryStatus.LAPSED, updated_at=now)
    ).rowcount
    inventory.set_aside_to_public(event_id)
    return lapsed


def close_started(now):
    """The waiting lists of events that have started and still have WAITING entries
    close (`_close`), an event at a time under its lock: how many entries lapsed."""
    started = db.session.scalars(
        select(WaitlistEntry.event_id).distinct()
        .join(Event, Event.id == WaitlistEntry.event_id)
        .where(WaitlistEntry.status == EntryStatus.WAITING, Event.date <= now)
    ).all()
    db.session.rollback()  # ends the read: each event is locked in a transaction of its own
    return sum(_close_started_event(event_id, now) for event_id in started)


@retry_deadlocks
def _close_started_event(event_id, now):
    event = inventory.lock(event_id)
    if event is None or event.status != EventStatus.SCHEDULED:  # removed or cancelled meanwhile
        db.session.rollback()
        return 0
    lapsed = _close(event_id, now)
    db.session.commit()
    return lapsed


def _offer_to(entry, event, now):
    """The hold offered to `entry`'s customer, the entry OFFERED, the notification; None
    if the entry is no longer WAITING (its customer left while the offer was made)."""
    price = db.session.scalar(select(TicketType.price).where(TicketType.id == entry.ticket_type_id))
    expires_at = now + timedelta(seconds=current_app.config["WAITLIST_OFFER_SECONDS"])
    offered = db.session.scalar(insert(Hold).values(
        event_id=event.id, user_id=entry.user_id, tickets_count=entry.tickets_count,
        total_amount=price * entry.tickets_count, status=HoldStatus.HELD, expires_at=expires_at,
        created_at=now).returning(Hold))
    db.session.execute(insert(Item).values(hold_id=offered.id, ticket_type_id=entry.ticket_type_id,
                                           count=entry.tickets_count, unit_price=price))
    taken = db.session.execute(
        update(WaitlistEntry).where(WaitlistEntry.id == entry.id, WaitlistEntry.status == EntryStatus.WAITING)
        .values(status=EntryStatus.OFFERED, hold_id=offered.id, updated_at=now)
    ).rowcount
    if not taken:
        return None
    return outbox.waitlist_offer(offered, db.session.get(User, entry.user_id), event, now)


def events_to_offer():
    """Scheduled events with tickets set aside, by a type or by the event itself (a
    ticket of another type comes back while someone waits): the sweeper's periodic pass
    offers them, or gives them back to the public once nobody waits for them or the
    event has started."""
    # Two lookups in the partial indexes of what is set aside (their predicates as written
    # there, with a literal 0: SQLite uses a partial index only for the same constant).
    zero = literal_column("0")
    by_the_event = select(Event.id).where(Event.set_aside_tickets > zero, Event.status == EventStatus.SCHEDULED)
    by_a_type = select(Event.id).join(TicketType, TicketType.event_id == Event.id) \
        .where(TicketType.set_aside > zero, Event.status == EventStatus.SCHEDULED)
    return db.session.scalars(union(by_the_event, by_a_type)).all()
