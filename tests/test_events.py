"""Events: publishing, reading, changing and deleting, and the notifications a change sends."""

import re
import threading
from datetime import timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import support
from tests.support import days_from_now, iso, ok, refused, wait_until


def event_body(**fields):
    return {"title": "Tech Conf", "description": "Annual tech meetup", "date": iso(days_from_now(30)),
            "location": "Convention Center", "totalTickets": 100, **fields}


def kinds(notifications):
    return [n["kind"] for n in notifications]


# -- create ------------------------------------------------------------------------


def test_organizer_creates_event(client, organizer):
    response = client.post("/api/events", json=event_body(totalTickets=50), headers=organizer.headers)
    assert response.status_code == 201
    event = response.get_json()
    assert event["title"] == "Tech Conf"
    assert event["location"] == "Convention Center"
    assert event["totalTickets"] == event["availableTickets"] == 50
    assert event["status"] == "SCHEDULED"
    assert event["organizerId"] == organizer.id
    assert response.headers["Location"].endswith(f"/api/events/{event['id']}")
    fetched = client.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.get_json() == event


def test_admin_creates_event(client, admin):
    response = client.post("/api/events", json=event_body(), headers=admin.headers)
    assert response.status_code == 201
    assert response.get_json()["organizerId"] == admin.id


