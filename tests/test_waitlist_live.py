"""The waiting list under real concurrency: live gunicorn servers (tests/live.py), on
SQLite and on PostgreSQL; the invariant (set-aside tickets included) is checked after
every test."""

import time
from collections import Counter
from datetime import datetime

import pytest

from tests import support
from tests.live import SOLD_OUT_CODES, booking, cancel, code

pytestmark = pytest.mark.slow

SWEEP_SECONDS = 1
# Offers that lapse quickly, swept every second.
LIVE_ENV = {"WAITLIST_OFFER_SECONDS": "10", "HOLD_SWEEP_SECONDS": str(SWEEP_SECONDS)}


def sold_out(live, tickets):
    """An organizer and an event whose tickets are each booked by a customer of their own."""
    organizer = live.user("ORGANIZER")
    event = live.event(organizer, tickets)
    holders = live.users(tickets)
    return organizer, event, [(holder, live.book(holder, event["id"], 1)) for holder in holders]


def join(live, customer, event_id):
    response = live.http.post(f"/api/events/{event_id}/waitlist", headers=customer["headers"], json={"ticketsCount": 1})
    assert response.status_code == 201, response.text
    return response.json()


def entry(live, customer, event_id):
    return live.http.get(f"/api/events/{event_id}/waitlist/me", headers=customer["headers"]).json()


