"""Who may see and cancel a booking, and who may list an event's bookings."""

import pytest

from tests import support
from tests.support import has_link, ok


def keys(value):
    """Every key of a JSON document, at any depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


@pytest.fixture
def booking(shop, customer, make_event):
    return ok(shop.book(customer, make_event(totalTickets=10)["id"], 2), 201)


# -- GET /api/bookings/{id} ----------------------------------------------------------


def test_visible_to_its_customer_the_events_organizer_and_admins(client, booking, customer, organizer, admin):
    for actor in (customer, organizer, admin):
        response = client.get(f"/api/bookings/{booking['id']}", headers=actor.headers)
        assert response.status_code == 200, actor.role
        assert response.get_json() == booking


@pytest.mark.parametrize("role", ["CUSTOMER", "ORGANIZER"])
def test_hidden_from_everyone_else(client, booking, make_user, role):
    response = client.get(f"/api/bookings/{booking['id']}", headers=make_user(role).headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_anonymous_gets_401(client, booking):
    response = client.get(f"/api/bookings/{booking['id']}")
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/api/bookings/999999", "/api/bookings/abc"])
def test_unknown_booking_is_404(client, customer, path):
    assert client.get(path, headers=customer.headers).status_code == 404


# -- who may cancel ----------------------------------------------------------------


def test_another_customer_cannot_cancel(client, booking, customer, make_user):
    response = client.post(f"/api/bookings/{booking['id']}/cancel", headers=make_user().headers)
    assert response.status_code == 404
    assert client.get(f"/api/bookings/{booking['id']}", headers=customer.headers).get_json()["status"] == "CONFIRMED"


def test_another_organizer_cannot_cancel(client, booking, make_user):
    response = client.post(f"/api/bookings/{booking['id']}/cancel", headers=make_user("ORGANIZER").headers)
    assert response.status_code == 404


def test_the_events_organizer_sees_but_cannot_cancel(client, booking, customer, organizer):
    response = client.post(f"/api/bookings/{booking['id']}/cancel", headers=organizer.headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"
    assert client.get(f"/api/bookings/{booking['id']}", headers=customer.headers).get_json()["status"] == "CONFIRMED"
    assert client.get(f"/api/events/{booking['eventId']}").get_json()["availableTickets"] == 8


def test_anonymous_cannot_cancel(client, booking):
    assert client.post(f"/api/bookings/{booking['id']}/cancel").status_code == 401


# -- GET /api/events/{id}/bookings -------------------------------------------------


def test_owner_lists_bookings_with_attendees(client, shop, organizer, make_user, make_event):
    event = make_event()
    attendees = [make_user(name=f"Attendee {n}") for n in range(2)]
    made = [ok(shop.book(actor, event["id"], n + 1), 201) for n, actor in enumerate(attendees)]
    ok(shop.book(make_user(), make_event(title="other")["id"]), 201)

    response = client.get(f"/api/events/{event['id']}/bookings", headers=organizer.headers)
    assert response.status_code == 200
    listed = response.get_json()
    assert [b["id"] for b in listed] == [b["id"] for b in made]
    assert [b["ticketsCount"] for b in listed] == [1, 2]
    for item, actor in zip(listed, attendees, strict=True):
        assert item["eventId"] == event["id"]
        assert item["user"]["id"] == actor.id
        assert item["user"]["email"] == actor.email
        assert item["user"]["role"] == "CUSTOMER"
        assert item["user"]["name"].startswith("Attendee")
    assert not [key for key in keys(listed) if "password" in key.lower() or "hash" in key.lower()]
    assert response.headers["X-Total-Count"] == "2"


def test_owner_sees_cancelled_bookings_too(client, shop, organizer, customer, make_event):
    event = make_event()
    made = ok(shop.book(customer, event["id"]), 201)
    assert client.post(f"/api/bookings/{made['id']}/cancel", headers=customer.headers).status_code == 200
    listed = client.get(f"/api/events/{event['id']}/bookings", headers=organizer.headers).get_json()
    assert [(b["id"], b["status"]) for b in listed] == [(made["id"], "CANCELLED")]


def test_admin_lists_any_events_bookings(client, shop, admin, customer, make_event):
    event = make_event()
    made = ok(shop.book(customer, event["id"]), 201)
    response = client.get(f"/api/events/{event['id']}/bookings", headers=admin.headers)
    assert response.status_code == 200
    assert [b["id"] for b in response.get_json()] == [made["id"]]


def test_others_cannot_list_an_events_bookings(client, shop, customer, make_user, make_event):
    event = make_event()
    ok(shop.book(customer, event["id"]), 201)
    url = f"/api/events/{event['id']}/bookings"
    for actor in (make_user("ORGANIZER"), customer):
        response = client.get(url, headers=actor.headers)
        assert response.status_code == 403
        assert response.get_json()["code"] == "forbidden"
    response = client.get(url)
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


def test_bookings_of_unknown_event_is_404(client, organizer):
    response = client.get("/api/events/999999/bookings", headers=organizer.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_event_bookings_paging(client, shop, organizer, make_user, make_event):
    event = make_event()
    made = [ok(shop.book(make_user(), event["id"]), 201) for _ in range(3)]
    url = f"/api/events/{event['id']}/bookings"

    first = client.get(f"{url}?perPage=2", headers=organizer.headers)
    assert [b["id"] for b in first.get_json()] == [b["id"] for b in made[:2]]
    assert first.headers["X-Total-Count"] == "3"
    assert has_link(first, "next") and not has_link(first, "prev")

    second = client.get(f"{url}?page=2&perPage=2", headers=organizer.headers)
    assert [b["id"] for b in second.get_json()] == [made[2]["id"]]
    assert has_link(second, "prev") and not has_link(second, "next")

    assert client.get(f"{url}?perPage=0", headers=organizer.headers).status_code == 422


def test_a_page_of_attendees_is_read_in_as_many_statements_however_many_it_shows(app, client, shop, organizer,
                                                                                  make_user, make_event):
    """Each booking comes with its customer: read for the whole page at once, not one
    query per booking."""
    event = make_event()
    url = f"/api/events/{event['id']}/bookings"
    counts = []
    for attendees in (1, 4):
        while len(client.get(url, headers=organizer.headers).get_json()) < attendees:
            ok(shop.book(make_user(), event["id"]), 201)
        sent, response = support.statements(app, lambda: client.get(url, headers=organizer.headers))
        assert len(ok(response)) == attendees
        counts.append(len(sent))
    assert counts[0] == counts[1], counts
