"""Booking tickets, the caller's bookings, and cancelling."""

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import support
from tests.support import has_link, ok, refused


def started(set_event_date, event_id):
    set_event_date(event_id, datetime.now(timezone.utc) - timedelta(minutes=5))


def assert_conflict(response, code):
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["code"] == code


# -- booking -----------------------------------------------------------------------


def test_customer_books_tickets(client, shop, customer, make_event):
    event = make_event(totalTickets=5)
    response = shop.book(customer, event["id"], 2)
    assert response.status_code == 201
    booking = response.get_json()
    assert booking["eventId"] == event["id"]
    assert booking["userId"] == customer.id
    assert booking["ticketsCount"] == 2
    assert booking["status"] == "CONFIRMED"
    assert booking["cancelledAt"] is None
    assert booking["event"]["id"] == event["id"]
    assert booking["event"]["availableTickets"] == 3
    assert shop.available(event["id"]) == 3
    assert response.headers["Location"].endswith(f"/api/bookings/{booking['id']}")
    fetched = client.get(response.headers["Location"], headers=customer.headers)
    assert fetched.status_code == 200
    assert fetched.get_json() == booking


@pytest.mark.parametrize(
    "config_overrides", [{"DB_PREPARED_STATEMENTS": True}, {"DB_PREPARED_STATEMENTS": False}],
    ids=["prepared", "unprepared"],
)
def test_every_booking_rule_holds_on_both_databases(client, shop, make_user, make_event):
    """Each database's sales strategy gives the same answers, dates in UTC included;
    PostgreSQL's with its statements prepared or not (SQLite ignores the setting)."""
    alice, bob, carol = make_user(), make_user(), make_user()
    event = make_event(totalTickets=3, date="2031-06-01T18:30:00+02:00")
    booking = ok(shop.book(alice, event["id"], 2), 201)
    assert booking["event"] == client.get(f"/api/events/{event['id']}").get_json()
    assert booking["event"]["date"] == "2031-06-01T16:30:00Z"
    assert booking["createdAt"].endswith("Z")
    assert_conflict(shop.book(alice, event["id"], 1), "already_booked")
    assert_conflict(shop.book(bob, event["id"], 2), "not_enough_tickets")
    ok(shop.book(bob, event["id"], 1), 201)
    assert_conflict(shop.book(carol, event["id"], 1), "sold_out")
    assert shop.book(carol, 999_999, 1).status_code == 404
    assert shop.available(event["id"]) == 0


@pytest.mark.postgresql_only("SQLite has no server connection to drop")
@pytest.mark.own_app  # its pooled connections are dropped: no later test may find one
def test_a_server_connection_dropped_under_the_sale_fails_once(database_url, client, shop, make_user, make_event):
    """When PostgreSQL drops the app's connections (a restart, a failover), the first
    to find one dead is a 503 in the envelope, the dropped connections are thrown away
    with their pool, and the request after that reconnects and books. The first may be
    a background thread's (the notification pool's or the hold sweeper's, which run
    beside the requests), and then the booking goes through at once."""
    alice, bob = make_user(), make_user()
    event = make_event(totalTickets=5)
    ok(shop.book(alice, event["id"]), 201)  # the pools hold connections
    engine = sa.create_engine(support._normalized(database_url))
    with engine.connect() as connection:
        dropped = connection.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    engine.dispose()
    assert dropped >= 1
    booked = shop.book(bob, event["id"])
    if booked.status_code == 503:  # this request found a dropped connection first
        assert booked.get_json()["code"] == "unavailable"
        booked = shop.book(bob, event["id"])
    assert ok(booked, 201)["event"]["availableTickets"] == 3
    # The session's pool (reads, writes) lost its connections too: the first request to
    # find one dead answers 503, which may be this read or the notification sweeper's.
    shown = client.get(f"/api/events/{event['id']}")
    if shown.status_code == 503:
        shown = client.get(f"/api/events/{event['id']}")
    assert shown.get_json()["availableTickets"] == 3


