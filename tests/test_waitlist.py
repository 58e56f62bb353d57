"""The waiting list: returned tickets are set aside for it and offered in queue order,
never given back to the public while anyone waits."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from eventbook.extensions import db
from eventbook.models import Hold, TicketType, User
from tests import support
from tests.support import ok, refused, wait_until


@pytest.fixture
def sold_out(shop, make_user, make_event):
    """sold_out(tickets, **fields) -> (event, [bookings, one ticket each, one customer each])."""

    def make(tickets=3, **fields):
        event = make_event(totalTickets=tickets, **fields)
        bookings = []
        for _ in range(tickets):
            customer = make_user()
            bookings.append((customer, ok(shop.book(customer, event["id"], 1), 201)))
        assert shop.available(event["id"]) == 0
        return event, bookings

    return make


@pytest.fixture
def sales_window(app):
    """sales_window(type_id, sales_start=..., sales_end=...): move a type's sales window
    while customers wait, in the database (the API takes no window already over)."""

    def move(type_id, **window):
        with app.app_context():
            db.session.execute(sa.update(TicketType).where(TicketType.id == type_id).values(**window))
            db.session.commit()

    return move


def join(client, actor, event_id, tickets=1, **body):
    return client.post(f"/api/events/{event_id}/waitlist", json={"ticketsCount": tickets, **body},
                       headers=actor.headers)


def entry_of(client, actor, event_id):
    return client.get(f"/api/events/{event_id}/waitlist/me", headers=actor.headers)


def offered(client, actor, event_id):
    """The actor's entry once it is OFFERED (offers are made in the background)."""
    return wait_until(lambda: (lambda e: e if e["status"] == "OFFERED" else None)(
        entry_of(client, actor, event_id).get_json()), 10, message=f"an offer to {actor.email}")


def test_join_only_when_short_see_your_place_and_leave(client, shop, make_user, sold_out, make_event):
    event, _ = sold_out(2)
    alice, bob = make_user(), make_user()
    first = ok(join(client, alice, event["id"], 2), 201)
    assert first["status"] == "WAITING" and first["position"] == 1 and first["holdId"] is None
    assert first["ticketsCount"] == 2 and first["eventId"] == event["id"]
    assert ok(join(client, bob, event["id"]), 201)["position"] == 2
    assert ok(entry_of(client, bob, event["id"]))["position"] == 2
    assert client.delete(f"/api/events/{event['id']}/waitlist/me", headers=alice.headers).status_code == 204
    assert ok(entry_of(client, bob, event["id"]))["position"] == 1
    refused(entry_of(client, alice, event["id"]), 404, "not_found")
    free = make_event(totalTickets=5)
    body = refused(join(client, alice, free["id"], 2), 409, "tickets_available")
    assert body["availableTickets"] == 5


@pytest.mark.parametrize("config_overrides", [{"PURGE_EXPIRED_SECONDS": 1.0, "HOLD_SWEEP_SECONDS": 86400}],
                         ids=["purge-every-second-no-hold-sweep"])
def test_a_started_events_waiting_list_lapses(client, shop, organizer, make_user, sold_out, set_event_date):
    """No offer can come once the event has started: its WAITING entries become LAPSED
    within PURGE_EXPIRED_SECONDS, the figures stop counting them, and what was set aside
    for them goes back to the public (without waiting for the hold sweeper)."""
    event, bookings = sold_out(2)
    waiting = make_user()
    ok(join(client, waiting, event["id"], 2), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))  # one ticket back: set aside, too few for the offer of two
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 1, 5, message="a ticket set aside")
    set_event_date(event["id"], datetime.now(timezone.utc) - timedelta(minutes=5))
    entry = wait_until(lambda: (lambda e: e if e["status"] == "LAPSED" else None)(
        ok(client.get(f"/api/events/{event['id']}/waitlist/me", headers=waiting.headers))), 15,
        message="the entry to lapse")
    assert entry["position"] is None
    stats = ok(client.get(f"/api/events/{event['id']}/stats", headers=organizer.headers))
    assert (stats["waiting"], stats["setAside"], stats["available"]) == (0, 0, 1)


def test_tickets_back_after_the_event_started_are_not_set_aside_for_good(client, shop, make_user,
                                                                         make_event, set_event_date, expire_hold):
    """A hold expires once its event has started, while someone waits: no offer can be
    made any more, so its tickets go back to the public (unsold, as the figures say),
    not set aside for a queue that lapses."""
    event = make_event(totalTickets=2)
    holder, waiting = make_user(), make_user()
    held = ok(shop.hold(holder, event["id"], 2), 201)
    ok(join(client, waiting, event["id"]), 201)
    set_event_date(event["id"], datetime.now(timezone.utc) - timedelta(minutes=5))
    expire_hold(held["id"])
    wait_until(lambda: shop.available(event["id"]) == 2, 10, message="the tickets back to the public")
    assert shop.event(event["id"])["setAsideTickets"] == 0
    assert ok(entry_of(client, waiting, event["id"]))["status"] == "LAPSED"


def test_one_entry_per_customer_and_event(client, make_user, sold_out):
    event, _ = sold_out(1)
    carol = make_user()
    ok(join(client, carol, event["id"]), 201)
    refused(join(client, carol, event["id"]), 409, "already_waiting")
    client.delete(f"/api/events/{event['id']}/waitlist/me", headers=carol.headers)
    assert ok(join(client, carol, event["id"]), 201)["position"] == 1  # back at the end of the line


