"""The migrations: they build the schema the models describe, and an upgrade keeps what
a running shop already holds (its seats, their holds and bookings, their tickets)."""

import threading
import time
from datetime import datetime, timedelta, timezone

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
    """Today's code writes the shop at 0006, whose schema lacks columns the code reads
    (`LATER_COLUMNS`): they are added (`change` "ADD") for the writing and dropped
    ("DROP") before the upgrade, which so starts from 0006 exactly."""
    engine = sa.create_engine(support._normalized(url))
    with engine.begin() as connection:
        for table, column in LATER_COLUMNS.items():
            kind = " TIMESTAMP WITH TIME ZONE" if change == "ADD" else ""
            connection.execute(sa.text(f"ALTER TABLE {table} {change} COLUMN {column}{kind}"))
    engine.dispose()


def test_upgrading_to_one_seat_key_keeps_the_seats_their_sales_and_tickets(at_revision):
    at_0006 = at_revision("0006")  # before seats had one key to their type and event
    later_columns(at_0006, "ADD")
    app = create_app(support.test_config(at_0006))
    client = app.test_client()

    def token(role, email):
        ok(client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "role": role}), 201)
        login = ok(client.post("/api/auth/login", json={"email": email, "password": PASSWORD}))
        return {"Authorization": f"Bearer {login['token']}"}

    organizer = token("ORGANIZER", "organizer@example.com")
    customer, other = token("CUSTOMER", "customer@example.com"), token("CUSTOMER", "other@example.com")
    event = ok(client.post("/api/events", headers=organizer, json={
        "title": "Upgrade night", "date": "2030-06-01T20:00:00Z", "location": "Hall", "totalTickets": 6,
        "seating": "RESERVED"}), 201)
    type_id = event["ticketTypes"][0]["id"]
    seat_map = {"sections": [{"name": "Stalls", "ticketTypeId": type_id, "rows": [{"label": "A", "from": 1, "to": 6}]}]}
    ok(client.put(f"/api/events/{event['id']}/seats", headers=organizer, json=seat_map))
    ids = [seat["id"] for seat in ok(client.get(f"/api/events/{event['id']}/seats"))]
    booking = ok(client.post("/api/bookings", headers=customer, json={"eventId": event["id"], "seatIds": ids[:2]}), 201)
    hold = ok(client.post("/api/holds", headers=other, json={"eventId": event["id"], "seatIds": ids[2:3]}), 201)
    before = {
        "booking": ok(client.get(f"/api/bookings/{booking['id']}", headers=customer)),
        "tickets": ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer)),
        "hold": ok(client.get(f"/api/holds/{hold['id']}", headers=other)),
        "seats": ok(client.get(f"/api/events/{event['id']}/seats")),
    }
    support.stop_background(app)
    later_columns(at_0006, "DROP")

    support.migrate(at_0006)

    app = create_app(support.test_config(at_0006))
    client = app.test_client()
    after = {
        "booking": ok(client.get(f"/api/bookings/{booking['id']}", headers=customer)),
        "tickets": ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer)),
        "hold": ok(client.get(f"/api/holds/{hold['id']}", headers=other)),
        "seats": ok(client.get(f"/api/events/{event['id']}/seats")),
    }
    assert after == before
    assert [ticket["seat"]["id"] for ticket in after["tickets"]] == ids[:2]
    assert [seat["status"] for seat in after["seats"]] == ["BOOKED", "BOOKED", "HELD", "AVAILABLE", "AVAILABLE",
                                                            "AVAILABLE"]
    # the upgraded shop goes on selling, and a new map's seats get new ids
    third = token("CUSTOMER", "third@example.com")
    support.refused(client.post("/api/bookings", headers=third, json={"eventId": event["id"], "seatIds": ids[2:4]}),
                    409, "seats_taken")
    ok(client.delete(f"/api/holds/{hold['id']}", headers=other), 204)
    ok(client.post("/api/bookings", headers=other, json={"eventId": event["id"], "seatIds": ids[2:4]}), 201)
    second = ok(client.post("/api/events", headers=organizer, json={
        "title": "After the upgrade", "date": "2030-07-01T20:00:00Z", "location": "Hall", "totalTickets": 2,
        "seating": "RESERVED"}), 201)
    second_map = {"sections": [{"name": "Pit", "ticketTypeId": second["ticketTypes"][0]["id"],
                                "rows": [{"label": "1", "from": 1, "to": 2}]}]}
    ok(client.put(f"/api/events/{second['id']}/seats", headers=organizer, json=second_map))
    assert min(seat["id"] for seat in ok(client.get(f"/api/events/{second['id']}/seats"))) > max(ids)
    support.stop_background(app)
    assert support.invariant_violations(at_0006) == []


def test_a_seat_of_a_type_of_another_event_is_refused_by_the_database(database_url):
    """The key the seat map's PUT relies on besides its own check: a seat's (event, type)
    is a type of that event. (The app's engine: SQLite enforces keys per connection.)"""
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
        first, second = made["events"]
        seat = sa.text("INSERT INTO seats (event_id, ticket_type_id, section, row, number, position, status) "
                       "VALUES (:event, :type, 'A', '1', 1, 0, 'AVAILABLE') RETURNING id")
        try:
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
                connection.execute(seat, {"event": first, "type": made["ticket_types"][1]})
            with db.engine.begin() as connection:
                made["seats"] = [connection.execute(seat, {"event": first, "type": made["ticket_types"][0]}).scalar_one()]
        finally:
            with db.engine.begin() as connection:
                for table in ("seats", "ticket_types", "events", "users"):
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
        def insert(table, **row):
            columns = ", ".join(row)
            return connection.execute(sa.text(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + name for name in row)}) RETURNING id"), row
            ).scalar()

        organizer = insert("users", email="old-organizer@example.com", password_hash=password_hash,
                           name="Olga", role="ORGANIZER", created_at=now)
        customer = insert("users", email="old-customer@example.com", password_hash=password_hash,
                          name="Carl", role="CUSTOMER", created_at=now)
        event = insert("events", title="Before types", description="d", date=now + timedelta(days=30),
                       location="Hall", total_tickets=10, available_tickets=8, status="SCHEDULED",
                       organizer_id=organizer, created_at=now, updated_at=now)
        booking = insert("bookings", event_id=event, user_id=customer, tickets_count=2, status="CONFIRMED",
                         created_at=now)
        gone = insert("users", email="old-gone@example.com", password_hash=password_hash, name="Gina",
                      role="CUSTOMER", created_at=now)
        cancelled = insert("bookings", event_id=event, user_id=gone, tickets_count=3, status="CANCELLED",
                           created_at=now)
        insert("notifications", kind="BOOKING_CONFIRMED", user_id=customer, recipient="old-customer@example.com",
               subject="Booking confirmed", body="Your 2 tickets", event_id=event, booking_id=booking,
               status="PENDING", attempts=0, next_attempt_at=now, created_at=now)
        insert("notifications", kind="EVENT_UPDATED", user_id=None, recipient=None,
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
