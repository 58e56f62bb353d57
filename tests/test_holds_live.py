"""Ticket types and holds under real concurrency: live gunicorn servers (tests/live.py),
on SQLite and on PostgreSQL; the invariant is checked after every test."""

import random
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from tests import live as harness, support
from tests.live import SOLD_OUT_CODES, code

pytestmark = pytest.mark.slow

# Short holds, swept often, so that expiries happen within a test.
LIVE_ENV = {"HOLD_SECONDS": "10", "HOLD_SWEEP_SECONDS": "0.1"}


def post(path, customer, body=None):
    return lambda http: http.post(path, headers=customer["headers"], json=body)


def type_ids(event):
    return {t["name"]: t["id"] for t in event["ticketTypes"]}


def test_120_customers_race_for_30_tickets_of_one_type_the_other_untouched(live):
    organizer = live.user("ORGANIZER")
    event = live.event(organizer, 100, ticketTypes=[{"name": "Front", "price": "40.00", "quantity": 30},
                                                    {"name": "Back", "price": "20.00", "quantity": 70}])
    front = type_ids(event)["Front"]
    customers = live.users(120)

    responses = live.together([post("/api/bookings", c, {"eventId": event["id"], "ticketsCount": 1,
                                                         "ticketTypeId": front}) for c in customers])

    assert Counter(r.status_code for r in responses) == {201: 30, 409: 90}, live.explain(responses)
    assert {code(r) for r in responses if r.status_code == 409} <= SOLD_OUT_CODES, live.explain(responses)
    sold = [r.json() for r in responses if r.status_code == 201]
    assert all(b["items"] == [{"ticketTypeId": front, "count": 1, "price": "40.00"}] for b in sold)
    after = live.get_event(event["id"])
    types = {t["name"]: t for t in after["ticketTypes"]}
    assert types["Front"]["availableQuantity"] == 0 and types["Back"]["availableQuantity"] == 70
    assert after["availableTickets"] == 70


def test_a_hold_and_a_booking_sent_at_once_by_one_customer_make_one_of_them(live):
    """A customer who holds tickets of an event cannot also book it, nor hold one they
    booked: sent at the same instant, 30 times, one is made and the other refused,
    never both (a HELD hold beside the booking would keep its tickets from everyone
    until it expired, and could not be confirmed)."""
    organizer = live.user("ORGANIZER")
    customer = live.user()
    made = Counter()
    for _ in range(30):
        event = live.event(organizer, 50)
        body = {"eventId": event["id"], "ticketsCount": 1}
        hold, booking = live.together([post("/api/holds", customer, body), post("/api/bookings", customer, body)])
        assert sorted([hold.status_code, booking.status_code]) == [201, 409], live.explain([hold, booking])
        if hold.status_code == 201:
            assert code(booking) == "already_holding" and booking.json()["holdId"] == hold.json()["id"]
            made["hold"] += 1
        else:
            assert code(hold) == "already_booked", live.explain([hold, booking])
            made["booking"] += 1
        assert live.get_event(event["id"])["availableTickets"] == 49
    assert made["hold"] and made["booking"], f"{made}: the race never went both ways"


def test_a_confirm_and_a_new_hold_sent_at_once_by_its_customer_never_leave_both(live):
    """A customer confirming their hold and holding the event again at the same instant,
    30 times: the confirm makes the booking and the new hold is refused; never a booking
    beside a new HELD hold of the same event."""
    organizer = live.user("ORGANIZER")
    customer = live.user()
    for _ in range(30):
        event = live.event(organizer, 5)
        body = {"eventId": event["id"], "ticketsCount": 1}
        held = live.http.post("/api/holds", headers=customer["headers"], json=body)
        assert held.status_code == 201, held.text
        confirmed, again = live.together([post(f"/api/holds/{held.json()['id']}/confirm", customer),
                                           post("/api/holds", customer, body)])
        assert confirmed.status_code == 201, live.explain([confirmed, again])
        # already_holding when the new hold went first, while the old one was still HELD
        assert again.status_code == 409 and code(again) in ("already_booked", "already_holding"), \
            live.explain([confirmed, again])
        assert live.get_event(event["id"])["availableTickets"] == 4


def test_60_customers_hold_20_tickets_then_all_20_confirm_at_once(live):
    organizer = live.user("ORGANIZER")
    event = live.event(organizer, 20)
    customers = live.users(60)

    holds = live.together([post("/api/holds", c, {"eventId": event["id"], "ticketsCount": 1}) for c in customers])

    assert Counter(r.status_code for r in holds) == {201: 20, 409: 40}, live.explain(holds)
    assert live.get_event(event["id"])["availableTickets"] == 0
    holders = [(c, r.json()) for c, r in zip(customers, holds, strict=True) if r.status_code == 201]

    confirms = live.together([post(f"/api/holds/{h['id']}/confirm", c) for c, h in holders])

    assert [r.status_code for r in confirms] == [201] * 20, live.explain(confirms)
    assert len({r.json()["id"] for r in confirms}) == 20
    total, bookings = live.event_bookings(organizer, event["id"])
    assert total == 20 and all(b["status"] == "CONFIRMED" and b["ticketsCount"] == 1 for b in bookings)
    assert live.get_event(event["id"])["availableTickets"] == 0