def test_returned_tickets_are_set_aside_and_offered_in_queue_order(client, shop, make_user, sold_out,
                                                                    wait_for_notifications):
    event, bookings = sold_out(3)
    alice, bob = make_user(), make_user()
    ok(join(client, alice, event["id"], 2), 201)
    ok(join(client, bob, event["id"], 1), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 1, 5, message="one ticket set aside")
    assert shop.available(event["id"]) == 0  # never back to the public while anyone waits
    refused(shop.book(make_user(), event["id"], 1), 409, "sold_out")
    assert ok(entry_of(client, bob, event["id"]))["status"] == "WAITING"  # Alice, first in line, needs 2
    ok(shop.cancel(bookings[1][0], bookings[1][1]["id"]))
    entry = offered(client, alice, event["id"])
    hold = ok(client.get(f"/api/holds/{entry['holdId']}", headers=alice.headers))
    assert hold["status"] == "HELD" and hold["ticketsCount"] == 2 and hold["userId"] == alice.id
    assert shop.event(event["id"])["setAsideTickets"] == 0 and shop.available(event["id"]) == 0
    [note] = wait_for_notifications(alice, 1)
    assert note["kind"] == "WAITLIST_OFFER" and f"#{hold['id']}" in note["body"]
    assert "2 tickets for" in note["body"] and " are held for you " in note["body"]
    booking = ok(shop.confirm(alice, hold["id"]), 201)
    assert booking["ticketsCount"] == 2
    assert ok(entry_of(client, alice, event["id"]))["status"] == "CONVERTED"
    ok(shop.cancel(bookings[2][0], bookings[2][1]["id"]))  # Bob's turn, for one
    [bobs] = wait_for_notifications(bob, 1)
    assert "1 ticket for" in bobs["body"] and " is held for you " in bobs["body"]
    ok(shop.cancel(bookings[2][0], bookings[2][1]["id"]))
    assert offered(client, bob, event["id"])["position"] is None


def test_an_offer_while_tickets_are_public_again_is_named_when_the_customer_holds_or_books(client, shop, make_user,
                                                                                           make_event):
    """A customer whose offer came with tickets to spare (two came back, one was theirs)
    and who tries to hold or book instead is told which hold is already theirs (the
    offer is their hold: 409 already_holding); nothing is taken, the offer stands."""
    event = make_event(totalTickets=2)
    buyer, alice = make_user(), make_user()
    booking = ok(shop.book(buyer, event["id"], 2), 201)
    ok(join(client, alice, event["id"], 1), 201)
    ok(shop.cancel(buyer, booking["id"]))
    hold_id = offered(client, alice, event["id"])["holdId"]
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the other ticket back to the public")
    assert refused(shop.hold(alice, event["id"], 1), 409, "already_holding")["holdId"] == hold_id
    assert refused(shop.book(alice, event["id"], 1), 409, "already_holding")["holdId"] == hold_id
    assert shop.available(event["id"]) == 1  # the refused hold and booking took nothing
    assert ok(entry_of(client, alice, event["id"]))["status"] == "OFFERED"
    ok(shop.confirm(alice, hold_id), 201)
    assert ok(entry_of(client, alice, event["id"]))["status"] == "CONVERTED"


@pytest.mark.postgresql_only("SQLite has one writer at a time: a join and a release never overlap")
def test_tickets_released_while_the_first_customer_joins_reach_them(database_url, shop, make_user, make_event):
    """A release that waits on a join's lock of the event decides on its snapshot, from
    before the join, that nobody waits: its ticket goes to the public. The offer that
    every return of tickets is followed by sees the new entry and takes it back for them."""
    event = make_event(totalTickets=1)
    holder, alice = make_user(), make_user()
    held = ok(shop.hold(holder, event["id"], 1), 201)
    type_id = shop.event(event["id"])["ticketTypes"][0]["id"]
    engine = sa.create_engine(support._normalized(database_url))
    answers = []
    try:
        with engine.connect() as joining:  # a join under way: the event locked, the entry written
            joining.execute(sa.text("SELECT id FROM events WHERE id = :id FOR UPDATE"), {"id": event["id"]})
            joining.execute(sa.text(
                "INSERT INTO waitlist_entries (event_id, user_id, ticket_type_id, tickets_count, status, created_at, "
                "updated_at) VALUES (:event, :user, :type, 1, 'WAITING', now(), now())"),
                {"event": event["id"], "user": alice.id, "type": type_id})
            releasing = threading.Thread(target=lambda: answers.append(shop.release(holder, held["id"])))
            releasing.start()
            wait_until(lambda: support.waiting_for_locks(engine) == 1, 10,
                       message="the release, its hold ended, waiting for the event")
            joining.commit()
            releasing.join(30)
    finally:
        engine.dispose()
    assert answers[0].status_code == 204
    entry = offered(shop.client, alice, event["id"])
    assert entry["holdId"] and shop.available(event["id"]) == 0


