"""Check-in at the door: the first scan of a code wins (201), later scans are 409
`already_checked_in` with the first scan's time, a cancelled booking's code is 409
`ticket_void`, any code not of this event is the same 404; a retry with the winning
nonce gets the first answer again; undo; who may scan; the rate limit per organizer.
(Simultaneous scans on a live server: test_check_in_live.py.)"""

from datetime import datetime, timezone

import pytest

from tests import support
from tests.support import ok, refused


@pytest.fixture
def door(client, shop, customer, organizer, make_event):
    """An event of `organizer` and a CONFIRMED booking of 3 tickets: (event, booking, tickets)."""
    event = make_event(owner=organizer, totalTickets=10)
    booking = ok(shop.book(customer, event["id"], 3), 201)
    listed = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer.headers))
    return event, booking, listed


def scan(client, actor, event_id, code, nonce=None, **extra):
    body = {"code": code, **({"nonce": nonce} if nonce is not None else {}), **extra}
    return client.post(f"/api/events/{event_id}/check-ins", json=body, headers=actor.headers)


def undo(client, actor, event_id, ticket_id):
    return client.delete(f"/api/events/{event_id}/check-ins/{ticket_id}", headers=actor.headers)


def test_the_first_scan_wins_and_later_scans_get_its_time(client, organizer, customer, door):
    event, booking, (ticket, *_) = door
    before = datetime.now(timezone.utc)
    first = ok(scan(client, organizer, event["id"], ticket["code"], nonce="gate-1"), 201)
    assert set(first) == {"ticket", "checkedInAt"}
    assert first["checkedInAt"].endswith("Z")
    assert before <= datetime.fromisoformat(first["checkedInAt"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)
    assert first["ticket"] == {**ticket, "checkedInAt": first["checkedInAt"]}
    for nonce in (None, "gate-2"):
        body = refused(scan(client, organizer, event["id"], ticket["code"], nonce=nonce), 409, "already_checked_in")
        assert body["checkedInAt"] == first["checkedInAt"]
    listed = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer.headers))
    assert [t["checkedInAt"] for t in listed] == [first["checkedInAt"], None, None]


def test_a_retry_with_the_winning_nonce_gets_the_first_answer_again(client, organizer, door):
    event, _, (ticket, *_) = door
    first = scan(client, organizer, event["id"], ticket["code"], nonce="gate-7/scan-42")
    again = scan(client, organizer, event["id"], ticket["code"], nonce="gate-7/scan-42")
    assert (again.status_code, again.get_json()) == (201, ok(first, 201))


def test_a_nonce_is_of_one_codes_scan_and_a_scanners_newline_is_no_part_of_the_code(client, organizer, door):
    event, _, (first, second, third) = door
    ok(scan(client, organizer, event["id"], first["code"], nonce="gate-7/scan-1"), 201)
    # the same nonce with another code is a scan of that code, not a replay of the first
    assert ok(scan(client, organizer, event["id"], second["code"], nonce="gate-7/scan-1"), 201)["ticket"]["id"] == \
        second["id"]
    assert ok(scan(client, organizer, event["id"], f" {third['code']}\r\n"), 201)["ticket"]["id"] == third["id"]


def test_a_code_without_a_nonce_is_never_replayed(client, organizer, door):
    event, _, (ticket, *_) = door
    ok(scan(client, organizer, event["id"], ticket["code"]), 201)
    refused(scan(client, organizer, event["id"], ticket["code"]), 409, "already_checked_in")


def test_a_cancelled_bookings_code_is_void(client, shop, customer, organizer, door):
    event, booking, (ticket, *_) = door
    ok(shop.cancel(customer, booking["id"]))
    refused(scan(client, organizer, event["id"], ticket["code"]), 409, "ticket_void")


