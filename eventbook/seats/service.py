"""Seat maps of RESERVED events: replacing one, and reading it in map order.

Seats are taken and given back by the sales (`eventbook.sales`, through
`eventbook.inventory.take_seats` and `give_back`); this module only writes a whole map,
and only while none of its seats is held or booked.
"""

from collections import Counter
from itertools import accumulate, islice

from sqlalchemy import BigInteger, cast, exists, insert, select, update

from eventbook import inventory
from eventbook.database import autocommit, retry_deadlocks
from eventbook.errors import error, invalid
from eventbook.events.service import open_to_change
from eventbook.extensions import db
from eventbook.models import SEATS_PER_RANGE, Event, Seat, Seating, SeatRange, SeatStatus, utcnow

PAGE = 2000  # seats per page of a streamed seat list
RANGES = 500  # ranges per read of one


@retry_deadlocks
def replace(event_id, user, sections):
    """Replace the seat map of a RESERVED event whose seats are all free, and make its
    seat counts the event's capacity and its types' quantities: the number of seats."""
    event = open_to_change(event_id, user)  # locked: sales of this event wait until the new map is in
    if event.seating != Seating.RESERVED:
        db.session.rollback()
        invalid("seating", "Only a RESERVED event has a seat map.")
    types = {ticket_type.id for ticket_type in event.ticket_types}
    strangers = sorted({section["ticket_type_id"] for section in sections} - types)
    if strangers:
        db.session.rollback()
        invalid("sections", f"Not ticket types of this event: {', '.join(map(str, strangers))}.")
    counts = Counter()
    for section in sections:
        counts[section["ticket_type_id"]] += sum(row["last"] - row["first"] + 1 for row in section["rows"])
    in_use = db.session.scalar(select(exists().where(Seat.event_id == event_id, Seat.status != SeatStatus.AVAILABLE)))
    if in_use or not inventory.seat_counts(event_id, counts, utcnow()):
        db.session.rollback()
        error(409, "seats_in_use", "Seats of this event are held or booked: its seat map cannot be replaced")
    inventory.remove_seat_map(event_id)
    _insert(event_id, sections)
    db.session.commit()
    return counts.total()


def _insert(event_id, sections):
    """Insert the new map's ranges, in map order (`position`: the place of each range's
    first seat), in one multi-row INSERT; then give each range its seat ids
    (`SeatRange`), from its own id, which is never a replaced range's."""
    rows = [(section["ticket_type_id"], section["name"], row["label"], row["first"], row["last"])
            for section in sections for row in _in_map_order(section["rows"])]
    # each range's first position: the seats of the ranges before it
    positions = list(accumulate((last - first + 1 for *_, first, last in rows), initial=0))[:-1]
    ranges = SeatRange.__table__
    db.session.execute(insert(ranges), [
        {"event_id": event_id, "ticket_type_id": type_id, "section": name, "row": label, "first_number": first,
         "last_number": last, "position": position, "first_seat_id": 0}
        for (type_id, name, label, first, last), position in zip(rows, positions, strict=True)])
    db.session.execute(update(ranges).where(ranges.c.event_id == event_id)
                       .values(first_seat_id=cast(ranges.c.id, BigInteger) * SEATS_PER_RANGE))  # past 2**31


def _in_map_order(rows):
    """A section's ranges in map order: rows where their label first comes, a row given
    in several ranges (an aisle) with its numbers ascending."""
    first = {}
    for index, row in enumerate(rows):
        first.setdefault(row["label"], index)
    return sorted(rows, key=lambda row: (first[row["label"]], row["first"]))


def version(event_id):
    """(the seat map's version, which moves with every change of a seat; when its event was
    created, as an SQLite database from before migration 0008 may have given a removed
    event's id to a new one), in one small read."""
    with autocommit() as connection:
        found = connection.execute(select(Event.seats_version, Event.created_at).where(Event.id == event_id)).first()
    if found is None:
        error(404, "not_found", "Event not found")
    return tuple(found)


def pages(event_id, section=None):
    """The event's seats in map order, PAGE at a time: (id, section, row, number,
    ticket_type_id, status)."""
    seats = _in_map_order_of(event_id, section)
    while page := list(islice(seats, PAGE)):
        yield page


def _in_map_order_of(event_id, section):
    """Every seat of the event's map (of a section), from its ranges, read RANGES at a
    time, each read on its own (the connection goes back to the pool while the seats
    are sent), with the status of those that have a row: the others are AVAILABLE."""
    ranges, seats = SeatRange.__table__.c, Seat.__table__.c
    query = select(ranges.section, ranges.row, ranges.first_number, ranges.last_number, ranges.ticket_type_id,
                   ranges.position, ranges.first_seat_id) \
        .where(ranges.event_id == event_id).order_by(ranges.position).limit(RANGES)
    if section is not None:
        query = query.where(ranges.section == section)
    after = -1
    while True:
        found = db.session.execute(query.where(ranges.position > after)).all()
        if found:
            last = found[-1]
            statuses = dict(db.session.execute(select(seats.id, seats.status).where(
                seats.event_id == event_id, seats.status != SeatStatus.AVAILABLE,
                seats.position.between(found[0].position, last.position + last.last_number - last.first_number))).all())
        db.session.rollback()
        for section_name, row, first, last_number, type_id, _position, first_id in found:
            for number in range(first, last_number + 1):
                seat_id = first_id + number - first
                yield seat_id, section_name, row, number, type_id, statuses.get(seat_id, SeatStatus.AVAILABLE)
        if len(found) < RANGES:
            return
        after = found[-1].position
