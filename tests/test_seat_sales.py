"""Seats sold through holds and bookings: taken all or nothing, 409 seats_taken naming
exactly the seats that were not free, given back by a cancel, a release or an expiry.

After every test the seat map must agree with the sales, per event and per type
(SEAT_COUNTS): BOOKED seats are the tickets of CONFIRMED bookings, HELD seats those of
HELD holds, and what the counters say is taken is the seats taken.
"""

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.support import in_days, ok, refused, wait_until

SEAT_COUNTS = {
    "seated event": """
        SELECT e.id, e.total_tickets, e.available_tickets, m.booked, m.held,
               COALESCE(b.sold, 0), COALESCE(h.held, 0)
        FROM events e
        JOIN (SELECT event_id, SUM(CASE WHEN status = 'BOOKED' THEN 1 ELSE 0 END) AS booked,
                     SUM(CASE WHEN status = 'HELD' THEN 1 ELSE 0 END) AS held
              FROM seats GROUP BY event_id) m ON m.event_id = e.id
        LEFT JOIN (SELECT event_id, SUM(tickets_count) AS sold FROM bookings WHERE status = 'CONFIRMED'
                   GROUP BY event_id) b ON b.event_id = e.id
        LEFT JOIN (SELECT event_id, SUM(tickets_count) AS held FROM holds WHERE status = 'HELD'
                   GROUP BY event_id) h ON h.event_id = e.id
        WHERE m.booked != COALESCE(b.sold, 0) OR m.held != COALESCE(h.held, 0)
           OR (e.status = 'SCHEDULED' AND e.total_tickets - e.available_tickets != m.booked + m.held)
    """,
    "seated ticket type": """
        SELECT t.id, t.quantity, t.available_quantity, COALESCE(m.booked, 0),
               COALESCE(m.held, 0), COALESCE(s.sold, 0), COALESCE(h.held, 0)
        FROM ticket_types t
        JOIN events e ON e.id = t.event_id
        LEFT JOIN (SELECT ticket_type_id, SUM(CASE WHEN status = 'BOOKED' THEN 1 ELSE 0 END) AS booked,
                          SUM(CASE WHEN status = 'HELD' THEN 1 ELSE 0 END) AS held
                   FROM seats GROUP BY ticket_type_id) m ON m.ticket_type_id = t.id
        LEFT JOIN (SELECT i.ticket_type_id, SUM(i.count) AS sold FROM items i
                   JOIN bookings b ON b.id = i.booking_id WHERE b.status = 'CONFIRMED'
                   GROUP BY i.ticket_type_id) s ON s.ticket_type_id = t.id
        LEFT JOIN (SELECT i.ticket_type_id, SUM(i.count) AS held FROM items i
                   JOIN holds h ON h.id = i.hold_id WHERE h.status = 'HELD'
                   GROUP BY i.ticket_type_id) h ON h.ticket_type_id = t.id
        WHERE EXISTS (SELECT 1 FROM seats x WHERE x.event_id = e.id)
          AND (COALESCE(m.booked, 0) != COALESCE(s.sold, 0) OR COALESCE(m.held, 0) != COALESCE(h.held, 0)
               OR (e.status = 'SCHEDULED'
                   AND t.quantity - t.available_quantity != COALESCE(m.booked, 0) + COALESCE(m.held, 0)))
    """,
}


def seat_count_violations(url):
    """Seated events and types whose seats disagree with their sales: (what, row) pairs."""
    from config import normalize_database_url

    engine = sa.create_engine(normalize_database_url(url))
    with engine.connect() as connection:
        found = [(what, tuple(row)) for what, query in SEAT_COUNTS.items() for row in connection.execute(sa.text(query))]
    engine.dispose()
    return found


@pytest.fixture(autouse=True)
def seats_agree_with_sales(app, database_url):
    yield
    assert not seat_count_violations(database_url)