@pytest.mark.postgresql_only("SQLite's lock is its busy timeout")
@pytest.mark.parametrize("config_overrides", [
    {"DB_LOCK_TIMEOUT_SECONDS": 1},
    # a statement ends after DB_STATEMENT_TIMEOUT_SECONDS whatever it is doing, a lock wait too
    {"DB_LOCK_TIMEOUT_SECONDS": 8, "DB_STATEMENT_TIMEOUT_SECONDS": 1},
], ids=["lock-timeout-1s", "statement-timeout-1s"])
def test_a_booking_that_waits_too_long_for_a_lock_is_a_503_that_takes_nothing(database_url, shop, customer,
                                                                             make_event):
    """A row lock held elsewhere (a psql session, a long migration) holds a booking up
    DB_LOCK_TIMEOUT_SECONDS at most, or DB_STATEMENT_TIMEOUT_SECONDS when that is
    shorter: then 503 with Retry-After, and nothing was sold."""
    event = make_event(totalTickets=5)
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as locking:
            locking.execute(sa.text("SELECT id FROM events WHERE id = :id FOR UPDATE"), {"id": event["id"]})
            started = time.monotonic()
            response = shop.book(customer, event["id"])
            waited = time.monotonic() - started
            locking.rollback()
    finally:
        engine.dispose()
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["code"] == "unavailable" and "busy" in response.get_json()["message"]
    assert response.headers["Retry-After"].isdigit()
    assert 0.9 < waited < 6
    assert shop.available(event["id"]) == 5
    assert ok(shop.client.get("/api/bookings/my-bookings", headers=customer.headers)) == []
    ok(shop.book(customer, event["id"]), 201)  # the lock gone, the same booking goes through


@pytest.mark.postgresql_only("SQLite has no idle-in-transaction timeout")
@pytest.mark.parametrize("config_overrides", [{"DB_LOCK_TIMEOUT_SECONDS": 1, "DB_STATEMENT_TIMEOUT_SECONDS": 1}],
                         ids=["statement-timeout-1s"])
def test_a_transaction_left_open_by_a_stuck_thread_gives_its_locks_back(app, shop, customer, make_event):
    """A transaction of the app's own that a thread leaves open (stuck, or a bug) with an
    event's row locked is ended by the server once it has sat idle
    DB_STATEMENT_TIMEOUT_SECONDS: that event's bookings go through again (without it,
    each would wait DB_LOCK_TIMEOUT_SECONDS for the lock, then get a 503)."""
    from eventbook.extensions import db

    event = make_event(totalTickets=5)
    with app.app_context():
        stuck = db.engine.connect()
        stuck.execute(sa.text("SELECT id FROM events WHERE id = :id FOR UPDATE"), {"id": event["id"]})
        time.sleep(2.5)
        booked = shop.book(customer, event["id"])
        with pytest.raises(sa.exc.OperationalError):
            stuck.execute(sa.text("SELECT 1"))
        stuck.invalidate()
        stuck.close()
    assert booked.status_code == 201, booked.get_json()
    assert shop.available(event["id"]) == 4


