"""`Idempotency-Key` on POST /api/bookings (API.md "Idempotent booking"), in process.

A repeat of the same key by the same user with the same body replays the first response
and books nothing more; another body is a 409; keys are per user, 1 to 255 characters,
kept in the database (table idempotency_keys) for at least 24 hours. The first answer is
kept, a refusal by the booking rules too; a request that never reached them (422) is not.
"""

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from eventbook import create_app
from eventbook.extensions import db
from tests import support


def jti(actor):
    """The id of an actor's access token (read from the token, not verified)."""
    payload = actor.token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def stored_keys(database_url):
    engine = sa.create_engine(support._normalized(database_url))
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT user_id, key, response_status, expires_at FROM idempotency_keys ORDER BY user_id")
        ).all()
    engine.dispose()
    return rows


def test_a_repeat_replays_the_first_response_and_books_nothing_more(client, shop, customer, make_event):
    event = make_event(totalTickets=10)
    first = shop.book(customer, event["id"], 2, key="order-42")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert shop.available(event["id"]) == 8

    for _ in range(3):
        again = shop.book(customer, event["id"], 2, key="order-42")
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json()["id"] == first.get_json()["id"]
        assert again.get_json() == first.get_json()  # the first response, as it was
        assert again.headers["Location"] == first.headers["Location"]
    assert shop.available(event["id"]) == 8
    assert len(client.get("/api/bookings/my-bookings", headers=customer.headers).get_json()) == 1


def test_a_replay_after_changes_is_the_same_booking_as_it_is_now(client, shop, customer, organizer, make_event):
    """The same status and the same booking, never a new one: rendered as the booking
    and its event are now (cancelled, renamed), with Idempotent-Replayed set."""
    event = make_event(totalTickets=10, description=None)
    first = shop.book(customer, event["id"], 1, key="k-cancelled")
    assert client.post(f"/api/bookings/{first.get_json()['id']}/cancel", headers=customer.headers).status_code == 200
    changed = client.patch(f"/api/events/{event['id']}", json={"title": "Renamed", "date": "2031-07-01T09:30:15.123456Z"},
                           headers=organizer.headers)
    assert changed.status_code == 200, changed.get_json()
    again = shop.book(customer, event["id"], 1, key="k-cancelled")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]  # the first booking, not a new one
    assert again.get_json()["status"] == "CANCELLED" and again.get_json()["event"]["title"] == "Renamed"
    assert shop.available(event["id"]) == 10


@pytest.mark.parametrize("change", [{"tickets": 3}, {"other_event": True}])
def test_same_key_with_another_body_is_409(shop, customer, make_event, change):
    event, other = make_event(totalTickets=10), make_event(totalTickets=10)
    assert shop.book(customer, event["id"], 2, key="order-1").status_code == 201
    target = other["id"] if change.get("other_event") else event["id"]
    response = shop.book(customer, target, change.get("tickets", 2), key="order-1")
    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "idempotency_key_reused" and body["status"] == 409
    assert shop.available(event["id"]) == 8
    assert shop.available(other["id"]) == 10


def test_keys_are_per_user(shop, make_user, make_event):
    event = make_event(totalTickets=10)
    alice, bob = make_user("CUSTOMER"), make_user("CUSTOMER")
    first = shop.book(alice, event["id"], 1, key="same-key")
    second = shop.book(bob, event["id"], 1, key="same-key")
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert first.get_json()["id"] != second.get_json()["id"]
    assert second.get_json()["userId"] == bob.id
    assert shop.available(event["id"]) == 8


def test_without_a_key_every_request_books(shop, customer, make_event):
    first, second = make_event(totalTickets=10), make_event(totalTickets=10)
    assert shop.book(customer, first["id"]).status_code == 201
    assert shop.book(customer, second["id"]).status_code == 201
    assert shop.book(customer, first["id"]).status_code == 409  # already_booked, not a replay


@pytest.mark.parametrize(
    "key, status", [("k" * 255, 201), ("k" * 256, 422), ("k" * 5000, 422), ("", 422), ("a", 201), ("7f1c2d9e-uuid-like-0000", 201)]
)
def test_key_length(shop, customer, make_event, key, status):
    event = make_event(totalTickets=10)
    response = shop.book(customer, event["id"], 1, key=key)
    assert response.status_code == status, response.get_json()
    if status == 422:
        assert response.get_json()["code"] == "validation_error"
        assert "Idempotency-Key" in response.get_json()["errors"]
        assert shop.available(event["id"]) == 10