TYPES = [{"name": "Stalls", "price": "50.00", "quantity": 1}, {"name": "Balcony", "price": "30.00", "quantity": 1}]


@pytest.fixture
def hall(client, shop, organizer, make_event):
    """A RESERVED event: Stalls A1-A4 (50.00), Balcony B1-B3 (30.00). (event id, [seat ids in map order])."""

    def make(**fields):
        event = make_event(**{"seating": "RESERVED", "totalTickets": 7, "ticketTypes": TYPES, **fields})
        types = {name: ticket_type["id"] for name, ticket_type in shop.types(event["id"]).items()}
        body = {"sections": [
            {"name": "Stalls", "ticketTypeId": types["Stalls"], "rows": [{"label": "A", "from": 1, "to": 4}]},
            {"name": "Balcony", "ticketTypeId": types["Balcony"], "rows": [{"label": "B", "from": 1, "to": 3}]}]}
        ok(client.put(f"/api/events/{event['id']}/seats", json=body, headers=organizer.headers))
        return event["id"], [seat["id"] for seat in ok(client.get(f"/api/events/{event['id']}/seats"))]

    return make


def statuses(shop, event_id):
    return [seat["status"] for seat in ok(shop.client.get(f"/api/events/{event_id}/seats"))]


def test_seats_are_booked_at_their_types_prices(shop, customer, hall):
    event_id, seats = hall()
    booking = ok(shop.book(customer, event_id, seatIds=[seats[5], seats[1]]), 201)  # any order
    assert booking["seats"] == [{"id": seats[1], "section": "Stalls", "row": "A", "number": 2},
                                {"id": seats[5], "section": "Balcony", "row": "B", "number": 2}]  # map order
    assert booking["ticketsCount"] == 2 and booking["totalAmount"] == "80.00"
    assert sorted((item["count"], item["price"]) for item in booking["items"]) == [(1, "30.00"), (1, "50.00")]
    assert ok(shop.client.get(f"/api/bookings/{booking['id']}", headers=customer.headers))["seats"] == booking["seats"]
    assert statuses(shop, event_id) == ["AVAILABLE", "BOOKED"] + ["AVAILABLE"] * 3 + ["BOOKED", "AVAILABLE"]
    assert shop.available(event_id) == 5
    assert {name: t["availableQuantity"] for name, t in shop.types(event_id).items()} == {"Stalls": 3, "Balcony": 2}


def test_a_hold_holds_seats_and_its_confirm_books_them(shop, customer, hall):
    event_id, seats = hall()
    held = ok(shop.hold(customer, event_id, seatIds=[seats[0], seats[4]]), 201)
    assert [seat["id"] for seat in held["seats"]] == [seats[0], seats[4]] and held["totalAmount"] == "80.00"
    assert statuses(shop, event_id)[0] == statuses(shop, event_id)[4] == "HELD"
    assert shop.available(event_id) == 5
    booking = ok(shop.confirm(customer, held["id"]), 201)
    assert booking["seats"] == held["seats"] and booking["totalAmount"] == "80.00"
    assert statuses(shop, event_id) == ["BOOKED", "AVAILABLE", "AVAILABLE", "AVAILABLE", "BOOKED", "AVAILABLE",
                                        "AVAILABLE"]
    assert shop.available(event_id) == 5