@pytest.mark.postgresql_only("SQLite prepares no statement")
def test_the_sales_statements_are_planned_once_per_connection(app, shop, make_user, make_event):
    """The prepared statements keep one generic plan for good: left to choose,
    PostgreSQL plans a prepared statement anew for each of its first five executions,
    and may go back to that on a long-lived connection once the tables' statistics
    change."""
    from eventbook.extensions import db

    events = [make_event(totalTickets=20) for _ in range(2)]
    for n in range(7):  # the requests run one at a time: one auto-commit connection serves them all
        ok(shop.book(make_user(), events[n % 2]["id"]), 201)
    with app.app_context(), db.engines["autocommit"].connect() as connection:
        assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_generic_plan"
        plans = connection.exec_driver_sql(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE 'eventbook_%%'").all()
    assert {name for name, *_ in plans} >= {"eventbook_book", "eventbook_token_owner"}, plans
    assert all(generic >= 1 and custom == 0 for _, generic, custom in plans), plans


@pytest.mark.parametrize("field, value", [
    ("ticketsCount", 0), ("ticketsCount", 11), ("ticketsCount", "2"), ("ticketsCount", 2.5),
    ("eventId", "abc"), ("eventId", 0),
])
def test_invalid_booking_is_422(client, shop, customer, make_event, field, value):
    event = make_event()
    body = {"eventId": event["id"], "ticketsCount": 1, field: value}
    response = client.post("/api/bookings", json=body, headers=customer.headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert shop.available(event["id"]) == 100


@pytest.mark.parametrize("body", [{"eventId": 1}, {"ticketsCount": 1}, {"eventId": 1, "ticketsCount": 1, "userId": 2}])
def test_missing_or_unknown_fields_are_422(client, customer, body):
    response = client.post("/api/bookings", json=body, headers=customer.headers)
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


def test_ten_tickets_is_the_most_one_booking_holds(shop, customer, make_event):
    event = make_event()
    assert ok(shop.book(customer, event["id"], 10), 201)["event"]["availableTickets"] == 90


def test_unknown_event_is_404(shop, customer):
    response = shop.book(customer, 999999)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_not_enough_tickets_says_how_many_are_left(shop, make_user, make_event):
    event = make_event(totalTickets=5)
    ok(shop.book(make_user(), event["id"], 2), 201)
    response = shop.book(make_user(), event["id"], 4)
    assert_conflict(response, "not_enough_tickets")
    assert response.get_json()["message"] == "Only 3 tickets left"
    assert response.get_json()["ticketTypeId"] == shop.event(event["id"])["ticketTypes"][0]["id"]  # the only type
    assert shop.available(event["id"]) == 3
    ok(shop.book(make_user(), event["id"], 2), 201)
    assert shop.book(make_user(), event["id"], 2).get_json()["message"] == "Only 1 ticket left"


def test_sold_out(shop, make_user, make_event):
    event = make_event(totalTickets=2)
    ok(shop.book(make_user(), event["id"], 2), 201)
    response = shop.book(make_user(), event["id"], 1)
    assert_conflict(response, "sold_out")
    assert re.search(r"\bno tickets left\b|\b0 tickets left\b", response.get_json()["message"])


def test_one_confirmed_booking_per_customer_and_event(client, shop, customer, make_event):
    event = make_event(totalTickets=10)
    first = ok(shop.book(customer, event["id"], 2), 201)
    assert_conflict(shop.book(customer, event["id"], 1), "already_booked")
    assert shop.available(event["id"]) == 8

    assert client.post(f"/api/bookings/{first['id']}/cancel", headers=customer.headers).status_code == 200
    again = ok(shop.book(customer, event["id"], 3), 201)
    assert again["id"] != first["id"]
    assert shop.available(event["id"]) == 7


def test_cancelled_event_is_closed(client, shop, organizer, make_user, make_event):
    event = make_event()
    ok(shop.book(make_user(), event["id"]), 201)
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    assert_conflict(shop.book(make_user(), event["id"]), "event_closed")
    assert shop.available(event["id"]) == 100


def test_started_event_is_closed(shop, customer, make_event, set_event_date):
    event = make_event()
    started(set_event_date, event["id"])
    assert_conflict(shop.book(customer, event["id"]), "event_closed")
    assert shop.available(event["id"]) == 100


def test_only_customers_book(client, shop, organizer, admin, make_event):
    event = make_event()
    for actor in (organizer, admin):
        response = shop.book(actor, event["id"])
        assert response.status_code == 403
        assert response.get_json()["code"] == "forbidden"
    response = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1})
    assert response.status_code == 401
    assert shop.available(event["id"]) == 100


def test_booking_queues_confirmation(shop, customer, make_event, wait_for_notifications):
    event = make_event(title="Jazz night")
    ok(shop.book(customer, event["id"], 2), 201)
    [note] = wait_for_notifications(customer, 1)
    assert note["kind"] == "BOOKING_CONFIRMED"
    assert note["recipient"] == customer.email
    assert "Jazz night" in note["subject"]


# -- my bookings -------------------------------------------------------------------


def test_my_bookings_newest_first_and_only_mine(client, shop, customer, make_user, make_event):
    events = [make_event(title=f"event {n}") for n in range(3)]
    mine = [ok(shop.book(customer, event["id"]), 201) for event in events]
    ok(shop.book(make_user(), events[0]["id"]), 201)

    response = client.get("/api/bookings/my-bookings", headers=customer.headers)
    assert response.status_code == 200
    listed = response.get_json()
    assert [b["id"] for b in listed] == [b["id"] for b in reversed(mine)]
    assert [b["event"]["title"] for b in listed] == ["event 2", "event 1", "event 0"]
    assert {b["userId"] for b in listed} == {customer.id}
    assert response.headers["X-Total-Count"] == "3"


