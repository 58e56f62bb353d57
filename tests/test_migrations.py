"""The migrations: they build the schema the models describe, and an upgrade keeps what
a running shop already holds (its seats, their holds and bookings, their tickets)."""

import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import bcrypt
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from eventbook import create_app, database
from eventbook.extensions import db
from tests import support
from tests.support import PASSWORD, ok, wait_until

# Made by the search migration on purpose, not by the models: SQLite's FTS5 table (with
# its shadow tables) and PostgreSQL's generated tsvector column and its index.
SEARCH_ONLY = ("events_search", "search_vector", "ix_events_search_vector")


def search_only(_object, name, _type, _reflected, _compare_to):
    return not (name or "").startswith(SEARCH_ONLY)


def test_the_migrations_build_what_the_models_describe(database_url):
    app = create_app(support.test_config(database_url))
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": search_only})
        differences = compare_metadata(context, db.metadata)
        database.dispose()
    assert differences == []


@pytest.fixture
def at_revision(backend, tmp_path):
    """at_revision(revision) -> the URL of a new database migrated only that far."""
    made = []

    def make(revision):
        made.append(support.create_database(backend, tmp_path, revision=revision))
        return made[-1]

    yield make
    for url in made:
        support.drop_database(url)


# The columns today's code reads that 0006's schema lacks (NULL for every row then).
LATER_COLUMNS = {"ticket_types": "removed_at", "tickets": "check_in_nonce_at"}  # 0009, 0016


def later_columns(url, change):
    """Today's code writes the accounts and events at 0006, whose schema lacks columns the
    code reads (`LATER_COLUMNS`): they are added (`change` "ADD") for the writing and
    dropped ("DROP") before the upgrade, which so starts from 0006 exactly."""
    engine = sa.create_engine(support._normalized(url))
    with engine.begin() as connection:
        for table, column in LATER_COLUMNS.items():
            kind = " TIMESTAMP WITH TIME ZONE" if change == "ADD" else ""
            connection.execute(sa.text(f"ALTER TABLE {table} {change} COLUMN {column}{kind}"))
    engine.dispose()


def insert(connection, table, **row):
    """INSERT one row; its id. Times go in as the app writes them: naive UTC on SQLite."""
    if connection.dialect.name == "sqlite":
        row = {name: value.astimezone(timezone.utc).replace(tzinfo=None) if isinstance(value, datetime) else value
               for name, value in row.items()}
    columns = ", ".join(row)
    return connection.execute(sa.text(
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + name for name in row)}) RETURNING id"), row
    ).scalar_one()


def legacy_seats(connection, event, ticket_type, section, row, numbers, position):
    """Seats of a map as the code before 0018 wrote them, one row each, AVAILABLE, their
    ids given by the table: {number: id}."""
    return {number: insert(connection, "seats", event_id=event, ticket_type_id=ticket_type, section=section,
                           row=row, number=number, position=position + index, status="AVAILABLE")
            for index, number in enumerate(numbers)}


def legacy_sale(connection, kind, event, ticket_type, user, price, seat_ids):
    """A booking (`kind` "bookings": with its tickets, codes and all) or a hold ("holds")
    of these seats of one type, as the code before 0018 wrote it, with the event's and
    the type's counts taken down as a sale does: (its id, its tickets' codes)."""
    now, count = datetime.now(timezone.utc), len(seat_ids)
    total = str(Decimal(price) * count)  # text: SQLite's driver takes no Decimal
    if kind == "bookings":
        owner = insert(connection, "bookings", event_id=event, user_id=user, tickets_count=count,
                       status="CONFIRMED", created_at=now, total_amount=total)
        status, column = "BOOKED", "booking_id"
    else:
        owner = insert(connection, "holds", event_id=event, user_id=user, tickets_count=count, total_amount=total,
                       status="HELD", expires_at=now + timedelta(minutes=10), created_at=now)
        status, column = "HELD", "hold_id"
    insert(connection, "items", **{column: owner}, ticket_type_id=ticket_type, count=count, unit_price=price)
    codes = []
    for seat_id in seat_ids:
        connection.execute(sa.text(f"UPDATE seats SET status = :status, {column} = :owner WHERE id = :id"),
                           {"status": status, "owner": owner, "id": seat_id})
        if kind == "bookings":
            codes.append(secrets.token_urlsafe(16))
            insert(connection, "tickets", booking_id=owner, ticket_type_id=ticket_type, seat_id=seat_id,
                   code=codes[-1])
    connection.execute(sa.text("UPDATE events SET available_tickets = available_tickets - :count WHERE id = :id"),
                       {"count": count, "id": event})
    connection.execute(sa.text(
        "UPDATE ticket_types SET available_quantity = available_quantity - :count WHERE id = :id"),
        {"count": count, "id": ticket_type})
    return owner, codes


