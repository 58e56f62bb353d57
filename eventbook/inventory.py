"""The only code that writes the ticket counters: `events.available_tickets` and
`set_aside_tickets`, `ticket_types.available_quantity` and `set_aside`, and the status
of seats.

Every change is a conditional UPDATE whose WHERE clause states the rule, so the
database decides, under its row lock, whether it holds: nothing is read first and
written after. A take that finds no row took nothing. (A seat map is written as its
ranges, and a seat gets its row the first time it is asked for, AVAILABLE: then the
UPDATE takes it, as any other.)

Writers take their locks in one order, so that writers of one event queue up instead of
deadlocking: the hold row (when one changes state), then the event, then the booking
that changes state (a cancel), then the event's ticket types, then its seats, then
waiting-list entries. Every change of a type's or a seat's counters also writes its
event row first. Where writers can still cross, `eventbook.database.retry_deadlocks`
runs the database's deadlock victim again (up to three tries).
On SQLite the whole database is the lock (write transactions begin IMMEDIATE).
"""

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from eventbook.database import begin_write
from eventbook.extensions import db
from eventbook.models import (
    SEATS_PER_RANGE,
    EntryStatus,
    Event,
    EventStatus,
    Seat,
    Seating,
    SeatRange,
    SeatStatus,
    TicketType,
    UTCDateTime,
    WaitlistEntry,
)

_events, _types, _seats, _entries = Event.__table__, TicketType.__table__, Seat.__table__, WaitlistEntry.__table__
_ranges = SeatRange.__table__
_NOW = bindparam("now", type_=UTCDateTime())


# -- taking: statements that the sales strategies run (eventbook.sales) --------------


def take_event():
    """Take `:tickets` of the scheduled, future `:event` if it has them for the public,
    and if it sells what the order asks for: seats on a RESERVED event (`:seat_changes`
    1: the seat map's version moves too), counts on a GENERAL one (0)."""
    seat_changes = bindparam("seat_changes", type_=Integer)
    return (
        update(_events)
        .where(
            _events.c.id == bindparam("event", type_=Integer),
            _events.c.available_tickets >= bindparam("tickets", type_=Integer),
            *scheduled_ahead(_NOW),
            _events.c.seating == case((seat_changes == 1, Seating.RESERVED), else_=Seating.GENERAL),
        )
        .values(
            available_tickets=_events.c.available_tickets - bindparam("tickets", type_=Integer),
            seats_version=_events.c.seats_version + seat_changes,
        )
        .returning(*_events.c)
    )


def scheduled_ahead(now):
    """SQL conditions on an events row: scheduled, and not started by `now`."""
    return _events.c.status == EventStatus.SCHEDULED, _events.c.date > now


def on_sale_event(event_id, now=_NOW):
    """SQL: the event `event_id` (a column or a value) is on sale: what a hold's confirm
    asks of it, as taking asks it of the event's row."""
    return exists().where(_events.c.id == event_id, *scheduled_ahead(now))


def take_types(wanted):
    """Take from each ticket type of `:event` the `count` that `wanted` (a selectable
    of ticket_type_id, count) asks, where the type has them and is on sale: one row
    back per type taken (its id, price and what is left of it)."""
    return (
        update(_types)
        .where(
            _types.c.id == wanted.c.ticket_type_id,
            _types.c.event_id == bindparam("event", type_=Integer),
            _types.c.available_quantity >= wanted.c.count,
            on_sale(_types),
        )
        .values(available_quantity=_types.c.available_quantity - wanted.c.count)
        .returning(_types.c.id, _types.c.price, _types.c.available_quantity)
    )


def on_sale(types):
    """SQL: within its sales window, and not removed (a removed type has no tickets to
    take either: this says it where tickets are taken)."""
    return and_(types.c.removed_at.is_(None),
                or_(types.c.sales_start.is_(None), types.c.sales_start <= _NOW),
                or_(types.c.sales_end.is_(None), types.c.sales_end > _NOW))