def test_my_bookings_paging(client, shop, customer, make_event):
    mine = [ok(shop.book(customer, make_event()["id"]), 201) for _ in range(3)]
    first = client.get("/api/bookings/my-bookings?perPage=2", headers=customer.headers)
    assert [b["id"] for b in first.get_json()] == [mine[2]["id"], mine[1]["id"]]
    assert first.headers["X-Total-Count"] == "3"
    assert has_link(first, "next") and not has_link(first, "prev")
    second = client.get("/api/bookings/my-bookings?page=2&perPage=2", headers=customer.headers)
    assert [b["id"] for b in second.get_json()] == [mine[0]["id"]]
    assert has_link(second, "prev") and not has_link(second, "next")


def test_my_bookings_made_at_one_instant_come_newest_id_first_page_after_page(app, client, shop, customer,
                                                                             make_event):
    from eventbook.extensions import db
    from eventbook.models import Booking

    mine = [ok(shop.book(customer, make_event()["id"]), 201)["id"] for _ in range(5)]
    earlier, later = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)
    with app.app_context():
        for ids, instant in ((mine[:2], later), (mine[2:], earlier)):
            db.session.execute(sa.update(Booking).where(Booking.id.in_(ids)).values(created_at=instant))
        db.session.commit()
    pages = [ok(client.get(f"/api/bookings/my-bookings?perPage=2&page={page}", headers=customer.headers))
             for page in (1, 2, 3)]
    assert [[b["id"] for b in page] for page in pages] == [[mine[1], mine[0]], [mine[4], mine[3]], [mine[2]]]


@pytest.mark.postgresql_only("a PostgreSQL plan")
def test_a_page_of_my_bookings_is_read_in_order_from_an_index(app, customer):
    """However deep the page, its ids come in order from the index by customer, time and
    id, without sorting all of the customer's bookings (docs/performance.md)."""
    from types import SimpleNamespace

    from eventbook.bookings import service
    from eventbook.extensions import db
    from eventbook.models import Booking
    from eventbook.pagination import Explain

    page = service.mine(SimpleNamespace(id=customer.id)).with_only_columns(Booking.id).limit(21).offset(4980)
    with app.app_context():
        connection = db.session.connection()
        connection.exec_driver_sql("SET LOCAL enable_sort = off")  # a sort only where nothing else can order them
        connection.exec_driver_sql("SET LOCAL enable_incremental_sort = off")
        plan = connection.execute(Explain(page)).scalar()[0]["Plan"]
        db.session.rollback()

    def nodes(node):
        yield node["Node Type"]
        for child in node.get("Plans", ()):
            yield from nodes(child)

    assert not [node for node in nodes(plan) if "Sort" in node], plan


def test_my_bookings_of_one_event(client, shop, customer, make_user, make_event):
    """`eventId` keeps one event's bookings; the newest is the confirmed one, if any
    (a customer books an event again only once the last booking is cancelled)."""
    event, other = make_event(), make_event()
    cancelled = ok(shop.book(customer, event["id"]), 201)
    ok(shop.cancel(customer, cancelled["id"]))
    confirmed = ok(shop.book(customer, event["id"]), 201)
    ok(shop.book(customer, other["id"]), 201)
    ok(shop.book(make_user(), event["id"]), 201)

    response = client.get(f"/api/bookings/my-bookings?eventId={event['id']}", headers=customer.headers)
    assert [(b["id"], b["status"]) for b in ok(response)] == [(confirmed["id"], "CONFIRMED"),
                                                              (cancelled["id"], "CANCELLED")]
    assert response.headers["X-Total-Count"] == "2"
    first = client.get(f"/api/bookings/my-bookings?eventId={event['id']}&perPage=1", headers=customer.headers)
    assert [b["id"] for b in ok(first)] == [confirmed["id"]]
    assert f"eventId={event['id']}" in first.headers["Link"]  # the pages' links keep the filter
    assert ok(client.get("/api/bookings/my-bookings?eventId=999999", headers=customer.headers)) == []
    refused(client.get("/api/bookings/my-bookings?eventId=x", headers=customer.headers), 422, "validation_error")