def test_upgrading_to_one_seat_key_keeps_the_seats_their_sales_and_tickets(at_revision):
    """A seated shop at 0006 (its accounts and event made by today's code; its seats, a
    booking with its tickets and a hold written with SQL as the code of 0006 wrote them:
    today's code writes seat maps as ranges) upgraded to head: every seat keeps its id
    and status, the booking its tickets, the hold its seat, and the shop goes on selling."""
    at_0006 = at_revision("0006")  # before seats had one key to their type and event
    later_columns(at_0006, "ADD")
    app = create_app(support.test_config(at_0006))
    client = app.test_client()

    def token(role, email):
        ok(client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "role": role}), 201)
        login = ok(client.post("/api/auth/login", json={"email": email, "password": PASSWORD}))
        return {"Authorization": f"Bearer {login['token']}"}, login["user"]["id"]

    (organizer, _), (customer, customer_id), (other, other_id) = (
        token("ORGANIZER", "organizer@example.com"), token("CUSTOMER", "customer@example.com"),
        token("CUSTOMER", "other@example.com"))
    event = ok(client.post("/api/events", headers=organizer, json={
        "title": "Upgrade night", "date": "2030-06-01T20:00:00Z", "location": "Hall", "totalTickets": 6,
        "seating": "RESERVED", "ticketTypes": [{"name": "Stalls", "price": "25.00", "quantity": 6}]}), 201)
    type_id = event["ticketTypes"][0]["id"]
    support.stop_background(app)
    later_columns(at_0006, "DROP")
    engine = sa.create_engine(support._normalized(at_0006))
    with engine.begin() as connection:
        ids = list(legacy_seats(connection, event["id"], type_id, "Stalls", "A", range(1, 7), 0).values())
        booking, codes = legacy_sale(connection, "bookings", event["id"], type_id, customer_id, "25.00", ids[:2])
        hold, _ = legacy_sale(connection, "holds", event["id"], type_id, other_id, "25.00", ids[2:3])
    engine.dispose()

    support.migrate(at_0006)

    app = create_app(support.test_config(at_0006))
    client = app.test_client()

    def ref(index):
        return {"id": ids[index], "section": "Stalls", "row": "A", "number": index + 1}

    shown = ok(client.get(f"/api/bookings/{booking}", headers=customer))
    assert (shown["status"], shown["ticketsCount"], shown["totalAmount"]) == ("CONFIRMED", 2, "50.00")
    assert shown["items"] == [{"ticketTypeId": type_id, "count": 2, "price": "25.00"}]
    assert shown["seats"] == [ref(0), ref(1)]
    tickets = ok(client.get(f"/api/bookings/{booking}/tickets", headers=customer))
    assert [(ticket["seat"], ticket["code"]) for ticket in tickets] == [(ref(0), codes[0]), (ref(1), codes[1])]
    held = ok(client.get(f"/api/holds/{hold}", headers=other))
    assert (held["status"], held["ticketsCount"], held["seats"]) == ("HELD", 1, [ref(2)])
    assert ok(client.get(f"/api/events/{event['id']}/seats")) == [
        {**ref(index), "ticketTypeId": type_id, "status": status}
        for index, status in enumerate(["BOOKED", "BOOKED", "HELD", "AVAILABLE", "AVAILABLE", "AVAILABLE"])]
    shown = ok(client.get(f"/api/events/{event['id']}"))
    assert (shown["availableTickets"], shown["ticketTypes"][0]["availableQuantity"]) == (3, 3)
    # the upgraded shop goes on selling, and a new map's seats get new ids
    third, _ = token("CUSTOMER", "third@example.com")
    support.refused(client.post("/api/bookings", headers=third, json={"eventId": event["id"], "seatIds": ids[2:4]}),
                    409, "seats_taken")
    ok(client.delete(f"/api/holds/{hold}", headers=other), 204)
    ok(client.post("/api/bookings", headers=other, json={"eventId": event["id"], "seatIds": ids[2:4]}), 201)
    assert [seat["status"] for seat in ok(client.get(f"/api/events/{event['id']}/seats"))] == [
        "BOOKED", "BOOKED", "BOOKED", "BOOKED", "AVAILABLE", "AVAILABLE"]
    second = ok(client.post("/api/events", headers=organizer, json={
        "title": "After the upgrade", "date": "2030-07-01T20:00:00Z", "location": "Hall", "totalTickets": 2,
        "seating": "RESERVED"}), 201)
    second_map = {"sections": [{"name": "Pit", "ticketTypeId": second["ticketTypes"][0]["id"],
                                "rows": [{"label": "1", "from": 1, "to": 2}]}]}
    ok(client.put(f"/api/events/{second['id']}/seats", headers=organizer, json=second_map))
    assert min(seat["id"] for seat in ok(client.get(f"/api/events/{second['id']}/seats"))) > max(ids)
    support.stop_background(app)
    assert support.invariant_violations(at_0006) == []