def _at(when, call, http_results, index):
    """Run `call` (with its own connection) when the clock reaches `when`."""
    import httpx

    with httpx.Client(verify=support.SSL, base_url=http_results["url"], timeout=60) as http:
        http.get("/api/health")
        time.sleep(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))
        http_results[index] = call(http)


def test_a_confirm_at_the_moment_of_expiry_100_times(live):
    """Each hold ends confirmed with its tickets taken, or expired with them back: never
    both, never counted twice, whoever wins the race (the confirm or a sweeper)."""
    organizer = live.user("ORGANIZER")
    events = [live.event(organizer, 10) for _ in range(10)]
    people = live.users(10)
    customers = [person for person in people for _ in events]  # each holds one ticket of each event
    holds = [r.json() for r in live.together(
        [post("/api/holds", c, {"eventId": e["id"], "ticketsCount": 1}) for c in people for e in events])]
    assert all("id" in h for h in holds), holds
    rng = random.Random(100)
    results = {"url": live.url}
    threads = []
    for index, (customer, held) in enumerate(zip(customers, holds, strict=True)):
        expires = datetime.fromisoformat(held["expiresAt"].replace("Z", "+00:00"))
        # around the moment of expiry, widely enough that a loaded machine still races
        when = expires.timestamp() + rng.uniform(-1.0, 0.3)
        thread = threading.Thread(target=_at, args=(datetime.fromtimestamp(when, timezone.utc),
                                                    post(f"/api/holds/{held['id']}/confirm", customer), results, index))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(60)
    responses = [results[i] for i in range(100)]
    assert {r.status_code for r in responses} <= {201, 409}, live.explain(responses)
    assert {code(r) for r in responses if r.status_code == 409} <= {"hold_expired"}, live.explain(responses)

    def settled():
        states = [live.http.get(f"/api/holds/{h['id']}", headers=c["headers"]).json()
                  for c, h in zip(customers, holds, strict=True)]
        return states if all(s["status"] in ("CONFIRMED", "EXPIRED") for s in states) else None

    states = support.wait_until(settled, 20, 0.2, message="every hold confirmed or expired")
    confirmed = [s for s in states if s["status"] == "CONFIRMED"]
    for response, state in zip(responses, states, strict=True):
        assert (response.status_code == 201) == (state["status"] == "CONFIRMED"), (response.text, state)
        if state["status"] == "CONFIRMED":
            assert state["bookingId"] == response.json()["id"]
    assert confirmed and len(confirmed) < 100, f"{len(confirmed)} confirmed: the race never happened"
    for event in events:
        kept = sum(1 for s in states if s["status"] == "CONFIRMED" and s["eventId"] == event["id"])
        total, bookings = live.event_bookings(organizer, event["id"])
        assert total == kept and all(b["status"] == "CONFIRMED" for b in bookings)
        support.wait_until(lambda event=event, kept=kept: live.get_event(event["id"])["availableTickets"] == 10 - kept,
                           5, message="the expired holds' tickets back, once")


@pytest.mark.postgresql_only("several processes share one database only on PostgreSQL here")
def test_sweepers_in_two_processes_expire_each_hold_once(backend, tmp_path_factory):
    """Two gunicorns (2 workers each: four sweepers) on one PostgreSQL database."""
    # 2 threads, pools of 2: within the server's max_connections, beside this module's
    # server and another test process's
    env = {**LIVE_ENV, "DB_POOL_SIZE": "2"}
    first = harness.start(backend, tmp_path_factory, "sweepers-a", workers=2, env=env, threads=2)
    try:
        second = support.Server(first.database_url, workers=2, threads=2,
                                log_path=first.log_path.with_name("second.log"), env=env).start()
        try:
            organizer = first.user("ORGANIZER")
            event = first.event(organizer, 150)
            customers = first.users(150)
            responses = first.together(
                [post("/api/holds", c, {"eventId": event["id"], "ticketsCount": 1}) for c in customers])
            assert Counter(r.status_code for r in responses) == {201: 150}, first.explain(responses)
            assert first.get_event(event["id"])["availableTickets"] == 0
            support.wait_until(lambda: first.get_event(event["id"])["availableTickets"] == 150, 30, 0.2,
                               message="every expired hold's ticket back")
            time.sleep(1)  # more sweeps: nothing may come back twice
            after = first.get_event(event["id"])
            assert after["availableTickets"] == 150 and after["totalTickets"] == 150
            states = Counter(first.http.get(f"/api/holds/{r.json()['id']}", headers=c["headers"]).json()["status"]
                             for c, r in zip(customers, responses, strict=True))
            assert states == {"EXPIRED": 150}
            first.assert_invariant()
        finally:
            second.stop()
    finally:
        harness.stop(first)