@pytest.mark.postgresql_only("SQLite has one writer at a time: an order and an offer never overlap")
def test_no_offer_is_made_to_a_customer_while_their_order_of_the_event_is_under_way(database_url, client, shop,
                                                                                    make_user, sold_out):
    """An order of the customer's being made (its turn taken, as a booking or hold takes
    it before waiting for the event's row) holds their offer back: made then, it would
    miss the booking, or the booking it. The offer comes once the order is done."""
    event, bookings = sold_out(1)
    erin = make_user()
    ok(join(client, erin, event["id"]), 201)
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as ordering:
            ordering.execute(sa.text("SELECT pg_advisory_xact_lock(:customer, :event)"),
                             {"customer": erin.id, "event": event["id"]})
            holder, booking = bookings[0]
            ok(shop.cancel(holder, booking["id"]), 200)
            time.sleep(1.5)  # sweeps pass meanwhile
            assert ok(entry_of(client, erin, event["id"]))["status"] == "WAITING"
            assert shop.event(event["id"])["setAsideTickets"] == 1  # kept for the list, not given to the public
            ordering.rollback()
    finally:
        engine.dispose()
    assert offered(client, erin, event["id"])["holdId"]


@pytest.mark.postgresql_only("SQLite has one writer at a time: nothing to deadlock")
def test_leaving_and_releasing_wait_for_the_customer_s_turn_before_locking_a_row(database_url, client, shop,
                                                                              make_user, sold_out):
    """A leave locks the entry, then its offer's hold; a confirm or release locks the hold,
    then the entry. Each takes the customer's turn first, so neither has a row locked
    while it waits for the other: with the turn taken elsewhere, both wait with the entry
    and the hold free, and finish once it is given back."""
    event, bookings = sold_out(1)
    erin = make_user()
    ok(join(client, erin, event["id"]), 201)
    holder, booking = bookings[0]
    ok(shop.cancel(holder, booking["id"]), 200)
    hold_id = offered(client, erin, event["id"])["holdId"]
    engine = sa.create_engine(support._normalized(database_url))
    answers = {}
    try:
        for name, request in (("leave", lambda: client.delete(f"/api/events/{event['id']}/waitlist/me",
                                                              headers=erin.headers)),
                              ("release", lambda: shop.release(erin, hold_id))):
            with engine.connect() as turn, engine.connect() as probe:
                turn.execute(sa.text("SELECT pg_advisory_xact_lock(:customer, :event)"),
                             {"customer": erin.id, "event": event["id"]})
                waiting = threading.Thread(target=lambda n=name, r=request: answers.__setitem__(n, r()))
                waiting.start()
                wait_until(lambda: support.waiting_for_locks(engine) == 1, 10,
                           message=f"the {name} waiting for the customer's turn")
                for table, row_id in (("holds", hold_id), ("waitlist_entries", None)):
                    where = "id = :id" if row_id else "event_id = :event AND user_id = :user"
                    probe.execute(sa.text(f"SELECT 1 FROM {table} WHERE {where} FOR UPDATE NOWAIT"),
                                  {"id": row_id, "event": event["id"], "user": erin.id})  # free: no error
                    probe.rollback()
                turn.rollback()
                waiting.join(30)
    finally:
        engine.dispose()
    assert answers["leave"].status_code == 204 and answers["release"].status_code == 204
    assert entry_of(client, erin, event["id"]).status_code == 404  # LEFT, its offer released
    assert ok(client.get(f"/api/holds/{hold_id}", headers=erin.headers))["status"] == "RELEASED"


@pytest.mark.postgresql_only("SQLite has one writer at a time: a leave and an offer never overlap")
@pytest.mark.parametrize("first", ["offer", "leave"])
def test_leaving_as_the_offer_is_made_leaves_for_good(database_url, client, shop, make_user, sold_out, first):
    """Alice leaves the list while the offer to her is being made: an offer made first
    waits on her entry's row (locked here) and the leave after it; a leave made first
    has taken her turn, so the offer is left to the next pass. Either way she has left,
    no hold of hers stays HELD, and Bob, next in line, gets the offer."""
    event, bookings = sold_out(1)
    alice, bob = make_user(), make_user()
    ok(join(client, alice, event["id"]), 201)
    ok(join(client, bob, event["id"]), 201)
    engine = sa.create_engine(support._normalized(database_url))
    answers = []
    leaving = threading.Thread(target=lambda: answers.append(
        client.delete(f"/api/events/{event['id']}/waitlist/me", headers=alice.headers)))
    steps = {"offer": lambda: ok(shop.cancel(bookings[0][0], bookings[0][1]["id"])), "leave": leaving.start}

    try:
        with engine.connect() as locking:
            locking.execute(sa.text("SELECT id FROM waitlist_entries WHERE event_id = :event AND user_id = :user "
                                    "FOR UPDATE"), {"event": event["id"], "user": alice.id})
            for number, step in enumerate([first, "leave" if first == "offer" else "offer"], start=1):
                steps[step]()
                if first == "leave" and step == "offer":
                    time.sleep(0.5)  # deferred: it does not wait on the entry
                    assert support.waiting_for_locks(engine) == 1
                    continue
                wait_until(lambda n=number: support.waiting_for_locks(engine) == n, 10, message=f"{step} waiting on the entry")
            locking.commit()
            leaving.join(30)
        assert answers[0].status_code == 204
        refused(entry_of(client, alice, event["id"]), 404, "not_found")
        assert offered(client, bob, event["id"])["holdId"]
        with engine.connect() as reading:
            held = reading.scalar(sa.text("SELECT count(*) FROM holds WHERE user_id = :user AND status = 'HELD'"),
                                  {"user": alice.id})
        assert held == 0
    finally:
        engine.dispose()