def test_a_refusal_is_the_first_response_too(client, shop, organizer, make_user, make_event):
    """Sold out under a key: a repeat gets that 409 again, as it was, even once tickets
    are back; another key books them."""
    event = make_event(totalTickets=1)
    early, late = make_user("CUSTOMER"), make_user("CUSTOMER")
    assert shop.book(early, event["id"], 1).status_code == 201
    refused = shop.book(late, event["id"], 2, key="sold-out-first")
    assert refused.status_code == 409 and refused.get_json()["code"] == "sold_out"
    assert "Idempotent-Replayed" not in refused.headers
    raised = client.patch(f"/api/events/{event['id']}", json={"totalTickets": 5}, headers=organizer.headers)
    assert raised.status_code == 200 and raised.get_json()["availableTickets"] == 4
    for _ in range(2):
        again = shop.book(late, event["id"], 2, key="sold-out-first")
        assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == refused.get_json()  # availableTickets 0 included: the first answer
    assert shop.available(event["id"]) == 4
    other = shop.book(late, event["id"], 2, key="another-key")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert shop.available(event["id"]) == 2
    changed = shop.book(late, event["id"], 1, key="sold-out-first")  # the key with another body
    assert (changed.status_code, changed.get_json()["code"]) == (409, "idempotency_key_reused")


def test_already_booked_is_kept_like_any_refusal(shop, customer, make_event):
    """The one-booking-per-customer index refuses the second booking: that 409 is the
    key's first answer, even once the first booking is cancelled."""
    event = make_event(totalTickets=5)
    first = shop.book(customer, event["id"], 1, key="first")
    assert first.status_code == 201
    refused = shop.book(customer, event["id"], 1, key="second")
    assert (refused.status_code, refused.get_json()["code"]) == (409, "already_booked")
    assert shop.cancel(customer, first.get_json()["id"]).status_code == 200
    again = shop.book(customer, event["id"], 1, key="second")
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == refused.get_json()
    assert shop.available(event["id"]) == 5


def test_a_refusal_keeps_the_facts_it_gave(shop, customer, make_event):
    """A refusal's facts (here a sales window's times) are replayed as they were sent."""
    opens = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    event = make_event(totalTickets=5, ticketTypes=[{"name": "Later", "price": "5.00", "quantity": 5, "salesStart": opens}])
    type_id = shop.types(event["id"])["Later"]["id"]
    refused = shop.book(customer, event["id"], key="early", ticketsCount=1, ticketTypeId=type_id)
    assert (refused.status_code, refused.get_json()["code"]) == (409, "sales_closed")
    assert refused.get_json()["salesStart"] == opens
    again = shop.book(customer, event["id"], key="early", ticketsCount=1, ticketTypeId=type_id)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == refused.get_json()


def test_concurrent_first_uses_refused_keep_one_refusal(shop, make_user, customer, make_event):
    """20 requests with one key at once on a sold-out event: one is refused and kept,
    the others (refused too, whose keeping loses to it) answer with that refusal."""
    event = make_event(totalTickets=1)
    assert shop.book(make_user(), event["id"], 1).status_code == 201
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: shop.book(customer, event["id"], 1, key="crowd"), range(20)))
    assert {(r.status_code, r.get_json()["code"]) for r in responses} == {(409, "sold_out")}
    assert len({json.dumps(r.get_json(), sort_keys=True) for r in responses}) == 1
    assert sum(1 for r in responses if "Idempotent-Replayed" not in r.headers) == 1  # the one kept
    assert shop.available(event["id"]) == 0


def test_a_refused_confirm_is_kept(shop, customer, make_event):
    event = make_event(totalTickets=5)
    hold = shop.hold(customer, event["id"], 2)
    assert hold.status_code == 201
    assert shop.release(customer, hold.get_json()["id"]).status_code == 204
    refused = shop.confirm(customer, hold.get_json()["id"], key="confirm-late")
    assert (refused.status_code, refused.get_json()["code"]) == (409, "hold_expired")
    again = shop.confirm(customer, hold.get_json()["id"], key="confirm-late")
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == refused.get_json()
    assert shop.available(event["id"]) == 5


def test_a_confirm_of_a_hold_confirmed_before_is_kept(shop, customer, make_event):
    """The 200 that names the booking of a hold confirmed before is the key's first
    answer too: a repeat replays it, and the key on another hold is a 409 that books
    nothing."""
    first_event, second_event = make_event(totalTickets=5), make_event(totalTickets=5)
    hold = shop.hold(customer, first_event["id"], 2).get_json()
    booked = shop.confirm(customer, hold["id"])
    assert booked.status_code == 201
    answer = shop.confirm(customer, hold["id"], key="confirm-again")
    assert (answer.status_code, answer.get_json()["id"]) == (200, booked.get_json()["id"])
    assert "Idempotent-Replayed" not in answer.headers
    again = shop.confirm(customer, hold["id"], key="confirm-again")
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert again.get_json() == answer.get_json()

    other = shop.hold(customer, second_event["id"], 1).get_json()
    reused = shop.confirm(customer, other["id"], key="confirm-again")
    assert (reused.status_code, reused.get_json()["code"]) == (409, "idempotency_key_reused")
    assert shop.client.get(f"/api/holds/{other['id']}", headers=customer.headers).get_json()["status"] == "HELD"
    assert shop.available(second_event["id"]) == 4