def test_my_bookings_needs_a_token(client, organizer):
    assert client.get("/api/bookings/my-bookings").status_code == 401
    response = client.get("/api/bookings/my-bookings", headers=organizer.headers)
    assert response.status_code == 200
    assert response.get_json() == []


# -- cancelling --------------------------------------------------------------------


def test_cancel_returns_tickets_once(client, shop, customer, make_event, wait_for_notifications):
    event = make_event(totalTickets=10)
    booking = ok(shop.book(customer, event["id"], 4), 201)
    url = f"/api/bookings/{booking['id']}/cancel"

    response = client.post(url, headers=customer.headers)
    assert response.status_code == 200
    cancelled = response.get_json()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancelledAt"] is not None
    assert cancelled["event"]["availableTickets"] == 10
    assert shop.available(event["id"]) == 10

    again = client.post(url, headers=customer.headers)
    assert again.status_code == 200
    assert again.get_json()["status"] == "CANCELLED"
    assert again.get_json()["cancelledAt"] == cancelled["cancelledAt"]
    assert shop.available(event["id"]) == 10

    notes = wait_for_notifications(customer, 2)
    assert sorted(n["kind"] for n in notes) == ["BOOKING_CANCELLED", "BOOKING_CONFIRMED"]


def test_cancel_after_the_event_started_is_refused(client, shop, customer, make_event, set_event_date):
    event = make_event(totalTickets=10)
    booking = ok(shop.book(customer, event["id"], 4), 201)
    started(set_event_date, event["id"])
    assert_conflict(client.post(f"/api/bookings/{booking['id']}/cancel", headers=customer.headers), "event_closed")
    assert client.get(f"/api/bookings/{booking['id']}", headers=customer.headers).get_json()["status"] == "CONFIRMED"
    assert shop.available(event["id"]) == 6


def test_admin_cancels_anyones_booking(client, shop, customer, admin, make_event):
    event = make_event(totalTickets=10)
    booking = ok(shop.book(customer, event["id"], 4), 201)
    response = client.post(f"/api/bookings/{booking['id']}/cancel", headers=admin.headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "CANCELLED"
    assert response.get_json()["userId"] == customer.id
    assert shop.available(event["id"]) == 10


def test_cancelling_a_booking_of_a_cancelled_event_changes_nothing(client, shop, organizer, customer, make_event):
    event = make_event(totalTickets=10)
    booking = ok(shop.book(customer, event["id"], 4), 201)
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    response = client.post(f"/api/bookings/{booking['id']}/cancel", headers=customer.headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "CANCELLED"
    assert shop.available(event["id"]) == 10
    listed = client.get("/api/bookings/my-bookings", headers=customer.headers).get_json()
    assert [(b["id"], b["status"], b["event"]["status"]) for b in listed] == [(booking["id"], "CANCELLED", "CANCELLED")]


def test_cancel_unknown_booking_is_404(client, customer):
    response = client.post("/api/bookings/999999/cancel", headers=customer.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


@pytest.mark.postgresql_only("SQLite has one writer at a time: nothing to deadlock")
def test_a_cancel_chosen_as_a_deadlock_victim_runs_again(database_url, shop, customer, make_event):
    """A cancel locks the event, then the booking; another writer holding the booking and
    asking for the event (an event's cancel does both) deadlocks with it. PostgreSQL rolls
    the victim back whole, and the client still sees the cancel's outcome, not a 503."""
    event = make_event(totalTickets=5)
    booking = ok(shop.book(customer, event["id"], 2), 201)
    # the cancel locks the event, then waits for the booking held here
    answer = support.crossed(database_url, lambda: shop.cancel(customer, booking["id"]),
                             "UPDATE bookings SET tickets_count = tickets_count WHERE id = :booking",
                             "SELECT id FROM events WHERE id = :event FOR UPDATE",
                             {"booking": booking["id"], "event": event["id"]})
    assert ok(answer)["status"] == "CANCELLED"
    assert shop.available(event["id"]) == 5
