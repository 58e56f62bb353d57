"""Holds: take tickets now, confirm within minutes; release; expiry."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import support
from tests.support import ok, refused, wait_until

TYPES = [{"name": "Standard", "price": "25.00", "quantity": 8}, {"name": "VIP", "price": "70.00", "quantity": 4}]


def test_a_hold_takes_the_tickets_at_once(app, shop, customer, make_event):
    event = make_event(totalTickets=12, ticketTypes=TYPES)
    vip = shop.types(event["id"])["VIP"]["id"]
    before = datetime.now(timezone.utc)
    response = shop.hold(customer, event["id"], ticketsCount=3, ticketTypeId=vip)
    held = ok(response, 201)
    assert response.headers["Location"] == f"/api/holds/{held['id']}"
    assert held["status"] == "HELD" and held["bookingId"] is None and held["userId"] == customer.id
    assert held["ticketsCount"] == 3 and held["totalAmount"] == "210.00" and held["currency"] == "EUR"
    assert held["items"] == [{"ticketTypeId": vip, "count": 3, "price": "70.00"}] and held["seats"] == []
    expires = datetime.fromisoformat(held["expiresAt"].replace("Z", "+00:00"))
    seconds = app.config["HOLD_SECONDS"]
    assert before + timedelta(seconds=seconds - 5) <= expires <= datetime.now(timezone.utc) + timedelta(seconds=seconds)
    assert shop.available(event["id"]) == 9 and shop.types(event["id"])["VIP"]["availableQuantity"] == 1
    assert ok(shop.client.get(response.headers["Location"], headers=customer.headers)) == held


def test_confirm_turns_the_hold_into_a_booking_once(client, shop, customer, make_event, wait_for_notifications):
    event = make_event(totalTickets=12, ticketTypes=TYPES)
    standard, vip = (shop.types(event["id"])[name]["id"] for name in ("Standard", "VIP"))
    held = ok(shop.hold(customer, event["id"], items=[{"ticketTypeId": standard, "count": 2},
                                                      {"ticketTypeId": vip, "count": 1}]), 201)
    assert ok(client.get("/api/notifications", headers=customer.headers)) == []  # a hold tells nobody anything
    booking = ok(shop.confirm(customer, held["id"]), 201)
    assert booking["status"] == "CONFIRMED" and booking["ticketsCount"] == 3 and booking["totalAmount"] == "120.00"
    assert sorted((i["ticketTypeId"], i["count"], i["price"]) for i in booking["items"]) == sorted(
        [(standard, 2, "25.00"), (vip, 1, "70.00")])
    hold_now = ok(client.get(f"/api/holds/{held['id']}", headers=customer.headers))
    assert hold_now["status"] == "CONFIRMED" and hold_now["bookingId"] == booking["id"]
    assert ok(shop.confirm(customer, held["id"]), 200)["id"] == booking["id"]  # again: its booking
    assert shop.available(event["id"]) == 9  # the tickets were taken once, when held
    [note] = wait_for_notifications(customer, 1)
    assert note["kind"] == "BOOKING_CONFIRMED" and f"#{booking['id']}" in note["body"] and "120.00 EUR" in note["body"]


def test_a_hold_taken_under_a_higher_limit_is_confirmed_whole(app, client, shop, customer, make_event):
    """MAX_TICKETS_PER_BOOKING lowered while a hold of more tickets is HELD: its confirm
    still gives a ticket, with its own code, for every ticket held."""
    event = make_event(totalTickets=30)
    limit = app.config["MAX_TICKETS_PER_BOOKING"]
    app.config["MAX_TICKETS_PER_BOOKING"] = limit + 5
    try:
        held = ok(shop.hold(customer, event["id"], limit + 5), 201)
    finally:
        app.config["MAX_TICKETS_PER_BOOKING"] = limit
    booking = ok(shop.confirm(customer, held["id"]), 201)
    assert booking["ticketsCount"] == limit + 5
    tickets = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer.headers))
    assert len({ticket["code"] for ticket in tickets}) == limit + 5
    assert shop.available(event["id"]) == 30 - limit - 5


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_a_customers_own_expired_hold_does_not_stand_in_the_way_of_their_booking(shop, customer, make_event,
                                                                                 expire_hold):
    """Before any sweep has ended it: the last ticket, held and let expire, is booked."""
    event = make_event(totalTickets=1)
    held = ok(shop.hold(customer, event["id"], 1), 201)
    expire_hold(held["id"])
    booking = ok(shop.book(customer, event["id"], 1), 201)
    assert booking["ticketsCount"] == 1 and shop.available(event["id"]) == 0


def test_the_total_is_fixed_when_the_tickets_are_taken(client, shop, customer, organizer, make_event):
    event = make_event(totalTickets=12, ticketTypes=TYPES)
    vip = shop.types(event["id"])["VIP"]["id"]
    held = ok(shop.hold(customer, event["id"], ticketsCount=2, ticketTypeId=vip), 201)
    ok(client.patch(f"/api/events/{event['id']}/ticket-types/{vip}", json={"price": "500.00"},
                    headers=organizer.headers))
    booking = ok(shop.confirm(customer, held["id"]), 201)
    assert booking["totalAmount"] == "140.00" and booking["items"][0]["price"] == "70.00"


def test_release_gives_the_tickets_back_once(client, shop, customer, admin, make_event):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 4), 201)
    assert shop.available(event["id"]) == 1
    assert shop.release(customer, held["id"]).status_code == 204
    assert shop.available(event["id"]) == 5
    assert ok(client.get(f"/api/holds/{held['id']}", headers=admin.headers))["status"] == "RELEASED"
    assert shop.release(customer, held["id"]).status_code == 204  # no change
    assert shop.available(event["id"]) == 5
    refused(shop.confirm(customer, held["id"]), 409, "hold_expired")


def test_an_admin_may_release_a_hold(shop, customer, admin, make_event):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    assert shop.release(admin, held["id"]).status_code == 204
    assert shop.available(event["id"]) == 5


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_a_hold_past_its_expiry_is_never_confirmed_even_before_the_sweep(app, shop, customer, make_event, expire_hold):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    expire_hold(held["id"])
    refused(shop.confirm(customer, held["id"]), 409, "hold_expired")
    assert shop.available(event["id"]) == 5  # the refused confirm expired it, as the sweep would have
    assert ok(shop.client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "EXPIRED"
    refused(shop.confirm(customer, held["id"]), 409, "hold_expired")
    assert shop.available(event["id"]) == 5  # back once


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_a_hold_past_its_expiry_reads_expired_before_the_sweep(app, shop, customer, admin, make_event, expire_hold):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    expire_hold(held["id"])
    assert shop.available(event["id"]) == 3  # nothing has looked at it yet
    for reader in (customer, admin):
        assert ok(shop.client.get(f"/api/holds/{held['id']}", headers=reader.headers))["status"] == "EXPIRED"
    assert shop.available(event["id"]) == 5  # its tickets came back once, when it was read
    assert shop.release(customer, held["id"]).status_code == 204  # an expired hold stays EXPIRED
    assert ok(shop.client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "EXPIRED"
    assert shop.available(event["id"]) == 5


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_a_customer_holds_again_as_soon_as_their_hold_expired(app, shop, customer, make_user, make_event, expire_hold):
    """Past expiresAt a hold no longer counts against one HELD hold per customer, even
    when it had the event's last tickets and no sweep has ended it yet."""
    event = make_event(totalTickets=3)
    held = ok(shop.hold(customer, event["id"], 3), 201)
    refused(shop.hold(make_user(), event["id"], 1), 409, "sold_out")
    expire_hold(held["id"])
    again = ok(shop.hold(customer, event["id"], 2), 201)
    assert ok(shop.client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "EXPIRED"
    assert shop.available(event["id"]) == 1
    refused(shop.hold(customer, event["id"], 1), 409, "already_holding")  # the new one has not expired
    expire_hold(again["id"])
    other = make_event(totalTickets=3)
    ok(shop.hold(customer, other["id"], 1), 201)
    ok(shop.hold(customer, event["id"], 3), 201)  # the new hold's own tickets came back first
    assert shop.available(event["id"]) == 0
    roomy = make_event(totalTickets=10)  # tickets to spare: the one-HELD-hold rule is what refuses first
    first = ok(shop.hold(customer, roomy["id"], 4), 201)
    expire_hold(first["id"])
    ok(shop.hold(customer, roomy["id"], 4), 201)
    assert shop.available(roomy["id"]) == 6


def test_the_sweeper_gives_expired_tickets_back(app, client, shop, customer, make_event, expire_hold):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    client.get("/api/health")  # starts the background threads of this process
    expire_hold(held["id"])
    wait_until(lambda: shop.available(event["id"]) == 5, 10, message="the expired hold's tickets back")
    assert ok(client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "EXPIRED"
    refused(shop.confirm(customer, held["id"]), 409, "hold_expired")
    assert shop.release(customer, held["id"]).status_code == 204
    assert shop.available(event["id"]) == 5  # back once


def test_one_sweep_gives_back_to_every_event_and_type_it_expires(app, client, shop, customer, make_user, make_event,
                                                                  expire_hold):
    """Holds of two events and of both types of one expire together: each event and each
    type gets exactly its own tickets back; a hold confirmed before the sweep keeps its."""
    typed, plain = make_event(totalTickets=12, ticketTypes=TYPES), make_event(totalTickets=5)
    kinds = shop.types(typed["id"])
    other, third = make_user(), make_user()
    holds = [
        ok(shop.hold(customer, typed["id"], ticketsCount=3, ticketTypeId=kinds["Standard"]["id"]), 201),
        ok(shop.hold(other, typed["id"], ticketsCount=2, ticketTypeId=kinds["VIP"]["id"]), 201),
        ok(shop.hold(customer, plain["id"], 4), 201),
    ]
    kept = ok(shop.hold(third, typed["id"], ticketsCount=1, ticketTypeId=kinds["VIP"]["id"]), 201)
    ok(shop.confirm(third, kept["id"]), 201)
    for held in holds:
        expire_hold(held["id"])
    client.get("/api/health")  # starts the background threads of this process
    wait_until(lambda: shop.available(plain["id"]) == 5 and shop.available(typed["id"]) == 11, 10,
               message="the expired holds' tickets back")
    kinds = shop.types(typed["id"])
    assert (kinds["Standard"]["availableQuantity"], kinds["VIP"]["availableQuantity"]) == (8, 3)
    assert [ok(client.get(f"/api/holds/{held['id']}", headers=actor.headers))["status"]
            for held, actor in zip(holds, (customer, other, customer), strict=True)] == ["EXPIRED"] * 3


def test_one_held_hold_per_customer_and_event(shop, customer, make_event):
    event, other = make_event(totalTickets=5), make_event(totalTickets=5)
    first = ok(shop.hold(customer, event["id"], 1), 201)
    assert refused(shop.hold(customer, event["id"], 1), 409, "already_holding")["holdId"] == first["id"]
    ok(shop.hold(customer, other["id"], 1), 201)
    shop.release(customer, first["id"])
    ok(shop.hold(customer, event["id"], 1), 201)
    assert shop.available(event["id"]) == 4


@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_a_customer_holding_the_event_cannot_book_it_directly(shop, customer, make_user, make_event, expire_hold):
    """A booking is a hold and its confirm: with a HELD hold of the event, the customer
    confirms or releases it (409 already_holding names it); a hold of another event, or
    one past its expiry, is no obstacle."""
    event, other = make_event(totalTickets=10), make_event(totalTickets=10)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    ok(shop.hold(customer, other["id"], 1), 201)
    assert refused(shop.book(customer, event["id"], 1), 409, "already_holding")["holdId"] == held["id"]
    assert shop.available(event["id"]) == 8  # the refused booking took nothing
    ok(shop.book(make_user(), event["id"], 1), 201)  # others book as before
    expire_hold(held["id"])
    ok(shop.book(customer, event["id"], 3), 201)
    assert shop.available(event["id"]) == 4  # the expired hold's 2 still wait for the sweep


def test_on_a_sold_out_event_the_customer_is_told_what_they_already_have(shop, customer, make_event):
    """One hold and one booking per customer: said as such even when nothing is left."""
    event = make_event(totalTickets=2)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    assert refused(shop.hold(customer, event["id"], 1), 409, "already_holding")["holdId"] == held["id"]
    assert refused(shop.book(customer, event["id"], 1), 409, "already_holding")["holdId"] == held["id"]
    ok(shop.confirm(customer, held["id"]), 201)
    refused(shop.book(customer, event["id"], 1), 409, "already_booked")
    refused(shop.hold(customer, event["id"], 1), 409, "already_booked")
    assert shop.available(event["id"]) == 0


def test_a_customer_with_a_booking_cannot_hold_more(shop, customer, make_event):
    event = make_event(totalTickets=5)
    ok(shop.book(customer, event["id"], 1), 201)
    refused(shop.hold(customer, event["id"], 1), 409, "already_booked")
    assert shop.available(event["id"]) == 4


def test_holds_are_refused_like_bookings(shop, customer, make_event, set_event_date):
    event = make_event(totalTickets=2)
    body = refused(shop.hold(customer, event["id"], 3), 409, "not_enough_tickets")
    assert body["availableTickets"] == 2
    refused(shop.hold(customer, 999_999, 1), 404, "not_found")
    set_event_date(event["id"], datetime.now(timezone.utc) - timedelta(minutes=1))
    refused(shop.hold(customer, event["id"], 1), 409, "event_closed")


def test_a_hold_is_not_confirmed_once_its_event_has_started(shop, customer, make_event, set_event_date, expire_hold):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    set_event_date(event["id"], datetime.now(timezone.utc) - timedelta(minutes=1))
    body = refused(shop.confirm(customer, held["id"]), 409, "event_closed")
    assert "started" in body["message"]
    refused(shop.confirm(customer, held["id"], key="after-the-start"), 409, "event_closed")
    assert ok(shop.client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "HELD"
    assert ok(shop.client.get("/api/bookings/my-bookings", headers=customer.headers)) == []
    expire_hold(held["id"])  # past its expiry the hold is expired as any other
    refused(shop.confirm(customer, held["id"]), 409, "hold_expired")


def crossed(database_url, event_id, hold_id, request):
    """Run `request` (which locks the hold, then its event) while another connection
    holds the event and then asks for the hold, as an event's cancel does."""
    return support.crossed(database_url, request, "SELECT id FROM events WHERE id = :event FOR UPDATE",
                           "UPDATE holds SET ended_at = ended_at WHERE id = :hold", {"event": event_id, "hold": hold_id})


@pytest.mark.postgresql_only("SQLite has one writer at a time: nothing to deadlock")
def test_a_confirm_chosen_as_a_deadlock_victim_runs_again(database_url, shop, customer, make_event):
    """A writer that locks the event before its holds (an event's cancel) can deadlock
    with a confirm, which locks the hold first; PostgreSQL rolls the victim back whole,
    and the client still sees the confirm's outcome, not a 503."""
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 1), 201)
    booking = ok(crossed(database_url, event["id"], held["id"], lambda: shop.confirm(customer, held["id"])), 201)
    assert booking["ticketsCount"] == 1 and shop.available(event["id"]) == 4


@pytest.mark.postgresql_only("SQLite has one writer at a time: nothing to deadlock")
def test_an_event_cancel_waits_for_a_hold_being_confirmed_with_the_event_left_free(database_url, client, shop,
                                                                                   customer, organizer, make_event,
                                                                                   make_user):
    """A confirm locks its hold, then its event; an event's cancel locks the event's HELD
    holds, then the event. With the hold locked here (a confirm under way), the cancel
    waits and the event stays free for the confirm to finish: no deadlock, no 1-second
    stall while PostgreSQL looks for one. Then the cancel ends the hold (the event was
    booked once: a delete cancels it)."""
    event = make_event(totalTickets=5)
    ok(shop.book(make_user(), event["id"], 1), 201)
    held = ok(shop.hold(customer, event["id"], 1), 201)
    engine = sa.create_engine(support._normalized(database_url))
    answers = []
    try:
        with engine.connect() as confirming, engine.connect() as probe:
            confirming.execute(sa.text("SELECT id FROM holds WHERE id = :id FOR UPDATE"), {"id": held["id"]})
            cancelling = threading.Thread(target=lambda: answers.append(
                client.delete(f"/api/events/{event['id']}", headers=organizer.headers)))
            cancelling.start()
            wait_until(lambda: support.waiting_for_locks(engine) == 1, 10, message="the cancel waiting for the hold")
            probe.execute(sa.text("SELECT id FROM events WHERE id = :id FOR KEY SHARE NOWAIT"), {"id": event["id"]})
            probe.rollback()
            confirming.rollback()
            cancelling.join(30)
    finally:
        engine.dispose()
    assert answers[0].status_code == 204
    assert shop.event(event["id"])["status"] == "CANCELLED"
    assert ok(client.get(f"/api/holds/{held['id']}", headers=customer.headers))["status"] == "RELEASED"


@pytest.mark.postgresql_only("SQLite has one writer at a time: nothing to deadlock")
@pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper runs at all
def test_reading_an_expired_hold_chosen_as_a_deadlock_victim_runs_again(database_url, shop, customer, make_event,
                                                                         expire_hold):
    """Reading a hold past its expiry ends it (the hold, then its event): as deadlock-prone
    as a release, and as transparent."""
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    expire_hold(held["id"])
    answer = crossed(database_url, event["id"], held["id"],
                     lambda: shop.client.get(f"/api/holds/{held['id']}", headers=customer.headers))
    assert ok(answer, 200)["status"] == "EXPIRED"
    assert shop.available(event["id"]) == 5


def test_only_its_customer_sees_confirms_and_releases_a_hold(client, shop, make_user, organizer, make_event):
    event = make_event(totalTickets=5)
    customer, stranger = make_user(), make_user()
    held = ok(shop.hold(customer, event["id"], 1), 201)
    for who in (stranger, organizer):
        refused(client.get(f"/api/holds/{held['id']}", headers=who.headers), 404, "not_found")
        refused(shop.release(who, held["id"]), 404, "not_found")
    refused(shop.confirm(stranger, held["id"]), 404, "not_found")
    refused(shop.confirm(organizer, held["id"]), 403, "forbidden")
    refused(shop.hold(organizer, event["id"], 1), 403, "forbidden")
    refused(client.get("/api/holds/999999", headers=customer.headers), 404, "not_found")
    assert shop.available(event["id"]) == 4


def test_confirm_with_an_idempotency_key(shop, customer, make_event):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    first = ok(shop.confirm(customer, held["id"], key="pay-1"), 201)
    again = shop.confirm(customer, held["id"], key="pay-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first["id"]
    refused(shop.book(customer, event["id"], 1, key="pay-1"), 409, "idempotency_key_reused")


@pytest.mark.postgresql_only("SQLite has one writer at a time: two confirms never overlap")
def test_two_first_uses_of_a_confirm_key_at_once_answer_alike(database_url, shop, customer, make_event):
    """Two confirms of one hold with one Idempotency-Key, both waiting on the hold's row
    (locked here): the first confirms it, the second replays that answer (201, replayed),
    as a repeat of a key is answered; not the 200 a confirm of a confirmed hold gets."""
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 2), 201)
    engine = sa.create_engine(support._normalized(database_url))
    answers = []
    confirms = [threading.Thread(target=lambda: answers.append(shop.confirm(customer, held["id"], key="pay-2")))
                for _ in range(2)]

    try:
        with engine.connect() as locking:
            locking.execute(sa.text("SELECT id FROM holds WHERE id = :id FOR UPDATE"), {"id": held["id"]})
            for confirm in confirms:
                confirm.start()
            wait_until(lambda: support.waiting_for_locks(engine) == 2, 10, message="both confirms waiting on the hold")
            locking.commit()
            for confirm in confirms:
                confirm.join(30)
    finally:
        engine.dispose()
    assert sorted((a.status_code, a.headers.get("Idempotent-Replayed", "")) for a in answers) == [(201, ""), (201, "true")]
    assert answers[0].get_json()["id"] == answers[1].get_json()["id"]
    assert shop.available(event["id"]) == 3


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_ENABLED": True, "RATELIMIT_BOOKING": "3 per minute"}])
def test_holds_and_bookings_share_one_rate_limit(shop, customer, make_event):
    events = [make_event(totalTickets=5) for _ in range(4)]
    ok(shop.book(customer, events[0]["id"], 1), 201)
    ok(shop.hold(customer, events[1]["id"], 1), 201)
    ok(shop.hold(customer, events[2]["id"], 1), 201)
    response = shop.hold(customer, events[3]["id"], 1)
    refused(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    refused(shop.book(customer, events[3]["id"], 1), 429, "rate_limited")


@pytest.mark.parametrize("config_overrides", [{"HOLD_SWEEP_SECONDS": 86400}], ids=["no-sweep"])
def test_an_event_cancelled_ends_its_holds_released_or_expired_if_their_time_was_up(
        client, shop, organizer, make_user, make_event, expire_hold):
    event = make_event(totalTickets=6)
    ok(shop.book(make_user(), event["id"]), 201)  # booked once: a DELETE cancels it
    late, live = make_user(), make_user()
    past = ok(shop.hold(late, event["id"]), 201)
    held = ok(shop.hold(live, event["id"]), 201)
    expire_hold(past["id"])
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    assert ok(client.get(f"/api/holds/{past['id']}", headers=late.headers))["status"] == "EXPIRED"
    assert ok(client.get(f"/api/holds/{held['id']}", headers=live.headers))["status"] == "RELEASED"


@pytest.mark.postgresql_only("SQLite runs one writer at a time: a change and a confirm cannot overlap there")
@pytest.mark.parametrize("seating", ["GENERAL", "RESERVED"])
def test_a_confirm_meeting_an_event_change_waits_for_it_and_tells_the_new_place(client, shop, customer, organizer,
                                                                               make_event, database_url, seating):
    """A confirm that meets the organizer's change between its write and its commit
    waits for it, and comes after it: the booking and its confirmation name the new
    place (the change's EVENT_UPDATED, told to the bookings it saw, could not name this
    one). A seated event's confirm waits in its seat map's change, another in a share lock."""
    event = make_event(location="Hall", seating=seating, totalTickets=2)
    if seating == "RESERVED":
        ok(client.put(f"/api/events/{event['id']}/seats", headers=organizer.headers, json={"sections": [
            {"name": "Floor", "ticketTypeId": event["ticketTypes"][0]["id"], "rows": [{"label": "A", "from": 1, "to": 2}]}]}))
        seat = ok(client.get(f"/api/events/{event['id']}/seats"))[0]["id"]
        held = ok(shop.hold(customer, event["id"], seatIds=[seat]), 201)
    else:
        held = ok(shop.hold(customer, event["id"], 1), 201)
    answers = []
    confirming = threading.Thread(target=lambda: answers.append(shop.confirm(customer, held["id"])))
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as change:  # the change, written and not yet committed
            change.execute(sa.text("UPDATE events SET location = 'Arena' WHERE id = :id"), {"id": event["id"]})
            confirming.start()
            wait_until(lambda: support.waiting_for_locks(engine) == 1, 10, message="the confirm waiting for the change")
            change.commit()
        confirming.join(10)
    finally:
        engine.dispose()
    booking = ok(answers[0], 201)
    assert booking["event"]["location"] == "Arena"
    confirmed = wait_until(lambda: [n for n in ok(client.get("/api/notifications", headers=customer.headers))
                                    if n["kind"] == "BOOKING_CONFIRMED"], 10, message="the confirmation")
    assert "Arena" in confirmed[0]["body"] and "Hall" not in confirmed[0]["body"]