def test_an_offer_that_lapses_goes_to_the_next_in_line(client, shop, make_user, sold_out, expire_hold):
    event, bookings = sold_out(2)
    alice, bob = make_user(), make_user()
    ok(join(client, alice, event["id"]), 201)
    ok(join(client, bob, event["id"]), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    hold_id = offered(client, alice, event["id"])["holdId"]
    expire_hold(hold_id)
    bob_hold = offered(client, bob, event["id"])["holdId"]
    assert ok(entry_of(client, alice, event["id"]))["status"] == "LAPSED"
    refused(shop.confirm(alice, hold_id), 409, "hold_expired")
    shop.release(bob, bob_hold)  # released: lapses too, and nobody is left waiting
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the ticket back to the public")
    assert ok(entry_of(client, bob, event["id"]))["status"] == "LAPSED"
    assert shop.event(event["id"])["setAsideTickets"] == 0


@pytest.mark.parametrize("account", [{"disabled": True}, {"role": "ORGANIZER"}], ids=["disabled", "organizer"])
def test_no_offer_goes_to_an_account_disabled_or_no_longer_a_customer_still_in_line(app, client, shop, make_user,
                                                                                  sold_out, organizer, account):
    """An account disabled, or made an organizer, while an earlier release served (which
    left its places in line; or between the change and its clean-up) is passed over: its
    entry lapses when tickets come back, the next gets them (an organizer could not
    confirm the offer)."""
    event, bookings = sold_out(1)
    mallory, bob = make_user(), make_user()
    ok(join(client, mallory, event["id"]), 201)
    ok(join(client, bob, event["id"]), 201)
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == mallory.id).values(**account))
        db.session.commit()
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    offered(client, bob, event["id"])
    queue = ok(client.get(f"/api/events/{event['id']}/waitlist", headers=organizer.headers))
    assert [(e["user"]["id"], e["status"]) for e in queue] == [(mallory.id, "LAPSED"), (bob.id, "OFFERED")]


def test_with_nobody_left_waiting_set_aside_tickets_go_back_to_the_public(client, shop, make_user, sold_out):
    event, bookings = sold_out(3)
    dave = make_user()
    ok(join(client, dave, event["id"], 3), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 1, 5, message="a ticket set aside")
    client.delete(f"/api/events/{event['id']}/waitlist/me", headers=dave.headers)
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the ticket back to the public")
    assert shop.event(event["id"])["setAsideTickets"] == 0


def test_a_larger_capacity_goes_to_the_waiting_list_first(client, shop, organizer, make_user, sold_out):
    event, _ = sold_out(2)
    erin = make_user()
    ok(join(client, erin, event["id"], 2), 201)
    ok(client.patch(f"/api/events/{event['id']}", json={"totalTickets": 5}, headers=organizer.headers))
    offered(client, erin, event["id"])
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the rest to the public")
    assert shop.event(event["id"])["setAsideTickets"] == 0


def test_a_larger_capacity_is_set_aside_whichever_other_events_exist(client, shop, organizer, make_user, make_event,
                                                                   sold_out):
    # Other events, smaller and larger, before and after: a capacity change reads only its own event's row.
    make_event(totalTickets=1)
    make_event(totalTickets=50)
    event, _ = sold_out(2)
    make_event(totalTickets=7)
    erin = make_user()
    ok(join(client, erin, event["id"], 3), 201)
    grown = ok(client.patch(f"/api/events/{event['id']}", json={"totalTickets": 4}, headers=organizer.headers))
    assert (grown["totalTickets"], grown["availableTickets"], grown["setAsideTickets"]) == (4, 0, 2)
    refused(shop.book(make_user(), event["id"], 1), 409, "sold_out")  # nobody jumps the queue
    assert ok(entry_of(client, erin, event["id"]))["status"] == "WAITING"  # 2 set aside, 3 asked for
    grown = ok(client.patch(f"/api/events/{event['id']}", json={"totalTickets": 6}, headers=organizer.headers))
    # all 4 set aside; or 1, when erin's offer (3) was made before the answer read the event
    assert (grown["totalTickets"], grown["availableTickets"]) == (6, 0) and grown["setAsideTickets"] in (4, 1)
    offered(client, erin, event["id"])
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the rest to the public")


def test_a_larger_type_quantity_is_set_aside_for_those_waiting_for_the_type(client, shop, organizer, make_user,
                                                                            make_event):
    make_event(totalTickets=1)
    make_event(totalTickets=40, ticketTypes=[{"name": "X", "price": "1.00", "quantity": 40}])
    event = make_event(totalTickets=10, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 2},
                                                     {"name": "B", "price": "2.00", "quantity": 8}])
    a = shop.types(event["id"])["A"]["id"]
    for _ in range(2):
        ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=a), 201)
    gina = make_user()
    ok(join(client, gina, event["id"], 3, ticketTypeId=a), 201)
    url = f"/api/events/{event['id']}/ticket-types/{a}"
    grown = ok(client.patch(url, json={"quantity": 4}, headers=organizer.headers))
    assert (grown["quantity"], grown["availableQuantity"]) == (4, 0)
    refused(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=a), 409, "sold_out")
    assert ok(entry_of(client, gina, event["id"]))["status"] == "WAITING"