def test_a_validation_failure_is_not_kept(shop, customer, make_event):
    event = make_event(totalTickets=10)
    assert shop.book(customer, event["id"], 11, key="k-422").status_code == 422
    assert shop.book(customer, event["id"], 1, key="k-422").status_code == 201


def test_keys_are_stored_in_the_database_for_at_least_24_hours(shop, database_url, customer, make_event):
    event = make_event(totalTickets=10)
    before = datetime.now(timezone.utc)
    assert shop.book(customer, event["id"], 1, key="db-key").status_code == 201
    rows = stored_keys(database_url)
    assert [(row.user_id, row.key, row.response_status) for row in rows] == [(customer.id, "db-key", 201)]
    expires = rows[0].expires_at
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    assert expires >= before + timedelta(hours=24) - timedelta(seconds=5)


def test_two_app_instances_on_one_database_replay_each_other(app, shop, database_url, customer, make_event):
    """As two gunicorn workers or two machines would: nothing lives in process memory."""
    event = make_event(totalTickets=10)
    other = create_app(support.test_config(database_url))
    try:
        other_shop = support.Shop(other.test_client())
        first = shop.book(customer, event["id"], 3, key="cross-instance")
        assert first.status_code == 201
        replay = other_shop.book(customer, event["id"], 3, key="cross-instance")
        assert replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.get_json()["id"] == first.get_json()["id"]
        # and the other way round
        started = other_shop.book(customer, make_event(totalTickets=5)["id"], 1, key="from-other")
        assert started.status_code == 201
        back = shop.book(customer, started.get_json()["eventId"], 1, key="from-other")
        assert back.headers["Idempotent-Replayed"] == "true"
        assert back.get_json()["id"] == started.get_json()["id"]
        conflict = shop.book(customer, started.get_json()["eventId"], 2, key="from-other")
        assert conflict.status_code == 409 and conflict.get_json()["code"] == "idempotency_key_reused"
        assert other_shop.available(event["id"]) == 7
    finally:
        support.stop_background(other)


def test_concurrent_repeats_book_once(client, shop, customer, make_event):
    """30 requests with one key at once: one booking, every success carries its id."""
    event = make_event(totalTickets=100)
    with ThreadPoolExecutor(max_workers=30) as pool:
        responses = list(pool.map(lambda _: shop.book(customer, event["id"], 2, key="burst"), range(30)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {201}, statuses
    ids = {r.get_json()["id"] for r in responses}
    assert len(ids) == 1
    assert sum(1 for r in responses if "Idempotent-Replayed" not in r.headers) == 1
    assert shop.available(event["id"]) == 98
    assert len(client.get("/api/bookings/my-bookings", headers=customer.headers).get_json()) == 1


def test_concurrent_repeats_that_take_the_last_tickets_book_once(client, shop, customer, make_event):
    """The first use takes every ticket left: the repeats, refused tickets by it, answer
    with its booking (never `sold_out` or `already_booked`)."""
    event = make_event(totalTickets=2)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: shop.book(customer, event["id"], 2, key="last"), range(20)))
    assert {r.status_code for r in responses} == {201}, [r.get_json() for r in responses if r.status_code != 201]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert shop.available(event["id"]) == 0


@pytest.mark.postgresql_only("SQLite has one writer at a time: two first uses never wait together")
@pytest.mark.parametrize("capacity", [10, 1], ids=["tickets-left", "the-last-ticket"])
def test_first_uses_that_waited_for_the_customer_s_turn_replay_the_one_that_booked(database_url, shop, customer,
                                                                                   make_event, capacity):
    """Three first uses of one key, each past its replay check, wait for the customer's
    turn (taken here): the one that goes first books, and the others, stopped by the
    booking it made (the unique index of confirmed bookings) or by the tickets it took,
    answer with it as replays, never `already_booked` or `sold_out`."""
    event = make_event(totalTickets=capacity)
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as turn, ThreadPoolExecutor(max_workers=3) as pool:
            turn.execute(sa.text("SELECT pg_advisory_xact_lock(:customer, :event)"),
                         {"customer": customer.id, "event": event["id"]})
            futures = [pool.submit(shop.book, customer, event["id"], 1, key="waited") for _ in range(3)]
            support.wait_until(lambda: support.waiting_for_locks(engine) == 3, 10, message="three waiting")
            turn.rollback()
            responses = [future.result(timeout=30) for future in futures]
    finally:
        engine.dispose()
    assert [r.status_code for r in responses] == [201, 201, 201], [r.get_json() for r in responses]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum(1 for r in responses if r.headers.get("Idempotent-Replayed") == "true") == 2
    assert shop.available(event["id"]) == capacity - 1


