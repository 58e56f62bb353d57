"""Selling on SQLite: each sale is a short transaction of the same steps as on
PostgreSQL (`sales.postgresql`), one statement after the other.

The first write begins the transaction IMMEDIATE, which takes SQLite's one write lock:
the steps of a sale never interleave with another writer's. A step that takes less
than it was asked for rolls the whole transaction back (`NotTaken`).
"""

from decimal import Decimal

from sqlalchemy import Integer, insert, literal, select, union_all, update

from eventbook import inventory
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
    Seat,
    SeatStatus,
    Ticket,
    TicketType,
    WaitlistEntry,
)
from eventbook.notifications import templates
from eventbook.sales import NotTaken, Sold, codes


def book(order):
    event, taken = _take(order)
    if _has_hold(order.event_id, order.customer_id, order.now):  # read inside the write lock the take began
        _refuse()
    booking = _insert(Booking, event_id=order.event_id, user_id=order.customer_id, tickets_count=order.tickets,
                      total_amount=_total(taken), status=BookingStatus.CONFIRMED, created_at=order.now)
    seats = _take_seats(order, SeatStatus.BOOKED, booking_id=booking.id)
    _insert_items(taken, booking_id=booking.id)
    note = _write_booking(booking, event, taken, seats, order.email, order.key, order.now)
    _leave_waitlist(order.event_id, order.customer_id, order.now)
    db.session.commit()
    return Sold(booking.id, [note])


def hold(order, expires_at):
    _event, taken = _take(order)
    if _has_booking(order.event_id, order.customer_id):  # read inside the write lock the take began
        _refuse()
    held = _insert(Hold, event_id=order.event_id, user_id=order.customer_id, tickets_count=order.tickets,
                   total_amount=_total(taken), status=HoldStatus.HELD, expires_at=expires_at, created_at=order.now)
    _take_seats(order, SeatStatus.HELD, hold_id=held.id)
    _insert_items(taken, hold_id=held.id)
    _leave_waitlist(order.event_id, order.customer_id, order.now)
    db.session.commit()
    return Sold(held.id, [])


def confirm(hold_id, customer_id, email, key, now):
    held = db.session.execute(
        update(Hold.__table__)
        .where(Hold.id == hold_id, Hold.user_id == customer_id, Hold.status == HoldStatus.HELD, Hold.expires_at > now,
               inventory.on_sale_event(Hold.event_id, now))
        .values(status=HoldStatus.CONFIRMED, ended_at=now)
        .returning(*Hold.__table__.c)
    ).one_or_none()
    if held is None:
        _refuse()
    booking = _insert(Booking, event_id=held.event_id, user_id=customer_id, tickets_count=held.tickets_count,
                      total_amount=held.total_amount, status=BookingStatus.CONFIRMED, created_at=now)
    db.session.execute(update(Hold).where(Hold.id == hold_id).values(booking_id=booking.id))
    db.session.execute(update(Item).where(Item.hold_id == hold_id).values(booking_id=booking.id))
    seats = db.session.execute(inventory.book_held_seats(hold_id, booking.id)).all()
    if seats:
        db.session.execute(update(Event).where(Event.id == held.event_id)
                           .values(seats_version=Event.seats_version + 1))
    taken = db.session.execute(
        select(Item.ticket_type_id, Item.count, Item.unit_price).where(Item.hold_id == hold_id)
    ).all()
    event = db.session.get(Event, held.event_id)
    note = _write_booking(booking, event, [tuple(row) for row in taken], seats, email, key, now)
    db.session.execute(update(WaitlistEntry).where(WaitlistEntry.hold_id == hold_id)
                       .values(status=EntryStatus.CONVERTED, updated_at=now))
    db.session.commit()
    return Sold(booking.id, [note])


def expire(batch, now):
    """No statement for it here: `holds.service.expire_due` ends the due holds in a
    transaction, as a release does (SQLite's one write lock keeps sweepers apart)."""
    return None


def one_order_at_a_time(customer_id, event_id, wait=True):
    """Nothing to wait for: SQLite's one write lock keeps a customer's orders apart."""
    return True


# -- steps -----------------------------------------------------------------------------


