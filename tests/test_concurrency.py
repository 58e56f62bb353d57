"""Concurrency: nobody is ever sold a ticket that does not exist, however many people
press "book" (or "cancel") at the same second. Live gunicorn servers (tests/live.py), on
SQLite and on PostgreSQL."""

import json
import random
import time
import uuid
from collections import Counter

import pytest

from tests import support
from tests.live import SOLD_OUT_CODES, booking, cancel, code, log_tail

pytestmark = pytest.mark.slow

# -- 1. the rush: 200 customers, 50 tickets -------------------------------------------


def test_200_customers_rush_50_tickets_exactly_50_sold(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 50)
    customers = app.users(200)

    responses = app.together([booking(c, event["id"], 1) for c in customers])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 150}, app.explain(responses)
    refused = Counter(code(r) for r in responses if r.status_code == 409)
    assert set(refused) <= SOLD_OUT_CODES, app.explain(responses)
    sold = [r.json() for r in responses if r.status_code == 201]
    assert len({b["id"] for b in sold}) == 50
    assert len({b["userId"] for b in sold}) == 50
    assert all(b["ticketsCount"] == 1 and b["status"] == "CONFIRMED" for b in sold)
    assert all(0 <= b["event"]["availableTickets"] < 50 for b in sold)

    assert app.get_event(event["id"])["availableTickets"] == 0
    total, bookings = app.event_bookings(organizer, event["id"])
    assert total == 50
    assert sorted(b["id"] for b in bookings) == sorted(b["id"] for b in sold)
    app.assert_invariant()


def test_the_rush_confirmations_go_out_once_each_in_batches(live):
    """The log backend's emails leave in batches (one claim and one SENT mark for many):
    after a rush every buyer has exactly one confirmation, SENT on its first attempt,
    one log line each, nothing for those refused, and some batch held several emails."""
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 60)
    customers = app.users(90)

    responses = app.together([booking(c, event["id"], 1) for c in customers])
    assert Counter(r.status_code for r in responses) == {201: 60, 409: 30}, app.explain(responses)
    buyers = [c for c, r in zip(customers, responses, strict=True) if r.status_code == 201]
    refused = [c for c, r in zip(customers, responses, strict=True) if r.status_code == 409]

    def all_sent():
        notes = [app.notifications(c) for c in buyers]
        return notes if all(len(n) == 1 and n[0]["status"] == "SENT" for n in notes) else None

    notes = [n for [n] in support.wait_until(all_sent, 30, 0.25, message="60 confirmations SENT")]
    assert all(n["kind"] == "BOOKING_CONFIRMED" and n["attempts"] == 1 for n in notes), notes
    assert all(app.notifications(c) == [] for c in refused)
    ours = {c["email"] for c in customers}  # an earlier test's late emails may share the log

    def our_emails():
        lines = log_tail(app.log_path, app.log_offset, 10**6).splitlines()
        sent = [json.loads(line)["message"].rsplit(" ", 1)[-1] for line in lines if "email sent to" in line]
        found = [email for email in sent if email in ours]
        return found if len(found) >= 60 else None

    sent_to = Counter(support.wait_until(our_emails, 10, message="60 email log lines"))
    assert sent_to == Counter(c["email"] for c in buyers), sent_to
    # One SENT mark per batch: rows marked together share their sentAt.
    assert len({n["sentAt"] for n in notes}) < len(notes), "every email had a batch of its own"


# -- 2. mixed sizes --------------------------------------------------------------------


def test_mixed_sizes_sell_exactly_what_exists(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 100)
    customers = app.users(60)
    wanted = [random.Random(7 + i).randint(1, 4) for i in range(60)]  # ~150 tickets asked for 100

    responses = app.together([booking(c, event["id"], n) for c, n in zip(customers, wanted, strict=True)])

    assert {r.status_code for r in responses} <= {201, 409}, app.explain(responses)
    assert {code(r) for r in responses if r.status_code == 409} <= SOLD_OUT_CODES, app.explain(responses)
    sold = sum(r.json()["ticketsCount"] for r in responses if r.status_code == 201)
    for response, asked in zip(responses, wanted, strict=True):
        if response.status_code == 201:
            assert response.json()["ticketsCount"] == asked
    available = app.get_event(event["id"])["availableTickets"]
    assert 0 <= available <= 100
    assert sold == 100 - available, app.explain(responses)
    # Nothing is ever given back in this race, so availability only goes down: a refusal
    # is right only if even the final remainder is smaller than what was asked for.
    for response, asked in zip(responses, wanted, strict=True):
        if response.status_code == 409:
            assert asked > available, f"refused {asked} tickets while {available} are still left"
            if code(response) == "sold_out":
                assert response.json()["availableTickets"] == 0
    total, bookings = app.event_bookings(organizer, event["id"])
    assert total == sum(r.status_code == 201 for r in responses)
    assert sum(b["ticketsCount"] for b in bookings if b["status"] == "CONFIRMED") == sold
    app.assert_invariant()


# -- 3. twenty cancels of one booking ----------------------------------------------------