def test_seats_from_before_ranges_keep_their_ids_statuses_and_sales(at_revision):
    """0018: seats written one row each, as the code before it wrote them, become ranges
    that keep every seat's id. Two maps put at the same time took their ids from one
    sequence in turn, so a row's ids jump where the other map took some; a row with an
    aisle is two ranges, though its ids follow on across the aisle; a later map's seats
    have ids from 1,000,000 on (a shop whose maps were replaced many times), more than
    100,000 times the number of ranges. After the upgrade the seats are listed, sold and
    refused by their old ids, and a new map's seats get ids past every old one."""
    at_0017 = at_revision("0017")
    now = datetime.now(timezone.utc)
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    engine = sa.create_engine(support._normalized(at_0017))
    with engine.begin() as connection:
        users = {name: insert(connection, "users", email=f"{name}@example.com", password_hash=password_hash,
                              role=role, created_at=now, disabled=False)
                 for name, role in (("organizer", "ORGANIZER"), ("customer", "CUSTOMER"), ("holder", "CUSTOMER"),
                                    ("buyer", "CUSTOMER"))}
        events, types = {}, {}  # by the name of their one section, and type
        for title, name, count in (("Aisle night", "Stalls", 10), ("Next door", "Circle", 4)):
            events[name] = insert(connection, "events", title=title, date=now + timedelta(days=30), location="Hall",
                                  total_tickets=count, available_tickets=count, status="SCHEDULED",
                                  organizer_id=users["organizer"], created_at=now, updated_at=now, seating="RESERVED")
            types[name] = insert(connection, "ticket_types", event_id=events[name], name=name, price="20.00",
                                 quantity=count, available_quantity=count)
        seats = {}  # (section, row, number) -> id

        def put(section, row, numbers, position):
            made = legacy_seats(connection, events[section], types[section], section, row, numbers, position)
            seats.update({(section, row, number): seat_id for number, seat_id in made.items()})

        put("Stalls", "A", [1, 2], 0)
        put("Circle", "A", [1, 2], 0)
        put("Stalls", "A", [3], 2)
        put("Stalls", "A", [7, 8, 9], 3)  # the aisle: 4 to 6 are no seats
        put("Circle", "A", [3, 4], 2)
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT setval('seats_id_seq', 999999)"))
        else:
            connection.execute(sa.text("UPDATE sqlite_sequence SET seq = 999999 WHERE name = 'seats'"))
        put("Stalls", "B", [1, 2, 3, 4], 6)
        booking, codes = legacy_sale(connection, "bookings", events["Stalls"], types["Stalls"], users["customer"],
                                     "20.00", [seats["Stalls", "A", 2], seats["Stalls", "A", 3]])
        hold, _ = legacy_sale(connection, "holds", events["Stalls"], types["Stalls"], users["holder"], "20.00",
                              [seats["Stalls", "A", 8]])
    engine.dispose()
    assert seats["Stalls", "A", 3] - seats["Stalls", "A", 2] > 1 and seats["Stalls", "B", 1] == 1000000

    support.migrate(at_0017)

    app = create_app(support.test_config(at_0017))
    client = app.test_client()

    def headers(name):
        login = ok(client.post("/api/auth/login", json={"email": f"{name}@example.com", "password": PASSWORD}))
        return {"Authorization": f"Bearer {login['token']}"}

    def ref(section, row, number):
        return {"id": seats[section, row, number], "section": section, "row": row, "number": number}

    def listed(section, statuses):
        """The seats of a section's event as listed, with these statuses: in map order,
        here rows A then B, numbers ascending."""
        places = sorted((place for place in seats if place[0] == section), key=lambda place: (place[1], place[2]))
        return [{**ref(*place), "ticketTypeId": types[section], "status": statuses.get(place[1:], "AVAILABLE")}
                for place in places]

    taken = {("A", 2): "BOOKED", ("A", 3): "BOOKED", ("A", 8): "HELD"}
    assert ok(client.get(f"/api/events/{events['Stalls']}/seats")) == listed("Stalls", taken)
    assert ok(client.get(f"/api/events/{events['Circle']}/seats")) == listed("Circle", {})
    customer, holder, buyer = headers("customer"), headers("holder"), headers("buyer")
    shown = ok(client.get(f"/api/bookings/{booking}", headers=customer))
    assert (shown["status"], shown["seats"]) == ("CONFIRMED", [ref("Stalls", "A", 2), ref("Stalls", "A", 3)])
    tickets = ok(client.get(f"/api/bookings/{booking}/tickets", headers=customer))
    assert [(ticket["seat"], ticket["code"]) for ticket in tickets] == [
        (ref("Stalls", "A", 2), codes[0]), (ref("Stalls", "A", 3), codes[1])]
    held = ok(client.get(f"/api/holds/{hold}", headers=holder))
    assert (held["status"], held["seats"]) == ("HELD", [ref("Stalls", "A", 8)])
    # sold and refused by their old ids
    asked = [seats["Stalls", "A", 1], seats["Stalls", "A", 2], seats["Stalls", "A", 8]]
    refusal = support.refused(client.post("/api/bookings", headers=buyer, json={
        "eventId": events["Stalls"], "seatIds": asked}), 409, "seats_taken")
    assert refusal["unavailableSeatIds"] == [seats["Stalls", "A", 2], seats["Stalls", "A", 8]]
    bought = ok(client.post("/api/bookings", headers=buyer, json={
        "eventId": events["Stalls"], "seatIds": [seats["Stalls", "A", 9], seats["Stalls", "B", 1]]}), 201)
    assert bought["seats"] == [ref("Stalls", "A", 9), ref("Stalls", "B", 1)]
    assert ok(client.get(f"/api/events/{events['Stalls']}/seats")) == listed(
        "Stalls", {**taken, ("A", 9): "BOOKED", ("B", 1): "BOOKED"})
    shown = ok(client.get(f"/api/events/{events['Stalls']}"))
    assert (shown["availableTickets"], shown["ticketTypes"][0]["availableQuantity"]) == (5, 5)
    # a new map, in place of the old one of the other event, has seats past every old id
    ok(client.put(f"/api/events/{events['Circle']}/seats", headers=headers("organizer"), json={"sections": [
        {"name": "Circle", "ticketTypeId": types["Circle"], "rows": [{"label": "A", "from": 1, "to": 6}]}]}))
    new = ok(client.get(f"/api/events/{events['Circle']}/seats"))
    assert [(seat["row"], seat["number"], seat["status"]) for seat in new] == [
        ("A", number, "AVAILABLE") for number in range(1, 7)]
    assert min(seat["id"] for seat in new) > max(seats.values())
    # down to 0017 and up again: below 0018 every seat has its row, with its id and status
    before = {name: ok(client.get(f"/api/events/{events[name]}/seats")) for name in events}
    support.stop_background(app)
    support.migrate(at_0017, "0017", down=True)
    engine = sa.create_engine(support._normalized(at_0017))
    with engine.connect() as connection:
        rows = {tuple(row) for row in connection.execute(sa.text("SELECT id, status FROM seats"))}
    engine.dispose()
    assert rows == {(seat["id"], seat["status"]) for listed_seats in before.values() for seat in listed_seats}
    support.migrate(at_0017)
    app = create_app(support.test_config(at_0017))
    client = app.test_client()
    assert {name: ok(client.get(f"/api/events/{events[name]}/seats")) for name in events} == before
    support.stop_background(app)
    assert support.invariant_violations(at_0017) == []


