"""Tickets, their QR codes, and check-in.

A check-in is one conditional UPDATE: it sets `checked_in_at` only where it is still
NULL, on a ticket of a CONFIRMED booking of this event. The database decides under the
ticket's row lock, so of any number of gates scanning one code at once exactly one
gets the row back; the others read why they did not, under that lock (an undo of the
check-in meanwhile cannot make the reason stale).
"""

import io

import segno
from sqlalchemy import exists, select, update

from eventbook.bookings.service import visible
from eventbook.database import begin_write
from eventbook.errors import error
from eventbook.events.service import managed
from eventbook.extensions import db
from eventbook.models import Booking, BookingStatus, Event, Role, Ticket, utcnow
from eventbook.schemas import utc_text
from eventbook.tickets import attendees

_tickets = Ticket.__table__


def of_booking(booking_id, user):
    """The tickets of a booking its customer, the event's organizer or an admin sees."""
    booking = visible(booking_id, user)
    return db.session.scalars(select(Ticket).where(Ticket.booking_id == booking.id).order_by(Ticket.id)).all()


def qr_svg(booking_id, ticket_id, user):
    """An SVG QR code of one ticket's code (bytes)."""
    booking = visible(booking_id, user)
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.booking_id != booking.id:
        error(404, "not_found", "Ticket not found")
    svg = io.BytesIO()
    # A full QR code (never a Micro QR, which phone cameras and most gate scanners skip).
    segno.make_qr(ticket.code, error="m").save(svg, kind="svg", scale=4, border=4, title="Ticket")
    return svg.getvalue()


def attendee_lines(event_id, user):
    """The attendees.csv lines of an event (`attendees.lines`, streamed), for its
    organizer or an admin: checked now, before the first line is sent."""
    managed(event_id, user)
    return attendees.lines(event_id)


def _of_event(event_id, *conditions, share=False):
    """SQL: the ticket's booking is of this event (and meets `conditions`). EXISTS, so
    that both databases look its booking up by id rather than list the event's. With
    `share`, the booking's row is locked FOR SHARE until commit: a cancel of it waits for
    this check-in, and one already under way makes this one wait, then see CANCELLED."""
    booking = select(Booking.id).where(Booking.id == _tickets.c.booking_id, Booking.event_id == event_id, *conditions)
    return (booking.with_for_update(read=True) if share else booking).exists()


UNDONE_RETRIES = 20  # scans that each found the code checked in, then undone: a door that keeps toggling it


def check_in(event_id, user, code, nonce=None):
    """Admit the holder of `code`: (ticket, checked_in_at). Exactly one scan of a code
    wins; a repeat of the winning scan's `nonce` gets its answer again, even after an
    undo of that check-in (until another scan checks the ticket in).

    A scan that wins is one statement: the UPDATE itself checks that the scanner
    manages the event and that the booking is CONFIRMED (sharing its row's lock with a
    cancel, `_of_event`), and returns the ticket. Only a scan that does not win reads
    why; one that finds the check-in undone meanwhile sends the UPDATE again, so that
    every check-in is written by it.
    """
    # As a scanner sends it (many end a scan with a newline), or as copied from
    # attendees.csv, where a code starting with "-" has a leading "'" (codes are
    # URL-safe: none has a space or an apostrophe of its own).
    code = code.strip().removeprefix("'")
    managed_by = [] if user.role == Role.ADMIN else [
        exists().where(Event.id == event_id, Event.organizer_id == user.id)]
    # A retry of the scan that checked the ticket in never checks it in again, even after an undo.
    not_a_retry = [] if nonce is None else [Ticket.check_in_nonce.is_distinct_from(nonce)]
    for _ in range(UNDONE_RETRIES):
        now = utcnow()
        ticket = db.session.scalars(
            update(Ticket)
            .where(Ticket.code == code, Ticket.checked_in_at.is_(None),
                   _of_event(event_id, Booking.status == BookingStatus.CONFIRMED, share=True), *managed_by,
                   *not_a_retry)
            .values(checked_in_at=now, check_in_nonce=nonce, check_in_nonce_at=now if nonce is not None else None)
            .returning(Ticket),
            execution_options={"populate_existing": True},
        ).one_or_none()
        db.session.commit()
        if ticket is not None:
            return ticket, now
        managed(event_id, user)
        ticket, status = _scanned(event_id, code)
        if nonce is not None and ticket.check_in_nonce == nonce:
            db.session.commit()
            # The gate lost the first answer: the same one again, whatever happened since
            # (an undo, a cancel). The ticket is as it is now.
            return ticket, ticket.check_in_nonce_at
        if status != BookingStatus.CONFIRMED:
            db.session.rollback()
            error(409, "ticket_void", "This ticket's booking was cancelled")
        if ticket.checked_in_at is not None:
            checked_in_at = utc_text(ticket.checked_in_at)  # as read under the lock
            db.session.rollback()
            error(409, "already_checked_in", "This ticket was already checked in", checkedInAt=checked_in_at)
        db.session.rollback()  # the check-in was undone between the UPDATE and this read: scan again
    error(503, "unavailable", "This ticket is being checked in and undone at this moment, scan it again",
          headers={"Retry-After": "1"})


def _scanned(event_id, code):
    """(ticket, booking status) of a code of this event, the ticket's row locked until the
    caller ends the transaction: 404 for any other code, the same as for no code at all,
    so that a scan tells nothing about other events."""
    begin_write()
    row = db.session.execute(
        select(Ticket, Booking.status).join(Booking, Booking.id == Ticket.booking_id)
        .where(Ticket.code == code, Booking.event_id == event_id)
        .with_for_update(of=Ticket).execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        db.session.rollback()
        error(404, "not_found", "No ticket of this event has this code")
    return row


def undo(event_id, ticket_id, user):
    """Undo a ticket's check-in (nothing to undo is fine); 404 for a ticket of another event.
    The winning scan's nonce stays: a retry of that scan is answered, not let in again."""
    managed(event_id, user)
    found = db.session.execute(
        update(_tickets)
        .where(_tickets.c.id == ticket_id, _of_event(event_id))
        .values(checked_in_at=None)
    ).rowcount
    db.session.commit()
    if not found:
        error(404, "not_found", "Ticket not found")