def test_a_smaller_capacity_takes_free_then_set_aside_tickets_never_sold_ones(client, shop, organizer, make_user,
                                                                                 make_event):
    event = make_event(totalTickets=6)
    first, rest = make_user(), make_user()
    early = ok(shop.book(first, event["id"], 1), 201)
    ok(shop.book(rest, event["id"], 4), 201)  # 1 left
    carol = make_user()
    ok(join(client, carol, event["id"], 3), 201)
    ok(shop.cancel(first, early["id"]))
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 1, 5, message="a ticket set aside")
    url = f"/api/events/{event['id']}"
    cut = ok(client.patch(url, json={"totalTickets": 4}, headers=organizer.headers))
    assert (cut["totalTickets"], cut["availableTickets"], cut["setAsideTickets"]) == (4, 0, 0)
    body = refused(client.patch(url, json={"totalTickets": 3}, headers=organizer.headers), 409, "capacity_below_sold")
    assert body["sold"] == 4 and "4 tickets" in body["message"]
    assert ok(entry_of(client, carol, event["id"]))["status"] == "WAITING"
    # a type likewise: its set-aside tickets go before its sold ones
    typed = make_event(totalTickets=10, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 3},
                                                     {"name": "B", "price": "1.00", "quantity": 7}])
    a = shop.types(typed["id"])["A"]["id"]
    buyers = [make_user() for _ in range(3)]
    bookings = [ok(shop.book(buyer, typed["id"], ticketsCount=1, ticketTypeId=a), 201) for buyer in buyers]
    ok(join(client, make_user(), typed["id"], 2, ticketTypeId=a), 201)
    ok(shop.cancel(buyers[0], bookings[0]["id"]))
    wait_until(lambda: shop.types(typed["id"])["A"]["quantity"] - shop.types(typed["id"])["A"]["availableQuantity"]
               == 3, 5, message="its ticket set aside")
    type_url = f"/api/events/{typed['id']}/ticket-types/{a}"
    assert ok(client.patch(type_url, json={"quantity": 2}, headers=organizer.headers))["availableQuantity"] == 0
    body = refused(client.patch(type_url, json={"quantity": 1}, headers=organizer.headers), 409, "capacity_below_sold")
    assert body["sold"] == 2


def test_tickets_set_aside_by_the_event_go_back_once_the_last_in_line_buys(client, shop, make_user, make_event):
    """Tickets of B come back while someone waits for 2 of A, of which 1 is left: they are
    set aside by the event, not by a type, and stay so (strict order: she keeps her place,
    and what comes back may yet serve her) until she leaves the list."""
    event = make_event(totalTickets=10, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 3},
                                                     {"name": "B", "price": "2.00", "quantity": 10}])
    types = shop.types(event["id"])
    a, b = types["A"]["id"], types["B"]["id"]
    ok(shop.book(make_user(), event["id"], items=[{"ticketTypeId": a, "count": 2}]), 201)
    carl = make_user()
    returned = ok(shop.book(carl, event["id"], items=[{"ticketTypeId": b, "count": 2}]), 201)
    wendy = make_user()
    ok(join(client, wendy, event["id"], 2, ticketTypeId=a), 201)
    ok(shop.cancel(carl, returned["id"]))
    assert shop.event(event["id"])["setAsideTickets"] == 2
    time.sleep(1)  # the cancel's offer pass runs meanwhile, in the background: A has too few for an offer
    assert shop.event(event["id"])["setAsideTickets"] == 2
    ok(shop.book(wendy, event["id"], items=[{"ticketTypeId": b, "count": 1}]), 201)  # she leaves the list
    refused(entry_of(client, wendy, event["id"]), 404, "not_found")
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 0, 5, message="the set-aside tickets released")
    assert shop.available(event["id"]) == 7  # 10 - 2 (A) - 1 (Wendy's B): Carl's 2 back to the public


def test_leaving_with_an_offer_releases_it_and_leaves_the_list(client, shop, make_user, sold_out):
    event, bookings = sold_out(1)
    erik = make_user()
    ok(join(client, erik, event["id"]), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    hold_id = offered(client, erik, event["id"])["holdId"]
    assert client.delete(f"/api/events/{event['id']}/waitlist/me", headers=erik.headers).status_code == 204
    refused(entry_of(client, erik, event["id"]), 404, "not_found")  # LEFT, not LAPSED
    assert ok(client.get(f"/api/holds/{hold_id}", headers=erik.headers))["status"] == "RELEASED"
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the ticket back to the public")


def test_leaving_with_an_offer_past_its_expiry_ends_it_expired(client, shop, make_user, sold_out, expire_hold):
    """An offer whose time is up is EXPIRED, even before a sweep, whatever ends it: a
    leave too (as a release)."""
    event, bookings = sold_out(1)
    erik = make_user()
    ok(join(client, erik, event["id"]), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    hold_id = offered(client, erik, event["id"])["holdId"]
    expire_hold(hold_id)
    assert client.delete(f"/api/events/{event['id']}/waitlist/me", headers=erik.headers).status_code == 204
    assert ok(client.get(f"/api/holds/{hold_id}", headers=erik.headers))["status"] == "EXPIRED"
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the ticket back to the public")


def test_a_direct_hold_or_booking_leaves_the_list(client, shop, make_user, make_event):
    event = make_event(totalTickets=3, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 3},
                                                    {"name": "B", "price": "2.00", "quantity": 1}])
    types = shop.types(event["id"])
    ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=types["B"]["id"]), 201)
    hank, ivy = make_user(), make_user()
    ok(join(client, hank, event["id"], 1, ticketTypeId=types["B"]["id"]), 201)  # B is sold out; A is not
    ok(join(client, ivy, event["id"], 1, ticketTypeId=types["B"]["id"]), 201)
    ok(shop.book(hank, event["id"], ticketsCount=1, ticketTypeId=types["A"]["id"]), 201)
    refused(entry_of(client, hank, event["id"]), 404, "not_found")  # LEFT
    ok(shop.hold(ivy, event["id"], ticketsCount=1, ticketTypeId=types["A"]["id"]), 201)
    refused(entry_of(client, ivy, event["id"]), 404, "not_found")