def test_a_seat_of_a_type_of_another_event_is_refused_by_the_database(database_url):
    """The keys the seat map's PUT and the sales rely on besides their own checks: a
    range's (event, type), and a seat's, is a type of that event. (The app's engine:
    SQLite enforces keys per connection.)"""
    app = create_app(support.test_config(database_url))
    made = {}
    with app.app_context():
        with db.engine.begin() as connection:
            made["users"] = [connection.execute(sa.text(
                "INSERT INTO users (email, password_hash, role, created_at) "
                "VALUES ('keys@example.com', 'x', 'ORGANIZER', CURRENT_TIMESTAMP) RETURNING id")).scalar_one()]
            made["events"] = [connection.execute(sa.text(
                "INSERT INTO events (title, date, location, total_tickets, available_tickets, status, organizer_id, "
                "created_at, updated_at, seating) VALUES (:title, CURRENT_TIMESTAMP, 'Hall', 2, 2, 'SCHEDULED', :user, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'RESERVED') RETURNING id"),
                {"title": title, "user": made["users"][0]}).scalar_one() for title in ("First", "Second")]
            made["ticket_types"] = [connection.execute(sa.text(
                "INSERT INTO ticket_types (event_id, name, price, quantity, available_quantity) "
                "VALUES (:event, 'Seat', 10, 2, 2) RETURNING id"), {"event": event}).scalar_one()
                for event in made["events"]]
        first, _ = made["events"]
        own, stranger = made["ticket_types"]
        seat_range = sa.text(
            "INSERT INTO seat_ranges (event_id, ticket_type_id, section, row, first_number, last_number, position, "
            "first_seat_id) VALUES (:event, :type, 'A', '1', 1, 2, 0, 1) RETURNING id")
        seat = sa.text("INSERT INTO seats (id, range_id, event_id, ticket_type_id, section, row, number, position, "
                       "status) VALUES (1, :range, :event, :type, 'A', '1', 1, 0, 'AVAILABLE') RETURNING id")
        try:
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
                connection.execute(seat_range, {"event": first, "type": stranger})
            with db.engine.begin() as connection:
                made["seat_ranges"] = [connection.execute(seat_range, {"event": first, "type": own}).scalar_one()]
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
                connection.execute(seat, {"range": made["seat_ranges"][0], "event": first, "type": stranger})
            with db.engine.begin() as connection:
                made["seats"] = [connection.execute(seat, {"range": made["seat_ranges"][0], "event": first,
                                                           "type": own}).scalar_one()]
        finally:
            with db.engine.begin() as connection:
                for table in ("seats", "seat_ranges", "ticket_types", "events", "users"):
                    for row_id in made.get(table, []):
                        connection.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
            database.dispose()
    support.stop_background(app)