def test_customer_cannot_create_event(client, customer):
    response = client.post("/api/events", json=event_body(), headers=customer.headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_anonymous_cannot_create_event(client):
    response = client.post("/api/events", json=event_body())
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


def test_date_without_offset_is_utc_and_offsets_are_converted(client, organizer):
    when = days_from_now(10)
    naive = when.replace(tzinfo=None).isoformat()
    response = client.post("/api/events", json=event_body(date=naive), headers=organizer.headers)
    assert response.status_code == 201
    assert response.get_json()["date"] == iso(when)

    paris = when.astimezone(timezone(timedelta(hours=2))).isoformat()
    response = client.post("/api/events", json=event_body(date=paris), headers=organizer.headers)
    assert response.status_code == 201
    assert response.get_json()["date"] == iso(when)

    lower = iso(when).replace("T", "t").replace("Z", "z")  # RFC 3339 allows both in lower case
    created = ok(client.post("/api/events", json=event_body(date=lower), headers=organizer.headers), 201)
    assert created["date"] == iso(when)
    listed = ok(client.get("/api/events", query_string={"from": lower, "perPage": 100}))
    assert created["id"] in [event["id"] for event in listed]


@pytest.mark.parametrize("date", ["2030-W22-6T10:00:00Z", "20300601T100000Z", "2030-06-01T10:00:00,5Z",
                                  "2030-06-01T10Z", "2030-06-01T10:00:00+14:00:30", "2030-06-01T10:00:00 Z",
                                  "\u0662\u0660\u0663\u0660-06-01T10:00:00Z"])
def test_a_date_is_rfc_3339_not_any_iso_8601_form(client, organizer, date):
    """What the document's format: date-time says (plus no seconds, no offset, a date
    alone): not the week dates, compact digits and other forms Python's parser reads."""
    response = client.post("/api/events", json=event_body(date=date), headers=organizer.headers)
    assert response.status_code == 422, response.get_json()
    assert "date" in response.get_json()["errors"]
    refused(client.get("/api/events", query_string={"from": date}), 422, "validation_error")


@pytest.mark.parametrize("date", ["banana", "2030-13-01T10:00:00Z", "2030-02-30", "2030-06-01T25:00:00Z",
                                  "2030-06-01T10:61Z"])
def test_a_date_that_is_not_one_says_what_is_taken(client, organizer, date):
    """A date of the wrong shape and one of the right shape with impossible values (a
    13th month, a 30th of February, a 25th hour) get the same message, which shows the
    form taken, in a body and in a query string alike."""
    says = ["Not a valid date-time: RFC 3339, such as 2030-06-01T10:00:00Z."]
    created = client.post("/api/events", json=event_body(date=date), headers=organizer.headers)
    assert refused(created, 422, "validation_error")["errors"] == {"date": says}
    assert refused(client.get("/api/events", query_string={"to": date}), 422, "validation_error")["errors"] == {"to": says}


def test_a_date_left_empty_says_a_date_is_required(client, organizer):
    """null for an event's date (what the page sends for an empty field), on creation
    and on a change: a 422 that says a date is needed, and nothing changes."""
    created = client.post("/api/events", json=event_body(date=None), headers=organizer.headers)
    assert refused(created, 422, "validation_error")["errors"] == {"date": ["A date and time is required."]}
    event = ok(client.post("/api/events", json=event_body(), headers=organizer.headers), 201)
    changed = client.patch(f"/api/events/{event['id']}", json={"date": None}, headers=organizer.headers)
    assert refused(changed, 422, "validation_error")["errors"] == {"date": ["A date and time is required."]}
    assert ok(client.get(f"/api/events/{event['id']}"))["date"] == event["date"]


@pytest.mark.parametrize("date, stored", [
    ("2030-06-01T10:00:00Z", "2030-06-01T10:00:00Z"), ("2030-06-01 10:00:00z", "2030-06-01T10:00:00Z"),
    ("2030-06-01T10:00Z", "2030-06-01T10:00:00Z"), ("2030-06-01T12:00:00.5+02:00", "2030-06-01T10:00:00.500000Z"),
    ("2030-06-01T10:00:00.1234567Z", "2030-06-01T10:00:00.123456Z"), ("2030-06-01", "2030-06-01T00:00:00Z"),
    ("2030-06-02T09:59:00+23:59", "2030-06-01T10:00:00Z"), ("2030-06-01T12:00:00+0200", "2030-06-01T10:00:00Z"),
    ("2030-06-01T12:00:00+02", "2030-06-01T10:00:00Z"),
])
def test_the_date_forms_taken(client, organizer, date, stored):
    assert ok(client.post("/api/events", json=event_body(date=date), headers=organizer.headers), 201)["date"] == stored


def test_the_document_names_the_date_forms_taken(client):
    """Its format: date-time is RFC 3339; the description adds what else is taken, so a
    naive time read as UTC surprises no client that reads it."""
    spec = client.get("/api/openapi.json").get_json()
    create = spec["components"]["schemas"]["EventCreate"]["properties"]["date"]["description"]
    since = {p["name"]: p for p in spec["paths"]["/api/events"]["get"]["parameters"]}["from"]["description"]
    for description in (create, since):
        assert "no offset (read as UTC), a date alone (midnight UTC)" in description
    assert create.startswith("must be in the future; RFC 3339")
    assert "read as UTC" not in spec["components"]["schemas"]["Event"]["properties"]["date"].get("description", "")


@pytest.mark.parametrize("field, value", [
    ("date", "2020-01-01T10:00:00Z"),  # in the past
    ("date", "next tuesday"),
    ("totalTickets", 0),
    ("totalTickets", 1_000_001),
    ("totalTickets", "5"),
    ("totalTickets", 5.5),
    ("title", "   "),
    ("location", ""),
    ("title", "x" * 201),
    ("location", "\x1e" + "x" * 200),  # 201 characters as sent: stripping must not make it fit
    ("location", " " * 150 + "x" * 51),
    ("title", "\u3000\t\ufeff"),  # blank: only what the documented pattern's \s matches
    ("title", "\u0958" * 101),  # 202 characters once in NFC: counted as kept
])
def test_create_refuses_invalid_field(client, organizer, field, value):
    response = client.post("/api/events", json=event_body(**{field: value}), headers=organizer.headers)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert field in body["errors"]


@pytest.mark.parametrize("title, taken", [
    ("\u200b", False), ("\u2060\u200d", False), ("\u034f \u180e", False), ("\u00ad", False), ("\u3164", False),
    ("\ufe0f\u200b\u00a0", False), ("\u200e", False), ("\u061c", False), ("\u2800\u2800", False),
    ("\ufff9", False),
    ("Caf\u00e9\u200b", True), ("\u05e9\u05d9\u05e8\u200f", True), ("\u2764\ufe0f", True),
])
def test_a_title_of_characters_that_show_nothing_is_blank(client, organizer, title, taken):
    """Zero-width spaces and joiners, marks, soft hyphens, fillers: a title may hold them,
    not consist of them; the document's pattern says the same."""
    response = client.post("/api/events", json=event_body(title=title), headers=organizer.headers)
    if taken:
        assert ok(response, 201)["title"] == title
    else:
        assert refused(response, 422, "validation_error")["errors"] == {"title": ["Must not be blank."]}
    pattern = client.get("/api/openapi.json").get_json()["components"]["schemas"]["EventCreate"]["properties"][
        "title"]["pattern"]
    assert bool(re.fullmatch(pattern, title)) is taken


def test_a_control_character_is_refused_as_the_pattern_says(client, organizer):
    """U+001E is not space to the OpenAPI pattern's \\s (ECMAScript), nor text: a control
    character, refused in a single-line field (tests/test_bad_input.py has the others)."""
    response = client.post("/api/events", json=event_body(location="\x1e"), headers=organizer.headers)
    assert response.status_code == 422 and "location" in response.get_json()["errors"], response.get_json()


@pytest.mark.parametrize("field", ["title", "date", "location", "totalTickets"])
def test_create_requires_field(client, organizer, field):
    body = event_body()
    del body[field]
    response = client.post("/api/events", json=body, headers=organizer.headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize("field, value", [
    ("availableTickets", 5), ("status", "CANCELLED"), ("organizerId", 1), ("id", 42),
])
def test_create_refuses_unknown_field(client, organizer, field, value):
    response = client.post("/api/events", json=event_body(**{field: value}), headers=organizer.headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert client.get("/api/events").get_json() == []


@pytest.mark.parametrize("tickets", [1, 1_000_000])
def test_create_accepts_ticket_bounds(client, organizer, tickets):
    response = client.post("/api/events", json=event_body(totalTickets=tickets), headers=organizer.headers)
    assert response.status_code == 201
    assert response.get_json()["availableTickets"] == tickets


# -- read --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/events/999999", "/api/events/abc"])
def test_unknown_event_is_404(client, organizer, method, path):
    body = {"title": "x"} if method in ("put", "patch") else None  # a DELETE takes no body (a field is a 422)
    response = getattr(client, method)(path, json=body, headers=organizer.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


# -- update ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_owner_updates_only_the_given_fields(client, organizer, make_event, method):
    event = make_event()
    response = getattr(client, method)(f"/api/events/{event['id']}", json={"title": "Renamed"},
                                       headers=organizer.headers)
    assert response.status_code == 200
    updated = response.get_json()
    assert updated["title"] == "Renamed"
    unchanged = {k: v for k, v in event.items() if k not in ("title", "updatedAt")}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert client.get(f"/api/events/{event['id']}").get_json() == updated


def test_admin_updates_any_event(client, admin, make_event):
    event = make_event()
    response = client.patch(f"/api/events/{event['id']}", json={"location": "Hall B"}, headers=admin.headers)
    assert response.status_code == 200
    assert response.get_json()["location"] == "Hall B"


def test_others_cannot_update(client, make_user, customer, make_event):
    event = make_event()
    url = f"/api/events/{event['id']}"
    for actor in (make_user("ORGANIZER"), customer):
        response = client.patch(url, json={"title": "Mine now"}, headers=actor.headers)
        assert response.status_code == 403
        assert response.get_json()["code"] == "forbidden"
    assert client.patch(url, json={"title": "Mine now"}).status_code == 401
    assert client.get(url).get_json()["title"] == event["title"]


@pytest.mark.parametrize("body", [
    {"availableTickets": 5}, {"status": "CANCELLED"}, {"organizerId": 1},
    {"title": ""}, {"date": iso(days_from_now(-1))}, {"totalTickets": 0},
])
def test_update_refuses_invalid_or_unknown_fields(client, organizer, make_event, body):
    event = make_event()
    response = client.patch(f"/api/events/{event['id']}", json=body, headers=organizer.headers)
    assert response.status_code == 422
    assert set(body) <= set(response.get_json()["errors"])
    assert client.get(f"/api/events/{event['id']}").get_json() == event


def test_total_tickets_moves_available_by_the_same_delta(client, shop, organizer, customer, make_event):
    event = make_event(totalTickets=10)
    ok(shop.book(customer, event["id"], 3), 201)
    url = f"/api/events/{event['id']}"
    for total, available in [(15, 12), (5, 2), (3, 0)]:
        response = client.patch(url, json={"totalTickets": total}, headers=organizer.headers)
        assert response.status_code == 200
        assert (response.get_json()["totalTickets"], response.get_json()["availableTickets"]) == (total, available)


def test_total_tickets_below_sold_is_refused_and_nothing_changes(client, shop, organizer, customer, make_event):
    event = make_event(totalTickets=10)
    ok(shop.book(customer, event["id"], 4), 201)
    url = f"/api/events/{event['id']}"
    before = client.get(url).get_json()
    response = client.put(url, json={"totalTickets": 3, "title": "Smaller"}, headers=organizer.headers)
    assert response.status_code == 409
    assert response.get_json()["code"] == "capacity_below_sold"
    assert client.get(url).get_json() == before


def test_cancelled_event_cannot_be_updated(client, shop, organizer, customer, make_event):
    event = make_event()
    ok(shop.book(customer, event["id"]), 201)
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    response = client.patch(f"/api/events/{event['id']}", json={"title": "Back"}, headers=organizer.headers)
    assert response.status_code == 409
    assert response.get_json()["code"] == "event_closed"


# -- delete ------------------------------------------------------------------------


def test_delete_event_never_booked_removes_it(client, organizer, make_event):
    event = make_event()
    response = client.delete(f"/api/events/{event['id']}", headers=organizer.headers)
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/api/events/{event['id']}").status_code == 404


def test_delete_event_nobody_booked_removes_it_with_its_holds(client, shop, organizer, make_user, make_event):
    """No booking ever: removed, whatever holds came and went or are still HELD (API:
    "with no bookings ever: removed")."""
    event = make_event(totalTickets=1)
    customer, waiting, holder = make_user(), make_user(), make_user()
    held = ok(shop.hold(customer, event["id"], 1), 201)
    waitlist = f"/api/events/{event['id']}/waitlist"
    ok(client.post(waitlist, json={"ticketsCount": 1}, headers=waiting.headers), 201)
    shop.release(customer, held["id"])
    offer = wait_until(lambda: ok(client.get(f"{waitlist}/me", headers=waiting.headers))["holdId"], 10,
                       message="the offer")
    shop.release(waiting, offer)
    still_held = ok(shop.hold(holder, event["id"], 1), 201)
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    refused(client.get(f"/api/events/{event['id']}"), 404, "not_found")
    refused(client.get(f"/api/holds/{held['id']}", headers=customer.headers), 404, "not_found")
    refused(client.get(f"{waitlist}/me", headers=waiting.headers), 404, "not_found")
    refused(client.get(f"/api/holds/{still_held['id']}", headers=holder.headers), 404, "not_found")
    refused(shop.confirm(holder, still_held["id"]), 404, "not_found")


def test_a_deleted_events_id_is_never_given_to_a_new_one(client, organizer, make_event):
    """Not on SQLite either, which reuses the highest rowid unless told otherwise: a
    client holding the old id gets a 404, never the next organizer's event."""
    event = make_event(title="Deleted")
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    after = make_event(title="Created after the delete")
    assert after["id"] > event["id"]
    refused(client.get(f"/api/events/{event['id']}"), 404, "not_found")
    refused(client.patch(f"/api/events/{event['id']}", json={"title": "Renamed"}, headers=organizer.headers),
            404, "not_found")
    assert ok(client.get(f"/api/events/{after['id']}"))["title"] == "Created after the delete"


def test_a_removed_events_holds_and_entries_ids_are_never_given_to_new_ones(client, shop, organizer, make_user,
                                                                          make_event):
    """Not on SQLite either: a customer who kept the id of a hold of an event that was
    removed gets a 404 for it, never confirms their own next hold by it."""
    customer, waiting = make_user(), make_user()
    removed = make_event(totalTickets=1)
    held = ok(shop.hold(customer, removed["id"], 1), 201)
    entry = ok(client.post(f"/api/events/{removed['id']}/waitlist", json={"ticketsCount": 1},
                           headers=waiting.headers), 201)
    assert client.delete(f"/api/events/{removed['id']}", headers=organizer.headers).status_code == 204
    later = make_event(totalTickets=1)
    again = ok(shop.hold(customer, later["id"], 1), 201)
    assert again["id"] > held["id"]
    refused(client.get(f"/api/holds/{held['id']}", headers=customer.headers), 404, "not_found")
    refused(shop.confirm(customer, held["id"]), 404, "not_found")
    shop.release(customer, again["id"])
    other = make_user()
    ok(shop.hold(other, later["id"], 1), 201)
    assert ok(client.post(f"/api/events/{later['id']}/waitlist", json={"ticketsCount": 1},
                          headers=waiting.headers), 201)["id"] > entry["id"]


def test_delete_booked_event_cancels_it_and_its_bookings(
    client, shop, organizer, make_user, make_event, wait_for_notifications
):
    event = make_event(totalTickets=10)
    first, second, gone = make_user(), make_user(), make_user()
    bookings = [ok(shop.book(first, event["id"], 2), 201), ok(shop.book(second, event["id"], 3), 201)]
    early = ok(shop.book(gone, event["id"], 1), 201)
    assert client.post(f"/api/bookings/{early['id']}/cancel", headers=gone.headers).status_code == 200

    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204

    cancelled = client.get(f"/api/events/{event['id']}").get_json()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["availableTickets"] == cancelled["totalTickets"] == 10
    for booking, actor in zip(bookings, (first, second), strict=True):
        after = client.get(f"/api/bookings/{booking['id']}", headers=actor.headers).get_json()
        assert after["status"] == "CANCELLED"
        assert after["cancelledAt"] is not None
        notes = wait_for_notifications(actor, 2)
        assert kinds(notes).count("EVENT_CANCELLED") == 1
        assert all(n["recipient"] == actor.email for n in notes)
    # the expansion that reached the others is done: one who cancelled before hears nothing
    assert "EVENT_CANCELLED" not in kinds(client.get("/api/notifications", headers=gone.headers).get_json())


# What each request does to the event, with the fields of the event it needs.
CHANGES = {
    "join its waiting list": ({}, lambda client, event, customer, organizer: client.post(
        f"/api/events/{event['id']}/waitlist", json={"ticketsCount": 1}, headers=customer.headers)),
    "add a ticket type": ({}, lambda client, event, customer, organizer: client.post(
        f"/api/events/{event['id']}/ticket-types", json={"name": "VIP", "price": "9.00", "quantity": 1},
        headers=organizer.headers)),
    "change a ticket type": ({}, lambda client, event, customer, organizer: client.patch(
        f"/api/events/{event['id']}/ticket-types/{event['ticketTypes'][0]['id']}", json={"price": "2.00"},
        headers=organizer.headers)),
    "delete a ticket type": ({"ticketTypes": [{"name": "A", "price": "1.00", "quantity": 1},
                                              {"name": "B", "price": "1.00", "quantity": 1}]},
                             lambda client, event, customer, organizer: client.delete(
        f"/api/events/{event['id']}/ticket-types/{event['ticketTypes'][0]['id']}", headers=organizer.headers)),
    "change the event": ({}, lambda client, event, customer, organizer: client.patch(
        f"/api/events/{event['id']}", json={"totalTickets": 5}, headers=organizer.headers)),
    "replace its seat map": ({"seating": "RESERVED"}, lambda client, event, customer, organizer: client.put(
        f"/api/events/{event['id']}/seats", json={"sections": [{"name": "A", "ticketTypeId": event["ticketTypes"][0]["id"],
                                                                "rows": [{"label": "1", "from": 1, "to": 2}]}]},
        headers=organizer.headers)),
}


@pytest.mark.postgresql_only("SQLite has one writer at a time: a change never waits on a deletion")
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_that_waited_on_the_events_deletion_is_a_404(database_url, client, organizer, customer, make_event,
                                                              change):
    """The event, never booked, is deleted while a request that has read it waits for its
    row: that request answers 404, as if it had come after."""
    fields, request = CHANGES[change]
    event = make_event(totalTickets=2, **fields)
    engine = sa.create_engine(support._normalized(database_url))
    answers = {}
    deleting = threading.Thread(target=lambda: answers.setdefault(
        "delete", client.delete(f"/api/events/{event['id']}", headers=organizer.headers)))
    changing = threading.Thread(target=lambda: answers.setdefault(
        "change", request(client, event, customer, organizer)))
    try:
        with engine.connect() as locking:
            locking.execute(sa.text("SELECT id FROM events WHERE id = :id FOR UPDATE"), {"id": event["id"]})
            for number, thread in enumerate((deleting, changing), start=1):  # the deletion first in line
                thread.start()
                wait_until(lambda n=number: support.waiting_for_locks(engine) == n, 10, message=f"{number} waiting on the event")
            locking.commit()
            deleting.join(30)
            changing.join(30)
    finally:
        engine.dispose()
    assert answers["delete"].status_code == 204
    refused(answers["change"], 404, "not_found")
    refused(client.get(f"/api/events/{event['id']}"), 404, "not_found")


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_started_event_is_not_changed(client, shop, organizer, customer, make_event, set_event_date, change):
    """What has taken place stays as it was: no edit, type or seat map change reopens it."""
    fields, request = CHANGES[change]
    event = make_event(totalTickets=2, **fields)
    set_event_date(event["id"], days_from_now(0) - timedelta(minutes=5))
    before = ok(client.get(f"/api/events/{event['id']}"))
    refused(request(client, event, customer, organizer), 409, "event_closed")
    assert ok(client.get(f"/api/events/{event['id']}")) == before


def test_a_started_event_is_not_moved_back_on_sale(client, shop, organizer, customer, make_user, make_event,
                                                   set_event_date):
    event = make_event(totalTickets=5)
    booking = ok(shop.book(customer, event["id"], 1), 201)
    set_event_date(event["id"], days_from_now(0) - timedelta(minutes=5))
    url = f"/api/events/{event['id']}"
    for change in ({"date": iso(days_from_now(2))}, {"title": "Renamed afterwards"}, {"totalTickets": 9}):
        response = client.patch(url, json=change, headers=organizer.headers)
        refused(response, 409, "event_closed")
        assert "started" in response.get_json()["message"]
    refused(shop.book(make_user(), event["id"]), 409, "event_closed")
    refused(shop.cancel(customer, booking["id"]), 409, "event_closed")
    assert "EVENT_UPDATED" not in kinds(ok(client.get("/api/notifications", headers=customer.headers)))


def test_a_started_events_bookings_stand(client, shop, organizer, admin, customer, make_event, set_event_date):
    """Deleting an event that has started would cancel bookings that were used: refused.
    One that nobody ever booked is still removed."""
    booked, unbooked = make_event(totalTickets=5), make_event(totalTickets=5)
    booking = ok(shop.book(customer, booked["id"], 2), 201)
    for event in (booked, unbooked):
        set_event_date(event["id"], days_from_now(0) - timedelta(minutes=5))
    for actor in (organizer, admin):
        refused(client.delete(f"/api/events/{booked['id']}", headers=actor.headers), 409, "event_closed")
    assert ok(client.get(f"/api/events/{booked['id']}"))["status"] == "SCHEDULED"
    assert ok(client.get(f"/api/bookings/{booking['id']}", headers=customer.headers))["status"] == "CONFIRMED"
    assert "EVENT_CANCELLED" not in kinds(ok(client.get("/api/notifications", headers=customer.headers)))
    assert client.delete(f"/api/events/{unbooked['id']}", headers=organizer.headers).status_code == 204
    refused(client.get(f"/api/events/{unbooked['id']}"), 404, "not_found")
    # booked once, every booking cancelled before the start: nothing stands, it is cancelled
    emptied = make_event(totalTickets=5)
    cancelled = ok(shop.book(customer, emptied["id"], 1), 201)
    ok(shop.cancel(customer, cancelled["id"]))
    set_event_date(emptied["id"], days_from_now(0) - timedelta(minutes=5))
    assert client.delete(f"/api/events/{emptied['id']}", headers=organizer.headers).status_code == 204
    assert ok(client.get(f"/api/events/{emptied['id']}"))["status"] == "CANCELLED"


def test_admin_deletes_any_event(client, admin, make_event):
    event = make_event()
    assert client.delete(f"/api/events/{event['id']}", headers=admin.headers).status_code == 204
    assert client.get(f"/api/events/{event['id']}").status_code == 404


def test_others_cannot_delete(client, make_user, customer, make_event):
    event = make_event()
    url = f"/api/events/{event['id']}"
    for actor in (make_user("ORGANIZER"), customer):
        response = client.delete(url, headers=actor.headers)
        assert response.status_code == 403
        assert response.get_json()["code"] == "forbidden"
    assert client.delete(url).status_code == 401
    assert client.get(url).status_code == 200


# -- EVENT_UPDATED -----------------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"title": "Tech Conf (moved)"}, {"location": "Hall B"}, {"date": iso(days_from_now(40))},
])
def test_change_notifies_confirmed_attendees_only(
    client, shop, organizer, make_user, make_event, wait_for_notifications, change
):
    event = make_event()
    attendee, quitter = make_user(), make_user()
    ok(shop.book(attendee, event["id"]), 201)
    early = ok(shop.book(quitter, event["id"]), 201)
    assert client.post(f"/api/bookings/{early['id']}/cancel", headers=quitter.headers).status_code == 200

    response = client.patch(f"/api/events/{event['id']}", json=change, headers=organizer.headers)
    assert response.status_code == 200

    notes = wait_for_notifications(attendee, 2)
    assert sorted(kinds(notes)) == ["BOOKING_CONFIRMED", "EVENT_UPDATED"]
    assert response.get_json()["title"] in notes[0]["subject"]
    assert "EVENT_UPDATED" not in kinds(client.get("/api/notifications", headers=quitter.headers).get_json())


def test_a_date_moved_by_seconds_reads_as_another_time(client, shop, organizer, customer, make_event,
                                                      wait_for_notifications):
    on_the_minute = days_from_now(30).replace(hour=10, minute=0, second=0)
    event = make_event(date=iso(on_the_minute))
    ok(shop.book(customer, event["id"]), 201)
    ok(client.patch(f"/api/events/{event['id']}", json={"date": iso(on_the_minute + timedelta(seconds=30))},
                    headers=organizer.headers))
    [update] = [note for note in wait_for_notifications(customer, 2) if note["kind"] == "EVENT_UPDATED"]
    assert "10:00:30 UTC" in update["body"], update["body"]
    confirmed = [note for note in wait_for_notifications(customer, 2) if note["kind"] == "BOOKING_CONFIRMED"]
    assert "10:00 UTC" in confirmed[0]["body"], confirmed[0]["body"]  # on the minute: to the minute


def test_description_or_capacity_change_sends_nothing(client, shop, organizer, customer, make_event, wait_for_notifications):
    event = make_event()
    ok(shop.book(customer, event["id"]), 201)
    url = f"/api/events/{event['id']}"
    assert client.patch(url, json={"description": "New text"}, headers=organizer.headers).status_code == 200
    assert client.patch(url, json={"totalTickets": 200}, headers=organizer.headers).status_code == 200
    assert client.patch(url, json={"title": event["title"]}, headers=organizer.headers).status_code == 200
    # a real change afterwards: once its notification arrives, any earlier one would have too
    assert client.patch(url, json={"title": "Final title"}, headers=organizer.headers).status_code == 200
    notes = wait_for_notifications(customer, 2)
    assert kinds(notes).count("EVENT_UPDATED") == 1
    assert "Final title" in notes[0]["subject"]