def _take(order):
    """Take the event's tickets, then each type's: the event's row and [(type id,
    count, price)], or NotTaken with everything rolled back."""
    values = {"event": order.event_id, "tickets": order.tickets, "now": order.now,
              "seat_changes": int(bool(order.seat_ids))}
    event = db.session.execute(inventory.take_event(), values).one_or_none()
    if event is not None and order.seat_ids:  # the seats' rows, for _wanted and _take_seats
        db.session.execute(inventory.add_seat_rows(inventory.listed(order.seat_ids), "sqlite"), values)
    wanted = _wanted(order)
    if event is None or not wanted or sum(count for _, count in wanted) != order.tickets:
        _refuse()
    rows = union_all(*(select(literal(type_id, Integer).label("ticket_type_id"), literal(count, Integer).label("count"))
                       for type_id, count in wanted)).subquery("wanted")
    prices = {taken.id: taken.price for taken in db.session.execute(inventory.take_types(rows), values)}
    if len(prices) != len(wanted):
        _refuse()
    return event, [(type_id, count, prices[type_id]) for type_id, count in wanted]


def _wanted(order):
    """[(ticket_type_id, count)] of the order: as listed; the event's only type for the
    shorthand; for seats, the seats of this event asked for, counted by type."""
    if order.seat_ids:
        return db.session.execute(
            select(Seat.ticket_type_id, db.func.count())
            .where(Seat.id.in_(order.seat_ids), Seat.event_id == order.event_id)
            .group_by(Seat.ticket_type_id)
        ).all()
    wanted = [(type_id, count) for type_id, count in order.items if type_id is not None]
    shorthand = sum(count for type_id, count in order.items if type_id is None)
    if shorthand:
        types = db.session.scalars(select(TicketType.id).where(TicketType.event_id == order.event_id,
                                                            TicketType.removed_at.is_(None)).limit(2)).all()
        if len(types) != 1:
            return []
        wanted.append((types[0], shorthand))
    return wanted


def _take_seats(order, status, **owner):
    if not order.seat_ids:
        return []
    taken = db.session.execute(
        inventory.take_seats(status, **owner), {"seat_ids": list(order.seat_ids), "event": order.event_id}
    ).all()
    if len(taken) != len(order.seat_ids):
        _refuse()
    return taken


def _total(taken):
    return sum((price * count for _, count, price in taken), Decimal("0.00"))


def _insert(model, **values):
    row = db.session.execute(insert(model.__table__).values(**values).returning(*model.__table__.c)).one()
    return row


def _insert_items(taken, **owner):
    db.session.execute(insert(Item), [{**owner, "ticket_type_id": type_id, "count": count, "unit_price": price}
                                      for type_id, count, price in taken])


def _write_booking(booking, event, taken, seats, email, key, now):
    """One ticket per unit (or per seat), the BOOKING_CONFIRMED notification, the
    Idempotency-Key row. Tickets in seat id order, or by ticket type, as PostgreSQL's
    statement numbers them."""
    if seats:
        units = [(seat.ticket_type_id, seat.id) for seat in sorted(seats, key=lambda seat: seat.id)]
    else:
        units = [(type_id, None) for type_id, count, _ in sorted(taken) for _ in range(count)]
    db.session.execute(insert(Ticket), [
        {"booking_id": booking.id, "ticket_type_id": type_id, "seat_id": seat_id, "code": code}
        for (type_id, seat_id), code in zip(units, codes(len(units)), strict=True)
    ])
    note = db.session.scalar(insert(Notification).values(
        kind=NotificationKind.BOOKING_CONFIRMED, user_id=booking.user_id, recipient=email,
        params=templates.of_booking(booking, event), event_id=event.id, booking_id=booking.id,
        next_attempt_at=now, created_at=now,
    ).returning(Notification.id))
    if key is not None:
        db.session.execute(insert(IdempotencyKey).values(
            user_id=booking.user_id, key=key.key, request_hash=key.digest, response_status=201,
            booking_id=booking.id, expires_at=key.expires_at))
    return note


def _leave_waitlist(event_id, user_id, now):
    db.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.user_id == user_id,
               WaitlistEntry.status == EntryStatus.WAITING)
        .values(status=EntryStatus.LEFT, updated_at=now)
    )


def _has_booking(event_id, user_id):
    return db.session.scalar(select(Booking.id).where(
        Booking.event_id == event_id, Booking.user_id == user_id, Booking.status == BookingStatus.CONFIRMED))


def _has_hold(event_id, user_id, now):
    return db.session.scalar(select(Hold.id).where(
        Hold.event_id == event_id, Hold.user_id == user_id, Hold.status == HoldStatus.HELD, Hold.expires_at > now))


def _refuse():
    db.session.rollback()
    raise NotTaken()