@pytest.mark.parametrize("path", ["/api/bookings", "/api/holds"])
def test_joining_while_booking_or_holding_at_once_never_leaves_the_customer_waiting(live, path):
    """A customer who books or holds an event leaves its waiting list. A join sent at the
    same instant as the booking (or hold), 20 times: either the join comes first and the
    booking makes its entry LEFT, or the booking does and the join is refused; never a
    WAITING entry beside the booking, which would later be offered tickets it could not
    confirm. One leaves 0 to 6 ms after the other, the order first in some attempts, the
    join in the others, so that some start while the other holds the event's row; both
    outcomes must happen. On a loaded machine one request may overtake the other by more
    than that, so while one outcome has not been seen the gap widens, 10 attempts at a
    time (up to 60 attempts)."""
    organizer = live.user("ORGANIZER")
    customer = live.user()
    others = live.users(2)

    def after(delay, path, body):
        def send(http):
            time.sleep(delay)
            return http.post(path, headers=customer["headers"], json=body)
        return send

    joins = Counter()
    attempt = 0
    while attempt < 20 or not (joins["made"] and joins["refused"]) and attempt < 60:
        event = live.event(organizer, 3)
        for other in others:
            live.book(other, event["id"], 1)
        lead = (attempt % 10 - 3) * (1 + attempt // 10) / 1000  # > 0: the join leaves first, by that much
        attempt += 1
        joined, order = live.together([
            after(max(-lead, 0), f"/api/events/{event['id']}/waitlist", {"ticketsCount": 2}),
            after(max(lead, 0), path, {"eventId": event["id"], "ticketsCount": 1}),
        ])
        assert order.status_code == 201, live.explain([joined, order])
        assert joined.status_code == 201 or code(joined) in ("already_booked", "already_holding"), \
            live.explain([joined, order])
        joins["made" if joined.status_code == 201 else "refused"] += 1
        mine = live.http.get(f"/api/events/{event['id']}/waitlist/me", headers=customer["headers"])
        assert mine.status_code == 404, mine.text  # no entry, or a LEFT one
        assert live.get_event(event["id"])["setAsideTickets"] == 0
    assert joins["made"] and joins["refused"], f"{joins}: the race never went both ways"


def test_returned_tickets_go_to_the_waiting_list_in_order_never_to_the_public(live):
    organizer, event, bookings = sold_out(live, 3)
    waiting = live.users(3)
    for customer in waiting:
        join(live, customer, event["id"])
    public = live.users(30)

    responses = live.together([cancel(holder, sold["id"]) for holder, sold in bookings]
                              + [booking(customer, event["id"], 1) for customer in public])

    cancels, attempts = responses[:3], responses[3:]
    assert all(r.status_code == 200 and r.json()["status"] == "CANCELLED" for r in cancels), live.explain(cancels)
    assert Counter(r.status_code for r in attempts) == {409: 30}, live.explain(attempts)  # the public gets nothing
    assert {code(r) for r in attempts} <= SOLD_OUT_CODES, live.explain(attempts)

    def offered():
        entries = [entry(live, customer, event["id"]) for customer in waiting]
        return entries if all(e["status"] == "OFFERED" for e in entries) else None

    entries = support.wait_until(offered, 10, 0.1, message="an offer to each of the 3 waiting customers")
    holds = [live.http.get(f"/api/holds/{e['holdId']}", headers=customer["headers"]).json()
             for e, customer in zip(entries, waiting, strict=True)]
    assert [h["status"] for h in holds] == ["HELD"] * 3
    assert [h["id"] for h in holds] == sorted(h["id"] for h in holds)  # made in queue order
    created = [datetime.fromisoformat(h["createdAt"].replace("Z", "+00:00")) for h in holds]
    assert created == sorted(created)
    after = live.get_event(event["id"])
    assert (after["availableTickets"], after["setAsideTickets"]) == (0, 0)  # all three held, none counted twice
    total, sold = live.event_bookings(organizer, event["id"])
    assert total == 3 and all(b["status"] == "CANCELLED" for b in sold)


def test_an_offer_that_lapses_passes_to_the_next_entry_within_a_sweep(live):
    _, event, bookings = sold_out(live, 1)
    first, second = live.users(2)
    join(live, first, event["id"])
    join(live, second, event["id"])
    holder, sold = bookings[0]
    assert live.http.post(f"/api/bookings/{sold['id']}/cancel", headers=holder["headers"]).status_code == 200
    offer = support.wait_until(lambda: (lambda e: e if e["status"] == "OFFERED" else None)(
        entry(live, first, event["id"])), 10, 0.1, message="the offer to the first in line")
    lapses_at = datetime.fromisoformat(
        live.http.get(f"/api/holds/{offer['holdId']}", headers=first["headers"]).json()["expiresAt"]
        .replace("Z", "+00:00")).timestamp()
    passed = support.wait_until(lambda: (lambda e: e if e["status"] == "OFFERED" else None)(
        entry(live, second, event["id"])), 30, 0.05, message="the lapsed offer passed on")
    late = time.time() - lapses_at
    assert late <= SWEEP_SECONDS + 2, f"passed on {late:.1f} s after the first offer lapsed"
    assert entry(live, first, event["id"])["status"] == "LAPSED"
    assert passed["holdId"] != offer["holdId"]
    after = live.get_event(event["id"])
    assert (after["availableTickets"], after["setAsideTickets"]) == (0, 0)


def admin_of(live):
    """An ADMIN: registered, made one in the database (as `flask create-admin` would), logged in."""
    import sqlalchemy as sa

    user = live.user()
    engine = sa.create_engine(support._normalized(live.database_url))
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE users SET role = 'ADMIN' WHERE id = :id"), {"id": user["id"]})
    engine.dispose()
    return user


def test_customers_disabled_as_they_join_and_tickets_come_back_give_up_every_place(live):
    """Three of six customers in line (the 1st, 3rd and 5th) are disabled while, at the
    same instant, they join a second list and the event's two tickets come back, three
    times over: no 5xx, each join refused or taken off with the rest, no disabled
    customer left WAITING or OFFERED on either list, and the two offers end with the
    first two customers in line still enabled."""
    admin = admin_of(live)
    for _ in range(3):
        disabled_at_once(live, admin)


def disabled_at_once(live, admin):
    _, event, bookings = sold_out(live, 2)
    _, elsewhere, _ = sold_out(live, 1)
    line = live.users(6)
    for customer in line:
        join(live, customer, event["id"])
    disabled, enabled = line[0::2], line[1::2]
    disables = [lambda http, c=c: http.patch(f"/api/admin/users/{c['id']}", headers=admin["headers"],
                                             json={"disabled": True}) for c in disabled]
    joins = [lambda http, c=c: http.post(f"/api/events/{elsewhere['id']}/waitlist", headers=c["headers"],
                                         json={"ticketsCount": 1}) for c in disabled]
    responses = live.together(disables + joins + [cancel(holder, sold["id"]) for holder, sold in bookings])
    assert [r.status_code for r in responses[:3]] == [200] * 3, live.explain(responses)
    assert {r.status_code for r in responses[3:6]} <= {201, 401}, live.explain(responses)
    assert [r.status_code for r in responses[6:]] == [200] * 2, live.explain(responses)

    support.wait_until(lambda: [entry(live, c, event["id"])["status"] for c in enabled]
                       == ["OFFERED", "OFFERED", "WAITING"], 10, 0.1, message="offers to the first two enabled")
    gone = {c["id"] for c in disabled}
    for listed in (event, elsewhere):
        queue = live.http.get(f"/api/events/{listed['id']}/waitlist?perPage=100", headers=admin["headers"]).json()
        assert not [e for e in queue if e["user"]["id"] in gone and e["status"] in ("WAITING", "OFFERED")], queue
