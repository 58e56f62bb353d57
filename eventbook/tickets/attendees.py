"""An event's attendee list as CSV: one line per ticket of a CONFIRMED booking.

The list is read in keyset pages (the next PAGE bookings after the last one sent, then
their customers and tickets by id: at most PAGE x MAX_TICKETS_PER_BOOKING lines) and
written page by page, so a process holds one page of any event, however large, and
gives its database connection back between pages: a slow download never holds one.

Cells a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a
carriage return) get a leading apostrophe, as OWASP recommends against CSV injection;
every cell is quoted.
"""

import csv
import io

from sqlalchemy import select

from eventbook.extensions import db
from eventbook.models import Booking, BookingStatus, Seat, Ticket, TicketType, User
from eventbook.schemas import utc_text

HEADER = ("Booking ID", "Name", "Email", "Ticket type", "Seat", "Code", "Checked in at")
PAGE = 200  # bookings
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell):
    """A cell's text that no spreadsheet runs as a formula."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_START) else text


def seat_label(section, row, number):
    return "" if section is None else f"{section}, row {row}, seat {number}"


def lines(event_id):
    """The CSV, in chunks of bytes (UTF-8): the header, then the lines of a page of
    bookings at a time (tickets in booking order, then ticket order)."""
    yield _encode([HEADER])
    after = 0
    while True:
        bookings = db.session.execute(
            select(Booking.id, Booking.user_id)
            .where(Booking.event_id == event_id, Booking.status == BookingStatus.CONFIRMED, Booking.id > after)
            .order_by(Booking.id).limit(PAGE)
        ).all()
        if not bookings:
            db.session.close()
            return
        after = bookings[-1].id
        # By the page's ids, so that each lookup is an index search, whatever the table's size.
        people = {user_id: (name, email) for user_id, name, email in db.session.execute(
            select(User.id, User.name, User.email).where(User.id.in_({b.user_id for b in bookings})))}
        tickets = db.session.execute(
            select(Ticket.booking_id, Ticket.ticket_type_id, Seat.section, Seat.row, Seat.number, Ticket.code,
                   Ticket.checked_in_at)
            .outerjoin(Seat, Seat.id == Ticket.seat_id)
            .where(Ticket.booking_id.in_([b.id for b in bookings]))
            .order_by(Ticket.booking_id, Ticket.id)
        ).all()
        # Their types by id too (joined to the tickets, PostgreSQL may hash all of ticket_types).
        type_names = dict(db.session.execute(select(TicketType.id, TicketType.name).where(
            TicketType.id.in_({ticket.ticket_type_id for ticket in tickets}))).all())
        db.session.close()  # the connection goes back to the pool while the client reads
        user_of = {b.id: b.user_id for b in bookings}
        yield _encode(
            (booking_id, *map(neutralised, (*people[user_of[booking_id]], type_names[type_id],
                                            seat_label(section, row, number), code)),
             utc_text(checked_in_at))
            for booking_id, type_id, section, row, number, code, checked_in_at in tickets
        )


def _encode(rows):
    """Lines of text cells already neutralised (ids and times cannot start a formula)."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")