def test_holds_of_one_seated_event_confirmed_at_once_all_book(shop, make_user, hall):
    """Each confirm of a seated event locks the event's row once, in the mode its seat
    map's change needs: seven confirmed at the same moment never deadlock, and all book."""
    event_id, seats = hall()
    holders = [make_user() for _ in seats]
    holds = [ok(shop.hold(actor, event_id, seatIds=[seat]), 201) for actor, seat in zip(holders, seats, strict=True)]
    start, answers = threading.Barrier(len(holds)), {}

    def confirm(actor, held):
        start.wait()
        answers[held["id"]] = shop.confirm(actor, held["id"])

    threads = [threading.Thread(target=confirm, args=pair) for pair in zip(holders, holds, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answer.status_code for answer in answers.values()) == [201] * len(holds), \
        [answer.get_json() for answer in answers.values()]
    assert statuses(shop, event_id) == ["BOOKED"] * len(seats)


def test_taken_seats_are_a_409_naming_exactly_them(shop, make_user, hall):
    event_id, seats = hall()
    ok(shop.hold(make_user(), event_id, seatIds=[seats[0], seats[1]]), 201)
    ok(shop.book(make_user(), event_id, seatIds=[seats[4]]), 201)
    late = make_user()
    for ask in (shop.book, shop.hold):
        body = refused(ask(late, event_id, seatIds=[seats[2], seats[4], seats[1]]), 409, "seats_taken")
        assert body["unavailableSeatIds"] == [seats[1], seats[4]]
        assert refused(ask(late, event_id, seatIds=[seats[0]]), 409, "seats_taken")["unavailableSeatIds"] == [seats[0]]
    assert statuses(shop, event_id) == ["HELD", "HELD", "AVAILABLE", "AVAILABLE", "BOOKED", "AVAILABLE", "AVAILABLE"]
    assert shop.available(event_id) == 4  # nothing taken by the refused requests
    ok(shop.book(late, event_id, seatIds=[seats[2], seats[3]]), 201)


def test_a_cancel_frees_the_seats(shop, customer, make_user, hall):
    event_id, seats = hall()
    booking = ok(shop.book(customer, event_id, seatIds=seats[:3]), 201)
    ok(shop.cancel(customer, booking["id"]))
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7 and shop.available(event_id) == 7
    assert ok(shop.cancel(customer, booking["id"]))["seats"] == booking["seats"]  # again: no change, seats kept
    assert shop.types(event_id)["Stalls"]["availableQuantity"] == 4
    ok(shop.book(make_user(), event_id, seatIds=seats[:3]), 201)


def test_a_release_frees_the_seats(shop, customer, make_user, hall):
    event_id, seats = hall()
    held = ok(shop.hold(customer, event_id, seatIds=[seats[6]]), 201)
    assert shop.release(customer, held["id"]).status_code == 204
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7 and shop.available(event_id) == 7
    assert ok(shop.client.get(f"/api/holds/{held['id']}", headers=customer.headers))["seats"] == []
    ok(shop.hold(make_user(), event_id, seatIds=[seats[6]]), 201)


def test_an_expiry_frees_the_seats(client, shop, customer, hall, expire_hold):
    event_id, seats = hall()
    held = ok(shop.hold(customer, event_id, seatIds=[seats[2], seats[3]]), 201)
    client.get("/api/health")  # starts this process's sweeper
    expire_hold(held["id"])
    wait_until(lambda: statuses(shop, event_id) == ["AVAILABLE"] * 7, 10, message="the expired hold's seats back")
    assert ok(client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "EXPIRED"
    refused(shop.confirm(customer, held["id"]), 409, "hold_expired")
    assert shop.available(event_id) == 7


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # the sweep runs only where put below
@pytest.mark.parametrize("ask", ["book", "hold"])
def test_seats_freed_between_a_refusal_and_its_explanation_are_taken(app, monkeypatch, shop, customer,
                                                                     make_user, hall, ask, expire_hold):
    """A rival's hold has expired, but no sweep has freed its seats: the sale takes
    nothing. The sweep lands before the refusal is explained, so nothing stands in the
    way any more: the sale is tried once more and takes the seats (it was a 409
    not_enough_tickets saying the tickets had been taken)."""
    from eventbook import sales
    from eventbook.holds import service as holds

    event_id, seats = hall()
    holder = make_user()
    rival = ok(shop.hold(holder, event_id, seatIds=[seats[0], seats[1]]), 201)
    expire_hold(rival["id"])
    strategy = app.extensions["eventbook.sales"]
    sale = getattr(strategy, ask)

    def swept_after_a_refusal(*args):
        try:
            return sale(*args)
        except sales.NotTaken:
            with app.app_context():  # a sweep of its own, as another thread's would be
                holds.expire_due()
            raise

    monkeypatch.setattr(strategy, ask, swept_after_a_refusal)
    taken = ok(getattr(shop, ask)(customer, event_id, seatIds=[seats[1], seats[2]]), 201)
    assert [seat["id"] for seat in taken["seats"]] == [seats[1], seats[2]]
    now = "BOOKED" if ask == "book" else "HELD"
    assert statuses(shop, event_id) == ["AVAILABLE", now, now] + ["AVAILABLE"] * 4
    assert ok(shop.client.get(f"/api/holds/{rival['id']}", headers=holder.headers))["status"] == "EXPIRED"


def test_a_seat_booking_is_refused_like_any_other(shop, customer, make_user, hall, set_event_date):
    event_id, seats = hall()
    ok(shop.book(customer, event_id, seatIds=[seats[0]]), 201)
    refused(shop.book(customer, event_id, seatIds=[seats[1]]), 409, "already_booked")
    refused(shop.hold(customer, event_id, seatIds=[seats[1]]), 409, "already_booked")
    set_event_date(event_id, datetime.now(timezone.utc) - timedelta(minutes=1))
    refused(shop.book(make_user(), event_id, seatIds=[seats[1]]), 409, "event_closed")
    assert statuses(shop, event_id).count("AVAILABLE") == 6


def test_a_seat_outside_its_types_sales_window(shop, customer, hall):
    event_id, seats = hall(ticketTypes=[{**TYPES[0], "salesStart": in_days(10)}, TYPES[1]])
    body = refused(shop.book(customer, event_id, seatIds=[seats[4], seats[0]]), 409, "sales_closed")
    assert body["ticketTypeId"] == shop.types(event_id)["Stalls"]["id"]
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7
    ok(shop.book(customer, event_id, seatIds=[seats[4]]), 201)


def test_a_repeated_idempotency_key_books_its_seats_once(shop, customer, hall):
    event_id, seats = hall()
    first = shop.book(customer, event_id, key="seat-key-1", seatIds=[seats[0], seats[1]])
    again = shop.book(customer, event_id, key="seat-key-1", seatIds=[seats[0], seats[1]])
    assert ok(first, 201)["id"] == ok(again, 201)["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert ok(again, 201)["seats"] == ok(first, 201)["seats"]
    refused(shop.book(customer, event_id, key="seat-key-1", seatIds=[seats[2]]), 409, "idempotency_key_reused")
    assert statuses(shop, event_id).count("BOOKED") == 2


BAD_SEAT_ORDERS = {
    "no seats": {"seatIds": []},
    "11 seats": {"seatIds": list(range(1, 12))},
    "a seat twice": {"seatIds": ["first", "first"]},
    "seats and a count": {"seatIds": ["first"], "ticketsCount": 1},
    "a seat id as text": {"seatIds": ["1"]},
}
# Seats this event does not have: not found, whoever's they are.
UNKNOWN_SEAT_ORDERS = {
    "a seat of another event": {"seatIds": ["first", "elsewhere"]},
    "no such seat": {"seatIds": [2_000_000_000]},
}


@pytest.mark.parametrize("case", [*BAD_SEAT_ORDERS, *UNKNOWN_SEAT_ORDERS])
def test_bad_seat_ids_are_refused_and_take_nothing(shop, customer, hall, case):
    event_id, seats = hall()
    other_id, elsewhere = hall()
    named = {"first": seats[0], "elsewhere": elsewhere[0]}
    order = BAD_SEAT_ORDERS.get(case) or UNKNOWN_SEAT_ORDERS[case]
    body = {key: [named.get(seat, seat) for seat in value] if key == "seatIds" else value for key, value in order.items()}
    status, code = (422, "validation_error") if case in BAD_SEAT_ORDERS else (404, "not_found")
    for ask in (shop.book, shop.hold):
        refused(ask(customer, event_id, **body), status, code)
    assert statuses(shop, event_id) == statuses(shop, other_id) == ["AVAILABLE"] * 7


def test_seat_ids_on_a_general_event_are_a_422(shop, customer, make_event, hall):
    _, seats = hall()
    general = make_event(totalTickets=5)
    body = refused(shop.book(customer, general["id"], seatIds=[seats[0]]), 422, "validation_error")
    assert "seatIds" in body["errors"]
    assert shop.available(general["id"]) == 5


def test_a_count_order_on_a_reserved_event_is_a_422(shop, customer, make_user, hall):
    event_id, _ = hall()
    stalls, holder = shop.types(event_id)["Stalls"]["id"], make_user()
    booking = shop.book(customer, event_id, ticketsCount=2, ticketTypeId=stalls)
    held = shop.hold(holder, event_id, items=[{"ticketTypeId": stalls, "count": 1}])
    assert "seatIds" in refused(booking, 422, "validation_error")["errors"]
    assert "seatIds" in refused(held, 422, "validation_error")["errors"]
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7


def test_cancelling_a_seated_event_frees_its_seats(client, shop, customer, make_user, organizer, hall):
    event_id, seats = hall()
    ok(shop.book(customer, event_id, seatIds=[seats[0]]), 201)
    ok(shop.hold(make_user(), event_id, seatIds=[seats[1]]), 201)
    url = f"/api/events/{event_id}/seats"
    tag = ok(client.get(url)) and client.get(url).headers["ETag"]
    assert client.delete(f"/api/events/{event_id}", headers=organizer.headers).status_code == 204
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7
    assert ok(client.get(url, headers={"If-None-Match": tag}))  # a 200: the seats changed


# -- seats that get their rows when first asked for ---------------------------------------

SEATS_OFF_THEIR_RANGES = """
    SELECT s.id, s.event_id, s.range_id, r.event_id FROM seats s
    LEFT JOIN seat_ranges r ON r.id = s.range_id
    WHERE r.id IS NULL OR r.event_id != s.event_id OR r.ticket_type_id != s.ticket_type_id
       OR r.section != s.section OR r.row != s.row OR s.number NOT BETWEEN r.first_number AND r.last_number
       OR s.id != r.first_seat_id + s.number - r.first_number OR s.position != r.position + s.number - r.first_number
"""


def seats_off_their_ranges(url):
    """Seat rows that are not their range's seat (of its event, type, place and id): rows."""
    from config import normalize_database_url

    engine = sa.create_engine(normalize_database_url(url))
    with engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(sa.text(SEATS_OFF_THEIR_RANGES))]
    engine.dispose()
    return found


def named(body):
    """The seat ids a 404 for seats not of the event names, in its message's order."""
    return [int(number) for number in re.findall(r"\d+", body["message"].partition(":")[2])]


def test_a_seat_of_another_event_that_has_its_row_is_not_found_and_takes_nothing(shop, customer, make_user, hall,
                                                                                 database_url):
    """A seat's row is written under its own event: one that has it there (booked, or
    held and released: AVAILABLE) is no seat of this event, refused as any seat of
    another event is, and neither event changes."""
    event_id, seats = hall()
    other_id, elsewhere = hall()
    buyer, holder = make_user(), make_user()
    booking = ok(shop.book(buyer, other_id, seatIds=[elsewhere[0]]), 201)
    held = ok(shop.hold(holder, other_id, seatIds=[elsewhere[1]]), 201)
    assert shop.release(holder, held["id"]).status_code == 204  # its row stays, AVAILABLE
    before = shop.event(event_id), shop.event(other_id)
    for ask in (shop.book, shop.hold):
        for asked in ([seats[0], elsewhere[0]], [elsewhere[1]], [elsewhere[1], seats[1], elsewhere[0]]):
            body = refused(ask(customer, event_id, seatIds=asked), 404, "not_found")
            assert named(body) == [seat for seat in asked if seat in elsewhere]
            row_less = [{elsewhere[0]: elsewhere[2], elsewhere[1]: elsewhere[3]}.get(seat, seat) for seat in asked]
            answer = refused(ask(customer, event_id, seatIds=row_less), 404, "not_found")  # seats with no row
            assert named(answer) == [seat for seat in row_less if seat in elsewhere]
            assert {**answer, "message": None} == {**body, "message": None}
    assert (shop.event(event_id), shop.event(other_id)) == before
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7
    assert statuses(shop, other_id) == ["BOOKED"] + ["AVAILABLE"] * 6
    kept = ok(shop.client.get(f"/api/bookings/{booking['id']}", headers=buyer.headers))
    assert (kept["status"], kept["seats"]) == ("CONFIRMED", booking["seats"])
    ok(shop.book(customer, event_id, seatIds=[seats[0], seats[1]]), 201)  # the refusals held nothing of theirs
    assert seats_off_their_ranges(database_url) == []


def test_seat_ids_past_32_bits_are_valid_and_those_that_are_no_seat_not_found(shop, customer, hall):
    """A seat id is a big integer up to 2**53 - 1 (what a JSON number holds exactly): one
    of those that is no seat, or next to a seat of the map, is not found; 2**53 is a 422."""
    event_id, seats = hall()
    strangers = [2**31 - 1, 2**31, 2**40, 2**53 - 1, seats[0] - 1, seats[3] + 1, seats[6] + 1]
    for ask in (shop.book, shop.hold):
        for stranger in strangers:
            assert named(refused(ask(customer, event_id, seatIds=[stranger]), 404, "not_found")) == [stranger]
            body = refused(ask(customer, event_id, seatIds=[seats[2], stranger]), 404, "not_found")
            assert named(body) == [stranger]
        for too_big in ([2**53], [seats[0], 2**53], [2**64]):
            assert "seatIds" in refused(ask(customer, event_id, seatIds=too_big), 422, "validation_error")["errors"]
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7 and shop.available(event_id) == 7


def test_seats_whose_ids_are_past_32_bits_are_sold(app, client, shop, customer, make_user, organizer, hall):
    """A range's seats have the ids from its id * 100,000 on: once ranges have been
    written 21,475 times (every range of every map ever put), a new map's seat ids pass
    2**31 - 1. Its seats are put, listed, held, booked, freed and refused as any.
    (The ranges' id counter is moved there in the database: through the API it takes
    about 15 PUTs of 1,400 ranges.)"""
    event_id, _ = hall()
    with app.app_context():
        from eventbook.extensions import db

        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("SELECT setval(pg_get_serial_sequence('seat_ranges', 'id'), 21474)"))
        else:
            db.session.execute(sa.text("UPDATE sqlite_sequence SET seq = 21474 WHERE name = 'seat_ranges'"))
        db.session.commit()
    types = {name: ticket_type["id"] for name, ticket_type in shop.types(event_id).items()}
    body = {"sections": [{"name": "Stalls", "ticketTypeId": types["Stalls"], "rows": [{"label": "A", "from": 1, "to": 4}]},
                         {"name": "Balcony", "ticketTypeId": types["Balcony"], "rows": [{"label": "B", "from": 1, "to": 3}]}]}
    assert ok(client.put(f"/api/events/{event_id}/seats", json=body, headers=organizer.headers)) == {"seats": 7}
    seats = [seat["id"] for seat in ok(client.get(f"/api/events/{event_id}/seats"))]
    assert seats == [21475 * 100_000 + n for n in range(4)] + [21476 * 100_000 + n for n in range(3)]
    assert min(seats) > 2**31 - 1
    held = ok(shop.hold(customer, event_id, seatIds=[seats[5], seats[0]]), 201)
    assert [seat["id"] for seat in held["seats"]] == [seats[0], seats[5]]
    buyer = make_user()
    booking = ok(shop.book(buyer, event_id, seatIds=[seats[6]]), 201)
    assert booking["seats"] == [{"id": seats[6], "section": "Balcony", "row": "B", "number": 3}]
    assert refused(shop.book(make_user(), event_id, seatIds=[seats[0], seats[1]]), 409,
                   "seats_taken")["unavailableSeatIds"] == [seats[0]]
    assert named(refused(shop.book(make_user(), event_id, seatIds=[seats[3] + 1]), 404, "not_found")) == [seats[3] + 1]
    confirmed = ok(shop.confirm(customer, held["id"]), 201)
    assert confirmed["seats"] == held["seats"]
    assert statuses(shop, event_id) == ["BOOKED", "AVAILABLE", "AVAILABLE", "AVAILABLE", "AVAILABLE", "BOOKED", "BOOKED"]
    ok(shop.cancel(buyer, booking["id"]))
    assert statuses(shop, event_id)[6] == "AVAILABLE" and shop.available(event_id) == 5


def test_a_replaced_map_s_seats_are_no_seats_and_none_comes_back(client, shop, customer, make_user, organizer, hall,
                                                                   database_url):
    """A new map's seat ids are all greater than the old one's: an old id, even one whose
    seat had its row (asked for, then freed), is no seat of the event any more, though
    the new map has a seat at the same place."""
    event_id, old = hall()
    holder = make_user()
    held = ok(shop.hold(holder, event_id, seatIds=[old[0], old[5]]), 201)  # their rows are written
    assert shop.release(holder, held["id"]).status_code == 204
    booking = ok(shop.book(customer, event_id, seatIds=[old[1]]), 201)
    ok(shop.cancel(customer, booking["id"]))  # nothing held or booked: the map may be replaced
    types = {name: ticket_type["id"] for name, ticket_type in shop.types(event_id).items()}
    body = {"sections": [  # Stalls A1-A4 again, now after a Circle
        {"name": "Circle", "ticketTypeId": types["Balcony"], "rows": [{"label": "A", "from": 1, "to": 3}]},
        {"name": "Stalls", "ticketTypeId": types["Stalls"], "rows": [{"label": "A", "from": 1, "to": 4}]}]}
    assert ok(client.put(f"/api/events/{event_id}/seats", json=body, headers=organizer.headers)) == {"seats": 7}
    listed = ok(client.get(f"/api/events/{event_id}/seats"))
    assert [(seat["section"], seat["row"], seat["number"], seat["status"]) for seat in listed] == [
        ("Circle", "A", n, "AVAILABLE") for n in (1, 2, 3)] + [("Stalls", "A", n, "AVAILABLE") for n in (1, 2, 3, 4)]
    new = [seat["id"] for seat in listed]
    assert min(new) > max(old)
    buyer = make_user()
    for ask in (shop.book, shop.hold):
        for asked in ([old[0]], [old[1], old[5]], [new[3], old[0]], [old[2]]):
            body = refused(ask(buyer, event_id, seatIds=asked), 404, "not_found")
            assert named(body) == [seat for seat in asked if seat in old]
    assert statuses(shop, event_id) == ["AVAILABLE"] * 7 and shop.available(event_id) == 7
    booking = ok(shop.book(buyer, event_id, seatIds=[new[4], new[0]]), 201)
    assert booking["seats"] == [{"id": new[0], "section": "Circle", "row": "A", "number": 1},
                                {"id": new[4], "section": "Stalls", "row": "A", "number": 2}]
    assert statuses(shop, event_id) == ["BOOKED"] + ["AVAILABLE"] * 3 + ["BOOKED"] + ["AVAILABLE"] * 2
    assert seats_off_their_ranges(database_url) == []


def test_freed_seats_are_taken_again_through_the_rows_they_kept(client, shop, make_user, hall, expire_hold):
    """A seat freed by a cancel, a release or an expiry keeps its row, AVAILABLE: another
    customer's hold, its confirm, or a booking, takes it again, with seats that never
    had one."""
    event_id, seats = hall()
    first, second, third = make_user(), make_user(), make_user()
    booking = ok(shop.book(first, event_id, seatIds=[seats[0], seats[1]]), 201)
    ok(shop.cancel(first, booking["id"]))
    released = ok(shop.hold(second, event_id, seatIds=[seats[2]]), 201)
    assert shop.release(second, released["id"]).status_code == 204
    expired = ok(shop.hold(third, event_id, seatIds=[seats[3], seats[5]]), 201)
    client.get("/api/health")  # starts this process's sweeper
    expire_hold(expired["id"])
    wait_until(lambda: statuses(shop, event_id) == ["AVAILABLE"] * 7, 10, message="the expired hold's seats back")
    holder, buyer = make_user(), make_user()
    held = ok(shop.hold(holder, event_id, seatIds=[seats[5], seats[4], seats[0], seats[3]]), 201)  # seats[4]: no row yet
    assert [seat["id"] for seat in held["seats"]] == [seats[0], seats[3], seats[4], seats[5]]
    assert statuses(shop, event_id) == ["HELD", "AVAILABLE", "AVAILABLE", "HELD", "HELD", "HELD", "AVAILABLE"]
    assert ok(shop.confirm(holder, held["id"]), 201)["seats"] == held["seats"]
    booked = ok(shop.book(buyer, event_id, seatIds=[seats[2], seats[1]]), 201)
    assert [seat["id"] for seat in booked["seats"]] == [seats[1], seats[2]]
    assert statuses(shop, event_id) == ["BOOKED"] * 6 + ["AVAILABLE"]
    assert shop.available(event_id) == 1
    assert refused(shop.book(first, event_id, seatIds=[seats[1]]), 409, "seats_taken")["unavailableSeatIds"] == [seats[1]]


@pytest.mark.postgresql_only("SQLite has no exclusion constraint: the map's validator keeps a row's ranges apart")
def test_two_ranges_of_one_row_sharing_a_seat_are_refused_by_the_database(app, hall):
    """The exclusion constraint behind "a seat's place is its range's": a range of the
    same event, section and row with a number of another one is refused, whatever else
    it says; a range next to it, or at the same numbers in another row, section or event,
    is not."""
    from eventbook.extensions import db

    event_id, _ = hall()
    other_id, _ = hall()
    insert = sa.text(
        "INSERT INTO seat_ranges (event_id, ticket_type_id, section, row, first_number, last_number, position, "
        "first_seat_id) SELECT :event, ticket_type_id, :section, :row, :first, :last, :position, 0 FROM seat_ranges "
        "WHERE event_id = :event AND position = 0")  # the range of Stalls A1-A4, each event's first
    place = {"event": event_id, "section": "Stalls", "row": "A", "position": 1000}
    with app.app_context():
        for first, last in ((4, 6), (2, 3), (1, 4), (0, 1), (1, 100)):
            with pytest.raises(sa.exc.IntegrityError) as refusal, db.engine.begin() as connection:
                connection.execute(insert, {**place, "first": first, "last": last})
            assert "ex_seat_ranges_place" in str(refusal.value.orig)
        with db.engine.connect() as connection:  # all of these at once, then undone
            for position, allowed in enumerate(({"first": 5, "last": 6}, {"row": "B", "first": 1, "last": 4},
                                                {"section": "Balcony", "first": 1, "last": 4},
                                                {"row": "Z", "first": 1, "last": 4},
                                                {"event": other_id, "row": "Z", "first": 1, "last": 4}), 1000):
                assert connection.execute(insert, {**place, "position": position, **allowed}).rowcount == 1
            connection.rollback()