def test_a_shop_from_before_ticket_types_upgrades_with_its_data(at_revision):
    """Rows of 0003's schema, as that code wrote them: an event, a booking, its
    confirmation and a fan-out row of an event change (one row for all attendees), both
    PENDING and with their own text. On SQLite the upgrade copies tables that other rows
    point at. Today's code delivers both once, with their text, in one batch: the
    fan-out row is expanded after the email before it is recorded as sent."""
    at_0003 = at_revision("0003")  # before ticket types, holds and notification templates
    now = datetime.now(timezone.utc)
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    engine = sa.create_engine(support._normalized(at_0003))
    with engine.begin() as connection:
        organizer = insert(connection, "users", email="old-organizer@example.com", password_hash=password_hash,
                           name="Olga", role="ORGANIZER", created_at=now)
        customer = insert(connection, "users", email="old-customer@example.com", password_hash=password_hash,
                          name="Carl", role="CUSTOMER", created_at=now)
        event = insert(connection, "events", title="Before types", description="d", date=now + timedelta(days=30),
                       location="Hall", total_tickets=10, available_tickets=8, status="SCHEDULED",
                       organizer_id=organizer, created_at=now, updated_at=now)
        booking = insert(connection, "bookings", event_id=event, user_id=customer, tickets_count=2,
                         status="CONFIRMED", created_at=now)
        gone = insert(connection, "users", email="old-gone@example.com", password_hash=password_hash, name="Gina",
                      role="CUSTOMER", created_at=now)
        cancelled = insert(connection, "bookings", event_id=event, user_id=gone, tickets_count=3,
                           status="CANCELLED", created_at=now)
        insert(connection, "notifications", kind="BOOKING_CONFIRMED", user_id=customer,
               recipient="old-customer@example.com", subject="Booking confirmed", body="Your 2 tickets",
               event_id=event, booking_id=booking, status="PENDING", attempts=0, next_attempt_at=now, created_at=now)
        insert(connection, "notifications", kind="EVENT_UPDATED", user_id=None, recipient=None,
               subject="Event updated: Before types", body="The event has a new location.", event_id=event,
               status="PENDING", attempts=0, next_attempt_at=now, created_at=now + timedelta(seconds=1))
    engine.dispose()

    support.migrate(at_0003)

    app = create_app(support.test_config(at_0003))
    client = app.test_client()
    login = ok(client.post("/api/auth/login", json={"email": "old-customer@example.com", "password": PASSWORD}))
    headers = {"Authorization": f"Bearer {login['token']}"}
    shown = ok(client.get(f"/api/events/{event}"))
    assert (shown["totalTickets"], shown["availableTickets"], len(shown["ticketTypes"])) == (10, 8, 1)
    assert shown["ticketTypes"][0]["availableQuantity"] == 8
    mine = ok(client.get(f"/api/bookings/{booking}", headers=headers))
    assert mine["status"] == "CONFIRMED" and mine["ticketsCount"] == 2
    # a cancelled booking has its tickets too, void, as one cancelled today has
    gone = ok(client.post("/api/auth/login", json={"email": "old-gone@example.com", "password": PASSWORD}))
    assert len(ok(client.get(f"/api/bookings/{cancelled}/tickets",
                             headers={"Authorization": f"Bearer {gone['token']}"}))) == 3

    def told():
        notes = {note["kind"]: note for note in ok(client.get("/api/notifications", headers=headers))}
        return notes if all(notes.get(kind, {}).get("status") in ("SENT", "FAILED")
                            for kind in ("EVENT_UPDATED", "BOOKING_CONFIRMED")) else None

    notes = wait_until(told, 10, message="the old fan-out row's email, sent")
    assert notes["EVENT_UPDATED"]["subject"] == "Event updated: Before types"
    assert notes["EVENT_UPDATED"]["body"] == "The event has a new location."
    assert notes["EVENT_UPDATED"]["attempts"] == 1
    assert notes["EVENT_UPDATED"]["status"] == "SENT"
    assert (notes["BOOKING_CONFIRMED"]["status"], notes["BOOKING_CONFIRMED"]["attempts"]) == ("SENT", 1)
    assert notes["BOOKING_CONFIRMED"]["subject"] == "Booking confirmed"
    # the upgraded shop goes on selling and cancelling
    ok(client.post(f"/api/bookings/{booking}/cancel", headers=headers))
    assert ok(client.get(f"/api/events/{event}"))["availableTickets"] == 10
    # and finds its events, old and new, changed and deleted (the search index follows
    # `events` through every table rebuild), never giving a deleted event's id again
    organizer_login = ok(client.post("/api/auth/login", json={"email": "old-organizer@example.com",
                                                              "password": PASSWORD}))
    owner = {"Authorization": f"Bearer {organizer_login['token']}"}
    new = ok(client.post("/api/events", json={"title": "Fresh quartet", "date": support.in_days(40), "location": "Hall",
                                             "totalTickets": 5}, headers=owner), 201)
    assert [found["id"] for found in ok(client.get("/api/events", query_string={"q": "before types"}))] == [event]
    assert [found["id"] for found in ok(client.get("/api/events", query_string={"q": "quartet"}))] == [new["id"]]
    ok(client.patch(f"/api/events/{new['id']}", json={"title": "Fresh trio"}, headers=owner))
    assert ok(client.get("/api/events", query_string={"q": "quartet"})) == []
    assert [found["id"] for found in ok(client.get("/api/events", query_string={"q": "trio"}))] == [new["id"]]
    assert client.delete(f"/api/events/{new['id']}", headers=owner).status_code == 204
    assert ok(client.get("/api/events", query_string={"q": "trio"})) == []
    again = ok(client.post("/api/events", json={"title": "Fresh duo", "date": support.in_days(40), "location": "Hall",
                                               "totalTickets": 5}, headers=owner), 201)
    assert again["id"] > new["id"]
    support.stop_background(app)
    assert support.invariant_violations(at_0003) == []