def test_20_simultaneous_cancels_return_tickets_once(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 10)
    customer = app.user()
    booking = app.book(customer, event["id"], 3)
    assert app.get_event(event["id"])["availableTickets"] == 7

    responses = app.together([cancel(customer, booking["id"]) for _ in range(20)])

    assert all(r.status_code == 200 for r in responses), app.explain(responses)
    bodies = [r.json() for r in responses]
    assert all(b["id"] == booking["id"] and b["status"] == "CANCELLED" for b in bodies)
    assert len({b["cancelledAt"] for b in bodies}) == 1, "more than one cancel took effect"
    assert app.get_event(event["id"])["availableTickets"] == 10

    # The notification rows are written with the cancel; wait until delivery is done and
    # the list has stopped changing, then count.
    previous, stable_since = None, None
    deadline = time.monotonic() + 20
    while True:
        notes = app.notifications(customer)
        state = sorted((n["id"], n["kind"], n["status"]) for n in notes)
        done = notes and all(n["status"] != "PENDING" for n in notes)
        if state != previous or not done:
            previous, stable_since = state, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            break
        assert time.monotonic() < deadline, f"notifications never settled: {state}\n{app.log()}"
        time.sleep(0.1)
    kinds = Counter(n["kind"] for n in notes)
    assert kinds == {"BOOKING_CONFIRMED": 1, "BOOKING_CANCELLED": 1}, f"{notes}\n{app.log()}"
    assert all(n["status"] == "SENT" for n in notes), notes
    app.assert_invariant()


# -- 4. one customer, twenty clicks ------------------------------------------------------


def test_same_customer_20_clicks_books_once(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 100)
    customer = app.user()

    responses = app.together([booking(customer, event["id"], 1) for _ in range(20)])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 19}, app.explain(responses)
    assert {code(r) for r in responses if r.status_code == 409} == {"already_booked"}, app.explain(responses)
    assert len(app.my_bookings(customer)) == 1
    assert app.get_event(event["id"])["availableTickets"] == 99
    app.assert_invariant()


# -- 5. Idempotency-Key under a race ----------------------------------------------------


def test_same_idempotency_key_30_times_at_once_books_once(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 20)
    customer = app.user()
    key = f"retry-{uuid.uuid4()}"

    responses = app.together([booking(customer, event["id"], 2, key=key) for _ in range(30)])

    # One rule, as in process (tests/test_idempotency.py): every repeat gets the first
    # success again, never a second booking and never an error.
    assert all(r.status_code == 201 for r in responses), app.explain(responses)
    assert len({r.json()["id"] for r in responses}) == 1, app.explain(responses)
    assert all(r.json()["ticketsCount"] == 2 for r in responses)
    originals = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(originals) == 1, f"{len(originals)} responses claim to have booked\n{app.log()}"
    ok = responses
    mine = app.my_bookings(customer)
    assert [b["id"] for b in mine] == [ok[0].json()["id"]]
    assert app.get_event(event["id"])["availableTickets"] == 18

    with_key = {**customer["headers"], "Idempotency-Key": key}
    again = app.http.post("/api/bookings", headers=with_key, json={"eventId": event["id"], "ticketsCount": 2})
    assert again.status_code == 201 and again.json()["id"] == mine[0]["id"], again.text
    reused = app.http.post("/api/bookings", headers=with_key, json={"eventId": event["id"], "ticketsCount": 3})
    assert reused.status_code == 409, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    assert len(app.my_bookings(customer)) == 1
    assert app.get_event(event["id"])["availableTickets"] == 18
    app.assert_invariant()


# -- 6. cancels racing bookings -----------------------------------------------------------


def test_cancels_racing_bookings_never_oversell(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 10)
    holders = app.users(10)
    held = [app.book(holder, event["id"], 1) for holder in holders]
    assert app.get_event(event["id"])["availableTickets"] == 0
    newcomers = app.users(30)

    calls = [cancel(h, b["id"]) for h, b in zip(holders, held, strict=True)]
    calls += [booking(c, event["id"], 1) for c in newcomers]
    responses = app.together(calls)
    cancels, books = responses[:10], responses[10:]

    assert all(r.status_code == 200 and r.json()["status"] == "CANCELLED" for r in cancels), app.explain(cancels)
    assert {r.status_code for r in books} <= {201, 409}, app.explain(books)
    assert {code(r) for r in books if r.status_code == 409} <= SOLD_OUT_CODES, app.explain(books)
    won = [r.json() for r in books if r.status_code == 201]
    assert len(won) <= 10

    available = app.get_event(event["id"])["availableTickets"]
    _, bookings = app.event_bookings(organizer, event["id"])
    confirmed = [b for b in bookings if b["status"] == "CONFIRMED"]
    assert sum(b["ticketsCount"] for b in confirmed) <= 10
    assert sorted(b["id"] for b in confirmed) == sorted(b["id"] for b in won)
    assert available == 10 - len(won)
    # what the race did not sell is still there, exactly: the newcomers who lost buy it now
    losers = [c for c, r in zip(newcomers, books, strict=True) if r.status_code != 201]
    after = [app.http.post("/api/bookings", headers=c["headers"], json={"eventId": event["id"], "ticketsCount": 1})
             for c in losers]
    assert [r.status_code for r in after] == [201] * available + [409] * (len(losers) - available), app.explain(after)
    assert app.get_event(event["id"])["availableTickets"] == 0
    app.assert_invariant()