def test_joining_is_refused_when_it_makes_no_sense(client, shop, make_user, sold_out, make_event, organizer):
    event, bookings = sold_out(1)
    booked_customer = bookings[0][0]
    refused(join(client, booked_customer, event["id"]), 409, "already_booked")
    seated = make_event(totalTickets=1, seating="RESERVED")
    refused(join(client, make_user(), seated["id"]), 422, "validation_error")
    two_types = make_event(totalTickets=1, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 1},
                                                        {"name": "B", "price": "1.00", "quantity": 1}])
    ok(shop.book(make_user(), two_types["id"], ticketsCount=1, ticketTypeId=two_types["ticketTypes"][0]["id"]), 201)
    assert "ticketTypeId" in refused(join(client, make_user(), two_types["id"]), 422, "validation_error")["errors"]
    refused(join(client, make_user(), event["id"], 11), 422, "validation_error")
    refused(join(client, make_user(), 999_999), 404, "not_found")
    refused(client.delete("/api/events/999999/waitlist/me", headers=make_user().headers), 404, "not_found")
    refused(join(client, organizer, event["id"]), 403, "forbidden")
    client.delete(f"/api/events/{event['id']}", headers=organizer.headers)
    refused(join(client, make_user(), event["id"]), 409, "event_closed")


def test_joining_outside_the_types_sales_window_is_sales_closed(client, shop, make_user, make_event):
    now = datetime.now(timezone.utc)
    later = make_event(totalTickets=2, ticketTypes=[{"name": "Early bird", "price": "5.00", "quantity": 2,
                                                     "salesStart": support.iso(now + timedelta(days=1))}])
    body = refused(join(client, make_user(), later["id"]), 409, "sales_closed")  # not "book them instead"
    assert body["ticketTypeId"] == later["ticketTypes"][0]["id"] and body["salesStart"]
    closing = make_event(totalTickets=1, ticketTypes=[{"name": "Last call", "price": "5.00", "quantity": 1,
                                                       "salesEnd": support.iso(now + timedelta(seconds=2))}])
    ok(shop.book(make_user(), closing["id"], 1), 201)
    time.sleep(2.1)
    refused(join(client, make_user(), closing["id"]), 409, "sales_closed")


def test_a_first_in_line_asking_for_more_than_the_event_has_lapses_when_tickets_come_back(client, shop, make_user,
                                                                                          sold_out):
    event, bookings = sold_out(3)
    greedy, next_in_line = make_user(), make_user()
    ok(join(client, greedy, event["id"], 10), 201)  # the capacity might still grow before tickets come back
    ok(join(client, next_in_line, event["id"], 1), 201)
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    offered(client, next_in_line, event["id"])  # the ticket is not held up for good
    assert ok(entry_of(client, greedy, event["id"]))["status"] == "LAPSED"


def test_tickets_of_another_type_go_past_an_entry_whose_own_type_has_none(app, client, shop, make_user, make_event):
    """The first in line waits for a type sold out by its own quantity: the tickets of
    another type that come back are of no use to it. They go to the next in line who
    can take them, else back to the public; never held up for good."""
    event = make_event(totalTickets=4, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 1},
                                                    {"name": "B", "price": "1.00", "quantity": 3}])
    types = shop.types(event["id"])
    a, b = types["A"]["id"], types["B"]["id"]
    ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=a), 201)
    b_buyer, b_buyer_too = make_user(), make_user()
    first = ok(shop.book(b_buyer, event["id"], ticketsCount=2, ticketTypeId=b), 201)
    second = ok(shop.book(b_buyer_too, event["id"], ticketsCount=1, ticketTypeId=b), 201)
    for_a, for_b = make_user(), make_user()
    ok(join(client, for_a, event["id"], 1, ticketTypeId=a), 201)
    ok(join(client, for_b, event["id"], 1, ticketTypeId=b), 201)
    ok(shop.cancel(b_buyer_too, second["id"]))
    offered(client, for_b, event["id"])  # behind the entry for A, which could not use it
    assert ok(entry_of(client, for_a, event["id"]))["status"] == "WAITING"
    ok(shop.cancel(b_buyer, first["id"]))  # nobody left who can take these: back to the public
    wait_until(lambda: shop.available(event["id"]) == 2, 5, message="two B tickets back to the public")
    assert shop.event(event["id"])["setAsideTickets"] == 0
    ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=b), 201)
    assert ok(entry_of(client, for_a, event["id"]))["status"] == "WAITING"  # still first for A's own


def test_an_entry_whose_type_is_not_on_sale_yet_is_passed_over(client, shop, make_user, make_event, sales_window):
    event = make_event(totalTickets=2, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 2},
                                                    {"name": "B", "price": "1.00", "quantity": 2}])
    types = shop.types(event["id"])
    a, b = types["A"]["id"], types["B"]["id"]
    buyer = make_user()
    booked = ok(shop.book(buyer, event["id"], items=[{"ticketTypeId": a, "count": 1},
                                                     {"ticketTypeId": b, "count": 1}]), 201)
    early, later = make_user(), make_user()
    ok(join(client, early, event["id"], 1, ticketTypeId=a), 201)
    ok(join(client, later, event["id"], 1, ticketTypeId=b), 201)
    sales_window(a, sales_start=datetime.now(timezone.utc) + timedelta(days=1))  # put off while they wait
    ok(shop.cancel(buyer, booked["id"]))
    offered(client, later, event["id"])
    assert ok(entry_of(client, early, event["id"]))["status"] == "WAITING"