def test_a_booking_with_a_ticket_checked_in_is_not_cancelled_until_the_check_in_is_undone(
        client, shop, customer, admin, organizer, door):
    """Its holder is inside: cancelling would give the ticket back for sale to someone
    else. Not its customer's cancel nor an admin's; once the check-in is undone, it is."""
    event, booking, (first, second, _) = door
    ok(scan(client, organizer, event["id"], second["code"]), 201)
    admitted = ok(scan(client, organizer, event["id"], first["code"]), 201)["checkedInAt"]
    for actor in (customer, admin):
        body = refused(shop.cancel(actor, booking["id"]), 409, "already_checked_in")
        assert body["message"] == ("A ticket of this booking has been checked in, so it cannot be cancelled (the "
                                   "organizer can undo the check-in)")
        assert body["checkedInAt"] < admitted  # the first of its check-ins
    assert ok(client.get(f"/api/bookings/{booking['id']}", headers=customer.headers))["status"] == "CONFIRMED"
    assert shop.available(event["id"]) == 7
    assert [n["kind"] for n in ok(client.get("/api/notifications", headers=customer.headers))] == ["BOOKING_CONFIRMED"]
    for ticket in (first, second):
        assert undo(client, organizer, event["id"], ticket["id"]).status_code == 204
    assert ok(shop.cancel(customer, booking["id"]))["status"] == "CANCELLED"
    assert shop.available(event["id"]) == 10


def test_a_scan_that_finds_the_check_in_undone_meanwhile_sees_a_cancel_that_came_with_it(
        app, client, backend, database_url, shop, customer, organizer, make_event):
    """A scan that finds its code checked in, and then undone by the time it reads why,
    scans again rather than write the check-in itself: a cancel of the booking committed
    with that undo makes it void (it used to write the check-in on the cancelled booking,
    whose ticket was back on sale)."""
    event = make_event(owner=organizer, totalTickets=5)
    booking = ok(shop.book(customer, event["id"], 1), 201)
    [ticket] = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer.headers))
    ok(scan(client, organizer, event["id"], ticket["code"]), 201)
    # an undo and the customer's cancel, committed together while the scan waits for them
    answer = support.while_written(app, backend, database_url, [
        ("UPDATE tickets SET checked_in_at = NULL WHERE id = :id", {"id": ticket["id"]}),
        ("UPDATE bookings SET status = 'CANCELLED', cancelled_at = CURRENT_TIMESTAMP WHERE id = :id",
         {"id": booking["id"]}),
        ("UPDATE events SET available_tickets = available_tickets + 1 WHERE id = :id", {"id": event["id"]}),
        ("UPDATE ticket_types SET available_quantity = available_quantity + 1 WHERE event_id = :id",
         {"id": event["id"]}),
    ], lambda client: scan(client, organizer, event["id"], ticket["code"]))
    refused(answer, 409, "ticket_void")
    [after] = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer.headers))
    assert after["checkedInAt"] is None
    assert shop.available(event["id"]) == 5


def test_a_code_of_another_event_is_the_same_404_as_no_code(client, shop, make_user, organizer, make_event, door):
    event, _, (ticket, *_) = door
    other = make_event(owner=organizer, totalTickets=5)
    elsewhere = refused(scan(client, organizer, other["id"], ticket["code"]), 404, "not_found")
    nowhere = refused(scan(client, organizer, event["id"], "x" * 22), 404, "not_found")
    assert elsewhere == nowhere
    ok(scan(client, organizer, event["id"], ticket["code"]), 201)  # untouched by the other event's scan


@pytest.mark.parametrize("body, field", [
    ({}, "code"), ({"code": ""}, "code"), ({"code": "x" * 65}, "code"), ({"code": 12345}, "code"),
    ({"code": "abc\u0000"}, "code"), ({"code": "abc", "nonce": "n" * 101}, "nonce"),
    ({"code": "abc", "gate": 1}, "gate"),
])
def test_a_malformed_scan_is_422_and_changes_nothing(client, organizer, door, body, field):
    event, _, (ticket, *_) = door
    response = client.post(f"/api/events/{event['id']}/check-ins", json=body, headers=organizer.headers)
    assert field in refused(response, 422, "validation_error")["errors"]
    ok(scan(client, organizer, event["id"], ticket["code"]), 201)