def seats_named(asked):
    """SQL: the seats of `:event`'s map whose ids the column `asked` lists, as the rows
    they have or would have: (id, range_id, event_id, ticket_type_id, section, row,
    number, position). An id that is no seat of the event's map gives none."""
    ranges = _ranges.c
    offset = asked - ranges.first_seat_id
    # the range whose first seat is at most `asked` and less than a range's ids before it
    # (SEATS_PER_RANGE: one entry or two of the event's index, whatever its map)
    return select(
        asked.label("id"), ranges.id.label("range_id"), ranges.event_id, ranges.ticket_type_id, ranges.section,
        ranges.row, (ranges.first_number + offset).label("number"), (ranges.position + offset).label("position"),
    ).where(
        ranges.event_id == bindparam("event", type_=Integer),
        ranges.first_seat_id.between(asked - (SEATS_PER_RANGE - 1), asked),
        asked <= ranges.first_seat_id + ranges.last_number - ranges.first_number,
    )


def add_seat_rows(asked, dialect):
    """Write the row of each seat that `seats_named(asked)` finds and that has none yet,
    AVAILABLE, in ascending id order (two writers that both add rows wait for each
    other's in one order); a seat that has its row keeps it as it is. For a `dialect`
    (its name), whose INSERT says "unless it exists"."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = seats_named(asked).add_columns(literal(SeatStatus.AVAILABLE).label("status")).order_by(asked)
    return dialect_insert(_seats).from_select(
        ["id", "range_id", "event_id", "ticket_type_id", "section", "row", "number", "position", "status"], rows,
    ).on_conflict_do_nothing(index_elements=[_seats.c.id])


def listed(seat_ids):
    """The column of `seat_ids` (a list), for `seats_named`."""
    return union_all(*(select(literal(seat_id, BigInteger).label("id")) for seat_id in seat_ids)).subquery("asked").c.id


def seats_of(event_id, seat_ids):
    """The seats of the event's map among `seat_ids`, read now: (id, ticket_type_id,
    status) each, AVAILABLE for a seat without a row."""
    named = seats_named(listed(seat_ids)).subquery("named")
    return db.session.execute(
        select(named.c.id, named.c.ticket_type_id, func.coalesce(_seats.c.status, SeatStatus.AVAILABLE).label("status"))
        .select_from(named.outerjoin(_seats, _seats.c.id == named.c.id)),
        {"event": event_id},
    ).all()


def take_seats(status, asked=None, **owner):
    """Mark the seats of `:event` that are asked for (`asked`: a condition on the seats
    table; `:seat_ids` by default) and AVAILABLE as `status` (HELD or BOOKED) for `owner`
    (hold_id= or booking_id=, a value or a column): one row back per seat taken."""
    return (
        update(_seats)
        .where(
            _seats.c.id.in_(bindparam("seat_ids", expanding=True)) if asked is None else asked,
            _seats.c.event_id == bindparam("event", type_=Integer),
            _seats.c.status == SeatStatus.AVAILABLE,
        )
        .values(status=status, **owner)
        .returning(_seats.c.id, _seats.c.ticket_type_id, _seats.c.section, _seats.c.row, _seats.c.number,
                   _seats.c.position)
    )


def book_held_seats(hold_id, booking_id):
    """Turn the seats of a hold being confirmed from HELD to BOOKED for its booking
    (`hold_id`, `booking_id`: values or columns): one row back per seat."""
    return (
        update(_seats)
        .where(_seats.c.hold_id == hold_id, _seats.c.status == SeatStatus.HELD)
        .values(status=SeatStatus.BOOKED, booking_id=booking_id)
        .returning(_seats.c.id, _seats.c.ticket_type_id)
    )


# -- giving back -----------------------------------------------------------------------


def waiting(event_id, ticket_type_id=None):
    """SQL: someone is WAITING on this event's list (for this type, when given)."""
    conditions = [_entries.c.event_id == event_id, _entries.c.status == EntryStatus.WAITING]
    if ticket_type_id is not None:
        conditions.append(_entries.c.ticket_type_id == ticket_type_id)
    return exists().where(*conditions)