def test_search_triggers_lost_by_an_early_0008_come_back(backend, at_revision):
    """The first version of 0008 rebuilt SQLite's events without the search index's
    triggers; 0011 makes them again and rebuilds the index (on PostgreSQL it changes
    nothing and search goes on as before)."""
    at_0010 = at_revision("0010")
    if backend == "sqlite":
        engine = sa.create_engine(support._normalized(at_0010))
        with engine.begin() as connection:
            for name in ("insert", "delete", "update"):
                connection.execute(sa.text(f"DROP TRIGGER events_search_{name}"))
        engine.dispose()
    app = create_app(support.test_config(at_0010))
    client = app.test_client()
    ok(client.post("/api/auth/register", json={"email": "o@example.com", "password": PASSWORD, "role": "ORGANIZER"}),
       201)
    organizer = {"Authorization": "Bearer " + ok(client.post("/api/auth/login", json={
        "email": "o@example.com", "password": PASSWORD}))["token"]}
    made = {title: ok(client.post("/api/events", headers=organizer, json={
        "title": title, "date": "2030-06-01T20:00:00Z", "location": "Hall", "totalTickets": 5}), 201)
        for title in ("Theremin night", "Harp morning")}
    support.stop_background(app)

    support.migrate(at_0010)

    app = create_app(support.test_config(at_0010))
    client = app.test_client()
    assert [event["title"] for event in ok(client.get("/api/events?q=theremin"))] == ["Theremin night"]
    ok(client.post("/api/events", headers=organizer, json={
        "title": "Theremin afternoon", "date": "2030-05-01T20:00:00Z", "location": "Hall", "totalTickets": 5}), 201)
    ok(client.patch(f"/api/events/{made['Harp morning']['id']}", headers=organizer,
                    json={"title": "Harp theremin morning"}))
    assert [event["title"] for event in ok(client.get("/api/events?q=theremin"))] == [
        "Theremin afternoon", "Theremin night", "Harp theremin morning"]
    support.stop_background(app)


