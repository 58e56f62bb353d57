"""Why an order was not taken: read after the fact, only when a sale took nothing, to
answer with the error that says so (the sale itself never reads before it writes)."""

from sqlalchemy import select

from eventbook import inventory
from eventbook.errors import error, invalid, tickets
from eventbook.extensions import db
from eventbook.models import Booking, BookingStatus, Event, EventStatus, Hold, HoldStatus, Seating, SeatStatus
from eventbook.schemas import utc_text


def explain(order):
    """Raise the error that says why `order` could not be taken. If nothing stands in
    its way any more (what it asked for came back meanwhile: a rival hold expired, say),
    return, so that the caller tries once more (or, after its last try, says
    `taken_meanwhile`)."""
    db.session.rollback()
    event = db.session.get(Event, order.event_id)
    if event is None:
        error(404, "not_found", "Event not found")
    closed(event, order.now)
    _already(event, order)
    if order.seat_ids:
        _explain_seats(event, order)
    else:
        _explain_items(event, order)
    _short(event.available_tickets, order.tickets)


def taken_meanwhile(order):
    """409 for an order that found its tickets free each time it was explained, and taken
    each time it tried: rivals taking and giving back. Not what the event is like, so
    not kept for its Idempotency-Key either: trying again may well book."""
    error(409, "not_enough_tickets", "The tickets were taken meanwhile, try again",
          availableTickets=db.session.get(Event, order.event_id).available_tickets)


def _already(event, order):
    """409 when the customer may not buy more of the event, whatever is left of it: one
    CONFIRMED booking per customer and event, one HELD hold (a booking is a hold and
    its confirm; a waiting-list offer is a hold)."""
    if db.session.scalar(select(Booking.id).where(
            Booking.event_id == event.id, Booking.user_id == order.customer_id,
            Booking.status == BookingStatus.CONFIRMED)):
        already_booked()
    held = db.session.scalar(select(Hold.id).where(
        Hold.event_id == event.id, Hold.user_id == order.customer_id, Hold.status == HoldStatus.HELD,
        Hold.expires_at > order.now))
    if held:
        already_holding(held)


def already_booked():
    error(409, "already_booked", "You already have a confirmed booking for this event")


def already_holding(hold_id):
    error(409, "already_holding", "You already hold tickets for this event: confirm or release that hold",
          holdId=hold_id)


def closed(event, now):
    """409 event_closed if the event is cancelled or has started by `now`."""
    if event.status != EventStatus.SCHEDULED:
        error(409, "event_closed", "This event has been cancelled")
    if event.date <= now:
        error(409, "event_closed", "This event has already started")


def _explain_items(event, order):
    if event.seating == Seating.RESERVED:
        invalid("seatIds", "This event has reserved seating: choose seats (seatIds).")
    types = {ticket_type.id: ticket_type for ticket_type in event.ticket_types}
    for type_id, _count in order.items:
        if type_id is None and len(types) != 1:
            invalid("ticketTypeId", "This event has several ticket types: say which one.")
        ticket_type = _type(types, type_id)
        if ticket_type is None:
            error(404, "not_found", f"Ticket type {type_id} not found (not a ticket type of this event)")
        if not ticket_type.on_sale(order.now):
            sales_closed(ticket_type)
    if len(order.items) == 1:  # one type: the 409 names it, whether the event or the type ran short
        [(type_id, count)] = order.items
        ticket_type = _type(types, type_id)
        own = ticket_type.available_quantity
        _short(min(own, event.available_tickets), count, ticket_type, named=own < event.available_tickets)
    _short(event.available_tickets, order.tickets)
    for type_id, count in order.items:
        ticket_type = _type(types, type_id)
        _short(ticket_type.available_quantity, count, ticket_type)


def _type(types, type_id):
    """The type an item names (None if the event has no such type), or for the shorthand
    (`type_id` None) the event's only one."""
    return types.get(type_id) if type_id is not None else next(iter(types.values()))


def _explain_seats(event, order):
    if event.seating != Seating.RESERVED:
        invalid("seatIds", "This event has no reserved seating: ask for a number of tickets.")
    seats = {seat.id: seat for seat in inventory.seats_of(event.id, order.seat_ids)}
    strangers = [seat_id for seat_id in order.seat_ids if seat_id not in seats]
    if strangers:
        error(404, "not_found", f"Seats not found (not seats of this event): {', '.join(map(str, strangers))}")
    taken = sorted(seat_id for seat_id, seat in seats.items() if seat.status != SeatStatus.AVAILABLE)
    if taken:
        error(409, "seats_taken", f"Seat{'s' if len(taken) > 1 else ''} no longer available",
              unavailableSeatIds=taken)
    types = {ticket_type.id: ticket_type for ticket_type in event.ticket_types}
    for type_id in sorted({seat.ticket_type_id for seat in seats.values()}):
        if not types[type_id].on_sale(order.now):
            sales_closed(types[type_id])


def _short(left, wanted, ticket_type=None, named=True):
    """A 409 when fewer than `wanted` are left (of the event, or of a ticket type): it
    carries the type's id, and names the type in its message when the type itself is
    short (`named`)."""
    if left >= wanted:
        return
    which = {"ticketTypeId": ticket_type.id} if ticket_type else {}
    name = f"{ticket_type.name}: " if ticket_type and named else ""
    if left == 0:
        error(409, "sold_out", f"{name}Sold out: no tickets left", availableTickets=0, **which)
    error(409, "not_enough_tickets", f"{name}Only {tickets(left)} left",
          availableTickets=left, **which)


def sales_closed(ticket_type):
    """The 409 for a type outside its sales window, with the window."""
    error(409, "sales_closed", f"{ticket_type.name}: not on sale now", ticketTypeId=ticket_type.id,
          salesStart=utc_text(ticket_type.sales_start), salesEnd=utc_text(ticket_type.sales_end))