@pytest.fixture
def set_aside_for_a_type_not_on_sale(client, shop, make_user, make_event, sales_window):
    """A sold-out event of types A (2) and B (2 of its 4: the event's capacity), a
    customer waiting for A, whose sales are then put off a day, and A's 2 tickets back
    and set aside for them: (event, A's id, B's id, the waiting customer)."""
    event = make_event(totalTickets=4, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 2},
                                                    {"name": "B", "price": "1.00", "quantity": 4}])
    types = shop.types(event["id"])
    a, b = types["A"]["id"], types["B"]["id"]
    early_bird = make_user()
    booked = ok(shop.book(early_bird, event["id"], ticketsCount=2, ticketTypeId=a), 201)
    ok(shop.book(make_user(), event["id"], ticketsCount=2, ticketTypeId=b), 201)
    waiting = make_user()
    ok(join(client, waiting, event["id"], 1, ticketTypeId=a), 201)
    sales_window(a, sales_start=datetime.now(timezone.utc) + timedelta(days=1))  # put off while they wait
    ok(shop.cancel(early_bird, booked["id"]))
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 2, 5, message="A's tickets set aside")
    return event, a, b, waiting


def test_tickets_set_aside_for_a_type_not_on_sale_yet_wait_for_its_sales_to_open(client, shop, make_user, sales_window,
                                                                                     set_aside_for_a_type_not_on_sale):
    event, a, b, waiting = set_aside_for_a_type_not_on_sale
    time.sleep(1.5)  # a sweep or two: they stay set aside for the entry, not sold as B
    assert shop.event(event["id"])["setAsideTickets"] == 2
    refused(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=b), 409, "sold_out")
    assert ok(entry_of(client, waiting, event["id"]))["status"] == "WAITING"
    sales_window(a, sales_start=datetime.now(timezone.utc) - timedelta(seconds=1))  # open: the next pass offers
    offered(client, waiting, event["id"])


def test_tickets_set_aside_for_a_type_not_on_sale_go_back_once_the_event_has_started(
        client, shop, set_event_date, set_aside_for_a_type_not_on_sale):
    """Set aside for an entry whose type is not on sale yet, when the event starts: no
    ticket comes back to wake the list, and the sweeper's periodic pass gives them back
    to the public and lapses the entry."""
    event, _, _, waiting = set_aside_for_a_type_not_on_sale
    set_event_date(event["id"], datetime.now(timezone.utc) - timedelta(minutes=5))
    wait_until(lambda: shop.event(event["id"])["setAsideTickets"] == 0, 10, message="the tickets back to the public")
    assert shop.available(event["id"]) == 2
    assert ok(entry_of(client, waiting, event["id"]))["status"] == "LAPSED"