def test_undo_lets_the_ticket_in_again_by_a_new_scan_not_by_a_retry_of_the_first(client, organizer, customer, door):
    event, booking, (ticket, *_) = door
    first = ok(scan(client, organizer, event["id"], ticket["code"], nonce="n1"), 201)
    assert undo(client, organizer, event["id"], ticket["id"]).status_code == 204
    assert undo(client, organizer, event["id"], ticket["id"]).status_code == 204  # nothing left to undo
    # the gate that lost the first answer sends that scan again: its answer, and no one let in
    retry = ok(scan(client, organizer, event["id"], ticket["code"], nonce="n1"), 201)
    assert retry == {"ticket": {**ticket, "checkedInAt": None}, "checkedInAt": first["checkedInAt"]}
    listed = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=customer.headers))
    assert [t["checkedInAt"] for t in listed] == [None, None, None]
    second = ok(scan(client, organizer, event["id"], ticket["code"], nonce="n2"), 201)
    assert second["checkedInAt"] > first["checkedInAt"]
    # a scan of its own now: the second one won
    for nonce in ("n1", "n3", None):
        body = refused(scan(client, organizer, event["id"], ticket["code"], nonce=nonce), 409, "already_checked_in")
        assert body["checkedInAt"] == second["checkedInAt"]
    assert ok(scan(client, organizer, event["id"], ticket["code"], nonce="n2"), 201) == second


def test_a_retry_of_the_winning_scan_after_an_undo_and_a_cancel_gets_the_first_answer(
        client, shop, customer, organizer, door):
    event, booking, (ticket, *_) = door
    first = ok(scan(client, organizer, event["id"], ticket["code"], nonce="gate-2/scan-9"), 201)
    assert undo(client, organizer, event["id"], ticket["id"]).status_code == 204
    ok(shop.cancel(customer, booking["id"]))
    retry = ok(scan(client, organizer, event["id"], ticket["code"], nonce="gate-2/scan-9"), 201)
    assert retry["checkedInAt"] == first["checkedInAt"] and retry["ticket"]["checkedInAt"] is None
    refused(scan(client, organizer, event["id"], ticket["code"], nonce="gate-2/scan-10"), 409, "ticket_void")
    assert shop.available(event["id"]) == 10


def test_undo_of_a_ticket_of_another_event_is_404(client, organizer, make_event, door):
    event, _, (ticket, *_) = door
    ok(scan(client, organizer, event["id"], ticket["code"]), 201)
    other = make_event(owner=organizer, totalTickets=5)
    refused(undo(client, organizer, other["id"], ticket["id"]), 404, "not_found")
    refused(undo(client, organizer, event["id"], 999_999), 404, "not_found")
    refused(scan(client, organizer, event["id"], ticket["code"]), 409, "already_checked_in")  # still checked in


def test_only_the_owner_and_admins_scan(client, make_user, admin, customer, door):
    event, _, (first, second, third) = door
    intruder = make_user("ORGANIZER")
    refused(scan(client, intruder, event["id"], first["code"]), 403, "forbidden")
    refused(scan(client, customer, event["id"], first["code"]), 403, "forbidden")
    refused(client.post(f"/api/events/{event['id']}/check-ins", json={"code": first["code"]}), 401, "unauthorized")
    refused(undo(client, intruder, event["id"], first["id"]), 403, "forbidden")
    refused(scan(client, admin, 999_999, first["code"]), 404, "not_found")
    ok(scan(client, admin, event["id"], first["code"]), 201)  # nothing above checked it in
    assert undo(client, admin, event["id"], first["id"]).status_code == 204


LIMITED = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_BOOKING": "1000 per minute",
           "RATELIMIT_LOGIN": "1000 per minute", "RATELIMIT_REGISTER": "1000 per minute",
           "RATELIMIT_CHECKIN": "4 per minute"}


@pytest.mark.parametrize("config_overrides", [LIMITED], ids=["limits"])
def test_check_ins_are_rate_limited_per_organizer(client, shop, make_user, organizer, make_event, door):
    event, _, (first, second, third) = door
    ok(scan(client, organizer, event["id"], first["code"]), 201)
    ok(scan(client, organizer, event["id"], second["code"]), 201)
    refused(scan(client, organizer, event["id"], first["code"]), 409, "already_checked_in")
    assert undo(client, organizer, event["id"], first["id"]).status_code == 204  # one limit with undo
    limited = scan(client, organizer, event["id"], third["code"])
    refused(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    # Another organizer's gates count on their own.
    other_owner = make_user("ORGANIZER")
    other = make_event(owner=other_owner, totalTickets=5)
    booking = ok(shop.book(make_user(), other["id"], 1), 201)
    [ticket] = ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=other_owner.headers))
    ok(scan(client, other_owner, other["id"], ticket["code"]), 201)
