"""An event's attendee list as CSV: one line per ticket of a CONFIRMED booking.

The list is read in keyset pages (tickets after the last id sent, PAGE at a time) and
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

HEADER = ("Booking ID", "Name", "Email", "Ticket type", "Seat", "Code", "Checked in at")
PAGE = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell):
    """A cell's text that no spreadsheet runs as a formula."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_START) else text


def seat_label(section, row, number):
    return "" if section is None else f"{section}, row {row}, seat {number}"


def lines(event_id):
    """The CSV, in chunks of bytes (UTF-8): the header, then a page of lines at a time."""
    yield _encode([HEADER])
    after = 0
    while True:
        page = db.session.execute(
            select(Ticket.id, Booking.id, User.name, User.email, TicketType.name, Seat.section, Seat.row,
                   Seat.number, Ticket.code, Ticket.checked_in_at)
            .select_from(Ticket)
            .join(Booking, Booking.id == Ticket.booking_id)
            .join(User, User.id == Booking.user_id)
            .join(TicketType, TicketType.id == Ticket.ticket_type_id)
            .outerjoin(Seat, Seat.id == Ticket.seat_id)
            .where(Booking.event_id == event_id, Booking.status == BookingStatus.CONFIRMED, Ticket.id > after)
            .order_by(Ticket.id)
            .limit(PAGE)
        ).all()
        db.session.close()  # the connection goes back to the pool while the client reads
        if not page:
            return
        after = page[-1][0]
        yield _encode(
            (booking_id, *map(neutralised, (name, email, type_name, seat_label(section, row, number), code)),
             checked_in_at and checked_in_at.isoformat().replace("+00:00", "Z"))
            for _, booking_id, name, email, type_name, section, row, number, code, checked_in_at in page
        )
        if len(page) < PAGE:
            return


def _encode(rows):
    """Lines of text cells already neutralised (ids and times cannot start a formula)."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")