def test_no_offer_once_the_types_sales_are_over(client, shop, make_user, sold_out, sales_window):
    event, bookings = sold_out(2)
    late, later = make_user(), make_user()
    ok(join(client, late, event["id"]), 201)
    ok(join(client, later, event["id"]), 201)
    [ticket_type] = event["ticketTypes"]
    sales_window(ticket_type["id"], sales_end=datetime.now(timezone.utc) - timedelta(seconds=1))  # over as they wait
    ok(shop.cancel(bookings[0][0], bookings[0][1]["id"]))
    wait_until(lambda: shop.available(event["id"]) == 1, 5, message="the ticket back, with nobody left to serve")
    for customer in (late, later):
        entry = ok(entry_of(client, customer, event["id"]))
        assert (entry["status"], entry["holdId"]) == ("LAPSED", None)
    assert shop.event(event["id"])["setAsideTickets"] == 0


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_a_hold_past_its_expiry_does_not_keep_its_customer_off_the_list(client, shop,
                                                                        make_user, make_event, expire_hold):
    event = make_event(totalTickets=3)
    ok(shop.book(make_user(), event["id"], 2), 201)
    customer = make_user()
    held = ok(shop.hold(customer, event["id"], 1), 201)
    assert refused(join(client, customer, event["id"], 2), 409, "already_holding")["holdId"] == held["id"]
    expire_hold(held["id"])  # time passes: the hold expires, and no sweep has run
    entry = ok(join(client, customer, event["id"], 2), 201)
    assert (entry["status"], entry["position"]) == ("WAITING", 1)
    assert ok(client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "EXPIRED"
    assert shop.available(event["id"]) == 1  # its ticket came back before anyone waited: to the public


def test_joining_is_refused_in_the_words_a_sale_is_refused_in(client, shop, make_user, make_event):
    event = make_event(totalTickets=4)
    ok(shop.book(make_user(), event["id"], 2), 201)
    holder, booker = make_user(), make_user()
    ok(shop.hold(holder, event["id"], 1), 201)
    ok(shop.book(booker, event["id"], 1), 201)
    for customer, code in ((holder, "already_holding"), (booker, "already_booked")):
        sale = refused(shop.book(customer, event["id"], 1), 409, code)
        assert refused(join(client, customer, event["id"], 2), 409, code)["message"] == sale["message"]
    # the count is checked as a booking's is: before looking the event up
    assert "ticketsCount" in refused(join(client, holder, 2**31 - 1, 0), 422, "validation_error")["errors"]


def test_organizers_and_admins_see_the_queue_in_order(client, make_user, sold_out, organizer, admin):
    event, _ = sold_out(1)
    people = [make_user() for _ in range(3)]
    for person in people:
        ok(join(client, person, event["id"]), 201)
    url = f"/api/events/{event['id']}/waitlist"
    for who in (organizer, admin):
        queue = ok(client.get(url, headers=who.headers))
        assert [(e["user"]["id"], e["position"], e["status"]) for e in queue] == [
            (p.id, n, "WAITING") for n, p in enumerate(people, 1)]
    refused(client.get(url, headers=make_user("ORGANIZER").headers), 403, "forbidden")
    refused(client.get(url, headers=people[0].headers), 403, "forbidden")
    page = client.get(f"{url}?perPage=2&page=2", headers=organizer.headers)
    assert [e["position"] for e in ok(page)] == [3] and page.headers["X-Total-Count"] == "3"


def test_a_place_in_line_is_of_the_moment_its_entry_is_read(app, client, database_url, make_user, sold_out,
                                                             organizer):
    """An offer to the first in line commits while a read of the list is under way,
    after the read's first statement on the list: the entries and their places are read
    at one moment, so the first customer is WAITING first in line or OFFERED, never
    WAITING at place 0 (as when the place was counted by a later statement)."""
    event, _ = sold_out(1)
    first, second = make_user(), make_user()
    for person in (first, second):
        ok(join(client, person, event["id"]), 201)
    mark = sa.text("UPDATE waitlist_entries SET status = :status WHERE event_id = :event AND user_id = :user")
    outside = sa.create_engine(support._normalized(database_url))
    thread = threading.get_ident()

    def read_meanwhile(url, headers):
        seen = []

        def offer_between(_connection, _cursor, statement, *args):
            if threading.get_ident() == thread and "waitlist_entries" in statement:
                seen.append(statement)
                if len(seen) == 2:
                    with outside.begin() as connection:
                        connection.execute(mark, {"status": "OFFERED", "event": event["id"], "user": first.id})

        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", offer_between)
        try:
            return ok(client.get(url, headers=headers))
        finally:
            with app.app_context():
                sa.event.remove(db.engine, "before_cursor_execute", offer_between)
            with outside.begin() as connection:  # WAITING again for the next read
                connection.execute(mark, {"status": "WAITING", "event": event["id"], "user": first.id})
    try:
        mine = read_meanwhile(f"/api/events/{event['id']}/waitlist/me", first.headers)
        assert (mine["status"], mine["position"]) in {("WAITING", 1), ("OFFERED", None)}, mine
        queue = read_meanwhile(f"/api/events/{event['id']}/waitlist", organizer.headers)
        assert [(e["status"], e["position"]) for e in queue] in (
            [("WAITING", 1), ("WAITING", 2)], [("OFFERED", None), ("WAITING", 1)]), queue
    finally:
        outside.dispose()


def test_the_sweepers_expiry_pass_sets_aside_for_who_waits_on_each_event_of_its_batch(
        app, client, shop, make_user, make_event, sales_window):
    """Holds of two events expire in one pass of the sweeper: the tickets of the event
    with a waiting list are set aside for it (its type's sales are put off, so no offer
    takes them meanwhile), the other event's go back to the public."""
    waited = make_event(totalTickets=2, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 2}])
    a = shop.types(waited["id"])["A"]["id"]
    plain = make_event(totalTickets=3)
    holder, other, waiting = make_user(), make_user(), make_user()
    holds = [ok(shop.hold(holder, waited["id"], ticketsCount=2, ticketTypeId=a), 201),
             ok(shop.hold(other, plain["id"], 2), 201)]
    ok(join(client, waiting, waited["id"], 1, ticketTypeId=a), 201)
    sales_window(a, sales_start=datetime.now(timezone.utc) + timedelta(days=1))  # no offer can take them
    with app.app_context():  # both past their expiry at once (one pass ends them together), untouched by requests
        db.session.execute(sa.update(Hold).where(Hold.id.in_([held["id"] for held in holds]))
                           .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        db.session.commit()
    wait_until(lambda: shop.available(plain["id"]) == 3, 10, message="the plain event's tickets back")
    assert (shop.available(waited["id"]), shop.event(waited["id"])["setAsideTickets"]) == (0, 2)
    assert shop.types(waited["id"])["A"]["availableQuantity"] == 0
    assert ok(entry_of(client, waiting, waited["id"]))["status"] == "WAITING"


def test_a_page_of_the_queue_is_read_in_as_many_statements_however_many_it_shows(app, client, make_user, organizer,
                                                                                 sold_out):
    """Each entry comes with its customer: read for the whole page at once, not one
    query per entry."""
    event, _ = sold_out(1)  # made by the `organizer` fixture
    url = f"/api/events/{event['id']}/waitlist"
    counts = []
    for waiting in (1, 4):
        while len(client.get(url, headers=organizer.headers).get_json()) < waiting:
            ok(join(client, make_user(), event["id"]), 201)
        sent, response = support.statements(app, lambda: client.get(url, headers=organizer.headers))
        assert len(ok(response)) == waiting
        counts.append(len(sent))
    assert counts[0] == counts[1], counts