def test_concurrent_first_uses_with_other_bodies_book_once(client, shop, customer, make_event):
    """One key sent at once for 8 different events: one booking, and every other request
    is told the key belongs to another body. On PostgreSQL they all pass the booking
    statement's "key unused" check together; the key's primary key decides."""
    events = [make_event(totalTickets=10) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        responses = list(pool.map(lambda event: shop.book(customer, event["id"], 1, key="race"), events))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7, [r.get_json() for r in responses]
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"idempotency_key_reused"}
    assert sum(shop.available(event["id"]) for event in events) == 8 * 10 - 1
    assert len(client.get("/api/bookings/my-bookings", headers=customer.headers).get_json()) == 1


@pytest.mark.parametrize("config_overrides", [{"DB_POOL_SIZE": 1, "DB_POOL_TIMEOUT": 3}], ids=["pool-of-2"])
def test_a_small_pool_serves_more_concurrent_requests_than_connections(shop, make_user, make_event):
    """Each request holds one pooled connection at a time (2 here, pool 1 + overflow 1).
    A request that kept its token check's connection while its transaction waited for a
    second one could fill the pool with such requests, all waiting for each other until
    DB_POOL_TIMEOUT: 503s (seen in CI with 30 requests on SQLite's 15 connections)."""
    event = make_event(totalTickets=100)
    customers = [make_user() for _ in range(4)]
    requests = [(customer, key) for customer in customers for key in ("a", "b", "c")]
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        responses = list(pool.map(lambda request: shop.book(request[0], event["id"], 1, key=request[1]), requests))
    assert sorted(r.status_code for r in responses).count(201) == len(customers), [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {201, 409}, [r.get_json() for r in responses]
    assert shop.available(event["id"]) == 100 - len(customers)


def test_an_expired_key_is_forgotten(app, shop, customer, make_event):
    first_event, second_event = make_event(totalTickets=10), make_event(totalTickets=10)
    first = shop.book(customer, first_event["id"], 1, key="old-key")
    assert first.status_code == 201
    from eventbook.models import IdempotencyKey

    with app.app_context():
        db.session.execute(sa.update(IdempotencyKey).values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
        db.session.commit()
    # past its expiry the key means nothing: another body books, no 409, no replay
    fresh = shop.book(customer, second_event["id"], 1, key="old-key")
    assert fresh.status_code == 201, fresh.get_json()
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.get_json()["id"] != first.get_json()["id"]


@pytest.mark.parametrize("config_overrides", [{"PURGE_EXPIRED_SECONDS": 1}], ids=["purge-every-1s"])
def test_the_sweeper_deletes_expired_keys_and_revoked_tokens(app, client, shop, database_url, make_user, make_event):
    """Expired rows go without anyone reusing them: idempotency_keys and revoked_tokens do
    not grow with traffic. Rows still valid stay."""
    from eventbook.models import IdempotencyKey, RevokedToken

    event = make_event(totalTickets=10)
    old, recent = make_user(), make_user()
    assert shop.book(old, event["id"], 1, key="old-order").status_code == 201
    assert shop.book(recent, event["id"], 1, key="recent-order").status_code == 201
    leaving, staying = make_user(), make_user()
    for person in (leaving, staying):
        assert client.post("/api/auth/logout", headers=person.headers).status_code == 204
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    with app.app_context():
        db.session.execute(sa.update(IdempotencyKey).where(IdempotencyKey.user_id == old.id).values(expires_at=past))
        assert len(db.session.scalars(sa.select(RevokedToken.jti)).all()) == 2
        db.session.execute(sa.update(RevokedToken).where(RevokedToken.jti == jti(leaving)).values(expires_at=past))
        db.session.commit()

    app.extensions["notifications"].start()  # the sweeper purges at start, then every second

    def purged():
        with app.app_context():
            keys = db.session.scalars(sa.select(IdempotencyKey.user_id)).all()
            tokens = db.session.scalars(sa.select(RevokedToken.jti)).all()
            db.session.rollback()
        return (keys, tokens) if len(keys) == 1 and len(tokens) == 1 else None

    keys, tokens = support.wait_until(purged, 5, 0.1, message="expired rows purged")
    assert keys == [recent.id] and tokens == [jti(staying)]
    # the kept ones still work: the recent key replays, the other token stays revoked
    again = shop.book(recent, event["id"], 1, key="recent-order")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/api/auth/me", headers=staying.headers).status_code == 401