def give_back(event_id, counts, seats=None):
    """Return tickets to an event and its types (`counts`: ticket_type_id -> count), in
    the caller's transaction, and the seats that `seats` (a condition on the seats
    table: those of a booking, of holds) selects. While anyone waits, the tickets are
    set aside for the waiting list instead of going back to the public
    (`eventbook.waitlist` offers them; only general-admission events have a list)."""
    total = sum(counts.values())
    someone_waits = waiting(event_id)
    values = {
        "available_tickets": _events.c.available_tickets + _unless(someone_waits, total),
        "set_aside_tickets": _events.c.set_aside_tickets + _when(someone_waits, total),
    }
    if seats is not None:
        values["seats_version"] = _events.c.seats_version + _when(exists().where(seats), 1)
    db.session.execute(update(_events).where(_events.c.id == event_id).values(**values))
    for type_id, count in sorted(counts.items()):
        waits_for_it = waiting(event_id, type_id)
        db.session.execute(
            update(_types)
            .where(_types.c.id == type_id)
            .values(available_quantity=_types.c.available_quantity + _unless(waits_for_it, count),
                    set_aside=_types.c.set_aside + _when(waits_for_it, count))
        )
    if seats is not None:
        db.session.execute(update(_seats).where(seats)
                           .values(status=SeatStatus.AVAILABLE, hold_id=None, booking_id=None))


def give_back_all(returned, ended_seats):
    """`give_back` for many events at once, as three UPDATEs for one data-modifying WITH
    (PostgreSQL's sweep: `eventbook.sales.postgresql`): `returned` is a CTE of
    (event_id, ticket_type_id, count), the tickets that come back, and `ended_seats` a
    condition on the seats table, the seats to free. The events first, locked in id order
    (two sweepers never wait on each other's events crosswise), then their types, then
    the seats, each running only once the step before it has run whole: the lock order.
    Returns the three UPDATE CTEs, the last one's rows the seats freed."""
    locked = (select(_events.c.id).where(_events.c.id.in_(select(returned.c.event_id)))
              .order_by(_events.c.id).with_for_update(key_share=True).cte("locked"))
    per_event = (select(returned.c.event_id, func.sum(returned.c["count"]).label("count"))
                 .where(after(locked)).group_by(returned.c.event_id).cte("per_event"))
    # Who waits on these events, read once: asked per event and type, PostgreSQL's plan
    # for a waiting list of one event can scan the whole table for each of the others.
    waits = (select(_entries.c.event_id, _entries.c.ticket_type_id).distinct()
             .where(_entries.c.status == EntryStatus.WAITING, _entries.c.event_id.in_(select(per_event.c.event_id)))
             .cte("waits"))
    someone_waits = exists().where(waits.c.event_id == per_event.c.event_id)
    events = (
        update(_events)
        .where(_events.c.id == per_event.c.event_id)
        .values(available_tickets=_events.c.available_tickets + _unless(someone_waits, per_event.c["count"]),
                set_aside_tickets=_events.c.set_aside_tickets + _when(someone_waits, per_event.c["count"]),
                seats_version=_events.c.seats_version
                + _when(exists().where(ended_seats, _seats.c.event_id == _events.c.id), 1))
        .returning(_events.c.id)
        .cte("given_events")
    )
    waits_for_it = exists().where(waits.c.event_id == returned.c.event_id,
                                  waits.c.ticket_type_id == returned.c.ticket_type_id)
    types = (
        update(_types)
        .where(_types.c.id == returned.c.ticket_type_id, after(events))
        .values(available_quantity=_types.c.available_quantity + _unless(waits_for_it, returned.c["count"]),
                set_aside=_types.c.set_aside + _when(waits_for_it, returned.c["count"]))
        .returning(_types.c.id)
        .cte("given_types")
    )
    seats = (
        update(_seats)
        .where(ended_seats, after(types))
        .values(status=SeatStatus.AVAILABLE, hold_id=null(), booking_id=null())
        .returning(_seats.c.id)
        .cte("freed_seats")
    )
    return events, types, seats