@pytest.mark.postgresql_only("SQLite has one writer at a time: no deadlock between transactions")
def test_an_upgrade_in_a_deadlock_with_the_running_app_is_run_again(at_revision, capfd):
    """While the app serves, its transactions may hold `events` while waiting for
    `ticket_types`, which the upgrade from 0006 locks first and holds while it then needs
    `events`: PostgreSQL rolls the upgrade back as the deadlock's victim, and the upgrade
    runs again instead of failing the release."""
    at_0006 = at_revision("0006")
    engine = sa.create_engine(support._normalized(at_0006))
    reader, app_like = engine.connect(), engine.connect()
    # The request checks for a deadlock late, so that the upgrade is always the one that
    # finds it, and its victim (PostgreSQL rolls back whichever waiter looks first).
    app_like.execute(sa.text("SET deadlock_timeout = '30s'"))
    app_like.commit()
    reader.execute(sa.text("SELECT 1 FROM ticket_types LIMIT 1"))  # a dump's read: the upgrade queues behind it
    failures = []

    def upgrade():
        try:
            support.migrate(at_0006)
        except BaseException as failure:  # noqa: BLE001 - reported by the test
            failures.append(failure)

    def request():
        try:
            app_like.execute(sa.text("SELECT 1 FROM events LIMIT 1"))
            app_like.execute(sa.text("SELECT 1 FROM ticket_types LIMIT 1"))  # queues behind the upgrade
            time.sleep(0.5)
            app_like.commit()
        except BaseException as failure:  # noqa: BLE001 - reported by the test
            failures.append(failure)

    upgrading = threading.Thread(target=upgrade)
    upgrading.start()
    wait_until(lambda: waiting_for_locks(engine) >= 1)
    serving = threading.Thread(target=request)
    serving.start()
    wait_until(lambda: waiting_for_locks(engine) >= 2)
    reader.commit()  # the upgrade takes ticket_types, then waits for events: a deadlock
    serving.join(60)
    upgrading.join(60)
    assert not serving.is_alive() and not upgrading.is_alive()
    reader.close()
    app_like.close()
    engine.dispose()
    assert "deadlock with the running app" in capfd.readouterr().err  # it happened, and was survived
    assert failures == [] and version_of(at_0006) == ScriptDirectory(str(support.ROOT / "migrations")).get_current_head()


@pytest.mark.postgresql_only("SQLite has no statement timeout")
def test_an_upgrade_waits_for_its_locks_past_the_limits_of_the_apps_statements(at_revision):
    """A release's upgrade held up by a long read (a dump) waits as long as it takes: the
    app's limits on a statement's lock wait and run time are not the migrations'."""
    at_0006 = at_revision("0006")
    engine = sa.create_engine(support._normalized(at_0006))
    reader = engine.connect()
    reader.execute(sa.text("SELECT 1 FROM ticket_types LIMIT 1"))  # the upgrade queues behind it
    failures = []

    def upgrade():
        try:
            support.migrate(at_0006, DB_LOCK_TIMEOUT_SECONDS=1, DB_STATEMENT_TIMEOUT_SECONDS=1)
        except BaseException as failure:  # noqa: BLE001 - reported by the test
            failures.append(failure)

    upgrading = threading.Thread(target=upgrade)
    upgrading.start()
    wait_until(lambda: waiting_for_locks(engine) >= 1)
    time.sleep(2.5)  # past both limits
    reader.commit()
    upgrading.join(60)
    assert not upgrading.is_alive()
    reader.close()
    engine.dispose()
    assert failures == [] and version_of(at_0006) == ScriptDirectory(str(support.ROOT / "migrations")).get_current_head()


