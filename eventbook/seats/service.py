"""Seat maps of RESERVED events: replacing one, and reading it in map order.

Seats are taken and given back by the sales (`eventbook.sales`, through
`eventbook.inventory.take_seats` and `give_back`); this module only writes a whole map,
and only while none of its seats is held or booked.
"""

from collections import Counter
from itertools import accumulate, islice

from sqlalchemy import delete, exists, insert, select, text

from eventbook import inventory
from eventbook.database import autocommit, retry_deadlocks
from eventbook.errors import error, invalid
from eventbook.events.service import open_to_change
from eventbook.extensions import db
from eventbook.models import Event, Seat, Seating, SeatStatus, utcnow

BATCH = 5000  # seats per executemany on SQLite
PAGE = 2000  # seats per read of a streamed seat list


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
    db.session.execute(delete(Seat.__table__).where(Seat.event_id == event_id))
    _insert(event_id, sections)
    db.session.commit()
    return counts.total()


# PostgreSQL: the map goes as one array per field of its rows (one element per row of
# seats), and the server numbers the seats of each row itself.
INSERT_ROWS = text("""
    INSERT INTO seats (event_id, ticket_type_id, section, row, number, position, status)
    SELECT :event_id, r.ticket_type_id, r.section, r.label, number, r.position + number - r.first, 'AVAILABLE'
    FROM unnest(CAST(:types AS integer[]), CAST(:sections AS varchar[]), CAST(:labels AS varchar[]),
                CAST(:firsts AS integer[]), CAST(:lasts AS integer[]), CAST(:positions AS integer[]))
         AS r(ticket_type_id, section, label, first, last, position),
         generate_series(r.first, r.last) AS number
""")


def _insert(event_id, sections):
    """Insert the new map's seats, numbered in map order (`position`). New ids, never a
    replaced seat's (SQLite's AUTOINCREMENT: see the model)."""
    rows = [(section["ticket_type_id"], section["name"], row["label"], row["first"], row["last"])
            for section in sections for row in _in_map_order(section["rows"])]
    # each row's first position: the seats of the rows before it
    positions = list(accumulate((last - first + 1 for *_, first, last in rows), initial=0))[:-1]
    if db.session.get_bind().dialect.name == "postgresql":
        types, names, labels, firsts, lasts = (list(field) for field in zip(*rows, strict=True))
        db.session.execute(INSERT_ROWS, {"event_id": event_id, "types": types, "sections": names, "labels": labels,
                                         "firsts": firsts, "lasts": lasts, "positions": positions})
        return
    seats = ({"event_id": event_id, "ticket_type_id": type_id, "section": name, "row": label, "number": number,
              "position": position + number - first, "status": SeatStatus.AVAILABLE}
             for (type_id, name, label, first, last), position in zip(rows, positions, strict=True)
             for number in range(first, last + 1))
    while batch := list(islice(seats, BATCH)):
        db.session.execute(insert(Seat.__table__), batch)


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
    """The event's seats in map order, a page of rows at a time, each read on its own
    (the connection goes back to the pool while a page is sent)."""
    seats = Seat.__table__.c
    query = select(seats.id, seats.section, seats.row, seats.number, seats.ticket_type_id, seats.status, seats.position) \
        .where(seats.event_id == event_id).order_by(seats.position).limit(PAGE)
    if section is not None:
        query = query.where(seats.section == section)
    after = -1
    while True:
        rows = db.session.execute(query.where(seats.position > after)).all()
        db.session.rollback()
        if rows:
            yield rows
        if len(rows) < PAGE:
            return
        after = rows[-1].position