def after(step):
    """A condition that is always true, and that PostgreSQL evaluates first, once, by
    running `step` (a CTE) whole: what follows it in a statement comes after it."""
    return select(func.count()).select_from(step).scalar_subquery() >= 0


def _when(condition, count):
    """SQL: `count` (a number, or an expression on the row being updated) when
    `condition` holds, else 0."""
    return case((condition, count), else_=0)


def _unless(condition, count):
    return count - _when(condition, count)


def set_aside_to_public(event_id):
    """Tickets set aside for nobody go back to the public: a type's when no one is
    WAITING for it any more; the event's when no one WAITING could take them: when
    nobody waits whose type has tickets (`type_has_tickets`), on sale or not yet."""
    db.session.execute(
        update(_types)
        .where(_types.c.event_id == event_id, _types.c.set_aside > 0, ~waiting(event_id, _types.c.id))
        .values(available_quantity=_types.c.available_quantity + _types.c.set_aside, set_aside=0)
    )
    served = exists().where(_entries.c.event_id == event_id, _entries.c.status == EntryStatus.WAITING,
                            type_has_tickets())
    db.session.execute(
        update(_events)
        .where(_events.c.id == event_id, _events.c.set_aside_tickets > 0, ~served)
        .values(available_tickets=_events.c.available_tickets + _events.c.set_aside_tickets, set_aside_tickets=0)
    )


def type_has_tickets(on_sale_now=False):
    """SQL, on a waiting-list entry: its ticket type has tickets, free or set aside for
    the list (and, with `on_sale_now`, is on sale at `:now`). An entry whose type has none waits for
    its type's own tickets to come back: tickets of other types that come back
    meanwhile are of no use to it, and go to the next in line or to the public. (One
    whose type has some, but fewer than it asks for, keeps its place: what comes back
    is set aside for it.)"""
    on_sale_then = [on_sale(_types)] if on_sale_now else []
    return exists().where(_types.c.id == _entries.c.ticket_type_id, *on_sale_then,
                          _types.c.available_quantity + _types.c.set_aside > 0)


def take_for_offer(event_id, ticket_type_id, count):
    """Take `count` tickets of a type for the first in line, from what is set aside
    first, then from what is free: True if both the event and the type had them."""
    event_taken = db.session.execute(
        update(_events)
        .where(_events.c.id == event_id,
               _events.c.set_aside_tickets + _events.c.available_tickets >= count)
        .values(set_aside_tickets=_greatest(_events.c.set_aside_tickets - count, 0),
                available_tickets=_events.c.available_tickets
                - _greatest(count - _events.c.set_aside_tickets, 0))
    ).rowcount
    if not event_taken:
        return False
    type_taken = db.session.execute(
        update(_types)
        .where(_types.c.id == ticket_type_id, _types.c.set_aside + _types.c.available_quantity >= count)
        .values(set_aside=_greatest(_types.c.set_aside - count, 0),
                available_quantity=_types.c.available_quantity - _greatest(count - _types.c.set_aside, 0))
    ).rowcount
    return bool(type_taken)


def _greatest(a, b):
    return func.max(a, b) if db.session.get_bind().dialect.name == "sqlite" else func.greatest(a, b)


def _least(a, b):
    return func.min(a, b) if db.session.get_bind().dialect.name == "sqlite" else func.least(a, b)


# -- capacity --------------------------------------------------------------------------


def resize(event_id, total, now):
    """Set the capacity, moving availability by the same amount: a rise is set aside
    while anyone waits; a cut takes free tickets first, then set-aside ones. False when
    fewer tickets than are sold and held are asked for."""
    growth = bindparam("total", total, type_=Integer) - _events.c.total_tickets
    extra = _when(waiting(event_id), _greatest(growth, 0))  # a rise is set aside while anyone waits
    free = _events.c.available_tickets + growth - extra  # below 0: the cut reaches what is set aside
    return bool(db.session.execute(
        update(_events)
        .where(_events.c.id == event_id,
               _events.c.total_tickets - _events.c.available_tickets - _events.c.set_aside_tickets <= total)
        .values(
            total_tickets=total,
            available_tickets=_greatest(free, 0),
            set_aside_tickets=_events.c.set_aside_tickets + extra + _least(free, 0),
            updated_at=now,
        )
    ).rowcount)