def waiting_for_locks(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())")).scalar()


def version_of(url):
    engine = sa.create_engine(support._normalized(url))
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return version


def test_downgrading_to_the_first_revision_and_back(database_url, app, make_user, make_event, client, admin, capfd):
    """Down to 0003 (events count their tickets, no types), held tickets go back on sale;
    a disabled account, or a notification still to be sent, refuses the step that would
    lose it, before that step changes anything; down to nothing and up again builds the
    schema."""
    customer, other, disabled = make_user(), make_user(), make_user()
    event = make_event(totalTickets=10)
    ok(client.post("/api/bookings", headers=customer.headers, json={"eventId": event["id"], "ticketsCount": 2}), 201)
    ok(client.post("/api/holds", headers=other.headers, json={"eventId": event["id"], "ticketsCount": 3}), 201)
    wait_until(lambda: all(note["status"] == "SENT" for note in ok(client.get("/api/notifications",
                                                                              headers=customer.headers))))
    ok(client.patch(f"/api/admin/users/{disabled.id}", headers=admin.headers, json={"disabled": True}))
    assert ok(client.get(f"/api/events/{event['id']}"))["availableTickets"] == 5  # the hold still HELD
    head = version_of(database_url)
    support.stop_background(app)
    engine = sa.create_engine(support._normalized(database_url))

    def refused(revision, says):
        before = version_of(database_url)
        capfd.readouterr()
        with pytest.raises(SystemExit):
            support.migrate(database_url, revision, down=True)  # flask-migrate logs the error and exits
        assert says in capfd.readouterr().err
        assert version_of(database_url) == before

    support.migrate(database_url, "0006", down=True)
    refused("0005", "1 disabled account(s) would log in again below 0006")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE users SET disabled = false"))
    support.migrate(database_url, "0004", down=True)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE notifications SET status = 'PENDING'"))
    refused("0003", "notifications are still to be sent, and would be lost below 0004")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE notifications SET status = 'SENT'"))
    support.migrate(database_url, "0003", down=True)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT total_tickets, available_tickets FROM events WHERE id = :id"),
                                  {"id": event["id"]}).one() == (10, 8)
    engine.dispose()
    support.migrate(database_url, "base", down=True)
    support.migrate(database_url)
    assert version_of(database_url) == head


def test_addresses_stored_with_an_xn_domain_are_stored_in_unicode(at_revision, capfd):
    """0017: an account registered before domains were stored in Unicode is found by
    either spelling, and registering the other spelling is refused; where both spellings
    already have an account, both are left as they are, and the log names them."""
    at_0016 = at_revision("0016")
    engine = sa.create_engine(support._normalized(at_0016))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    with engine.begin() as connection:
        for email in ("ana@xn--bcher-kva.de", "bob@xn--bcher-kva.de", "bob@bücher.de", "eve@xn--zz.example"):
            connection.execute(sa.text("INSERT INTO users (email, password_hash, role, created_at, disabled) "
                                       "VALUES (:email, :hash, 'CUSTOMER', :now, false)"),
                               {"email": email, "hash": hashed, "now": datetime.now(timezone.utc)})
    engine.dispose()

    capfd.readouterr()
    support.migrate(at_0016)
    logged = capfd.readouterr().err

    engine = sa.create_engine(support._normalized(at_0016))
    with engine.connect() as connection:
        stored = sorted(connection.execute(sa.text("SELECT email FROM users")).scalars())
    engine.dispose()
    assert stored == ["ana@bücher.de", "bob@bücher.de", "bob@xn--bcher-kva.de", "eve@xn--zz.example"]
    [line] = [line for line in logged.splitlines() if "eventbook.migrations" in line]
    assert "WARNING" in line and "bob@xn--bcher-kva.de" in line and "bob@bücher.de" in line, logged
    app = create_app(support.test_config(at_0016))
    client = app.test_client()
    for spelling in ("ana@xn--bcher-kva.de", "ana@bücher.de"):
        assert client.post("/api/auth/register", json={"email": spelling, "password": PASSWORD,
                                                       "role": "CUSTOMER"}).status_code == 409
        assert ok(client.post("/api/auth/login", json={"email": spelling, "password": PASSWORD}))["user"]["email"] \
            == "ana@bücher.de"
    support.stop_background(app)