def resize_type(type_id, event_id, quantity):
    """Set a type's quantity as `resize` sets the capacity (a rise set aside while
    anyone waits for the type); False when below what is sold and held of it."""
    growth = bindparam("new_quantity", quantity, type_=Integer) - _types.c.quantity
    extra = _when(waiting(event_id, type_id), _greatest(growth, 0))
    free = _types.c.available_quantity + growth - extra
    return bool(db.session.execute(
        update(_types)
        .where(_types.c.id == type_id,
               _types.c.quantity - _types.c.available_quantity - _types.c.set_aside <= quantity)
        .values(quantity=quantity, available_quantity=_greatest(free, 0),
                set_aside=_types.c.set_aside + extra + _least(free, 0))
    ).rowcount)


def retire_type(type_id, now):
    """Take a ticket type that past orders name off sale for good: its quantity and what
    is available of it become 0 (the caller has checked, under the event's lock, that
    none of it is sold, held or set aside)."""
    db.session.execute(update(_types).where(_types.c.id == type_id).values(removed_at=now, quantity=0,
                                                                           available_quantity=0))


def close(event_id, now):
    """Cancel the event and put every ticket and seat back (its bookings and holds end
    with it)."""
    db.session.execute(
        update(_events)
        .where(_events.c.id == event_id, _events.c.status == EventStatus.SCHEDULED)
        .values(status=EventStatus.CANCELLED, available_tickets=_events.c.total_tickets, set_aside_tickets=0,
                seats_version=_events.c.seats_version + 1, updated_at=now)
    )
    db.session.execute(
        update(_types).where(_types.c.event_id == event_id)
        .values(available_quantity=_types.c.quantity, set_aside=0)
    )
    db.session.execute(
        update(_seats).where(_seats.c.event_id == event_id, _seats.c.status != SeatStatus.AVAILABLE)
        .values(status=SeatStatus.AVAILABLE, hold_id=None, booking_id=None)
    )


def lock(event_id):
    """Hold the event's row until commit, for changes that span several rows (the lock
    order above). On SQLite the whole database is the lock (`database.begin_write`)."""
    begin_write()
    return db.session.execute(
        select(Event).where(Event.id == event_id).with_for_update(of=Event).execution_options(populate_existing=True)
    ).scalar_one_or_none()


# -- seat maps -------------------------------------------------------------------------


def remove_seat_map(event_id):
    """Delete the event's seat map: the rows its seats have (found by their ranges),
    then its ranges."""
    ranges = select(_ranges.c.id).where(_ranges.c.event_id == event_id)
    db.session.execute(delete(_seats).where(_seats.c.range_id.in_(ranges)))
    db.session.execute(delete(_ranges).where(_ranges.c.event_id == event_id))


def seat_counts(event_id, counts, now):
    """Make a new seat map's counts (`counts`: ticket_type_id -> seats) the event's
    capacity and its types' quantities, every ticket available (a type without seats
    gets 0), and move the seat map's version. False, with nothing written, when any
    ticket of the event or of its types is sold, held or set aside."""
    total = sum(counts.values())
    in_use = exists().where(_types.c.event_id == event_id, _types.c.available_quantity != _types.c.quantity)
    if not db.session.execute(
        update(_events)
        .where(_events.c.id == event_id, _events.c.available_tickets == _events.c.total_tickets, ~in_use)
        .values(total_tickets=total, available_tickets=total, seats_version=_events.c.seats_version + 1,
                updated_at=now)
    ).rowcount:
        return False
    quantity = case(counts, value=_types.c.id, else_=0)
    db.session.execute(update(_types).where(_types.c.event_id == event_id)
                       .values(quantity=quantity, available_quantity=quantity))
    return True
