"""Who may call what (OWASP API1 object level, API3 property level, API5 function level).

One row per endpoint of API.md: (method, path template, body, {actor: expected status}).
Every row is tried by every actor, each against a world no request has changed (after a
GET or a refusal the next actor shares the world; after any other answer it gets a new
one), so a row that deletes or logs out cannot change what the next actor sees:

    anon       no token
    customer   a CUSTOMER who has nothing to do with the event or the booking
    booker     the CUSTOMER who holds `booking` (CONFIRMED, on `event`)
    owner      the ORGANIZER who created `event`
    organizer  another ORGANIZER
    admin      an ADMIN (made with `flask create-admin`)

Placeholders in paths: {event}, {booking}, {type} (an unsold ticket type of `event`),
{hold} (the booker's HELD hold on a second event), {user} (the world's customer),
{ticket} (the first ticket of `booking`).
Bodies are callables of the world, so they can name its ids and fresh emails.
"""

import uuid

import pytest

from tests import support
from tests.support import in_days

ACTORS = ("anon", "customer", "booker", "owner", "organizer", "admin")


def everyone(status):
    return {actor: status for actor in ACTORS}


def signed_in(status, **exceptions):
    """anon 401, every other actor `status` unless listed in `exceptions`."""
    return {**everyone(status), "anon": 401, **exceptions}


# Only the owner of the event and an admin may manage it.
MANAGERS_ONLY = dict(customer=403, booker=403, organizer=403)


def new_account(world):
    return {"email": f"new-{uuid.uuid4().hex[:12]}@example.com", "password": support.PASSWORD, "role": "CUSTOMER"}


def credentials(world):
    return {"email": world["customer"].email, "password": support.PASSWORD}


def password_change(world):
    return {"currentPassword": support.PASSWORD, "newPassword": "matrix-new-password-1"}


def reset_asked(world):
    return {"email": world["customer"].email}


def wrong_reset_code(world):
    return {"code": "1.1700000000." + "A" * 43, "newPassword": "matrix-new-password-1"}


def new_event(world):
    return {"title": "Matrix Fest", "date": in_days(40), "location": "Hall 2", "totalTickets": 10}


def change(world):
    return {"title": "Renamed", "totalTickets": 50}


def replace(world):
    return {"title": "Replaced", "description": "new", "date": in_days(50), "location": "Hall 9", "totalTickets": 60}


def booking_of_event(world):
    return {"eventId": world["event"]["id"], "ticketsCount": 1, "ticketTypeId": world["event"]["ticketTypes"][0]["id"]}


def new_type(world):
    return {"name": f"Type {uuid.uuid4().hex[:8]}", "price": "12.50", "quantity": 5}


def price_change(world):
    return {"price": "15.00"}


def wait_for_one(world):
    return {"ticketsCount": 1, "ticketTypeId": world["event"]["ticketTypes"][0]["id"]}


def seat_map(world):
    return {"sections": [{"name": "Stalls", "ticketTypeId": world["event"]["ticketTypes"][0]["id"],
                          "rows": [{"label": "A", "from": 1, "to": 5}]}]}


def scan_the_booking(world):
    return {"code": world["ticket"]["code"]}


def promote(world):
    return {"role": "ORGANIZER"}


# (method, path, body, {actor: status}, token kind: "access" or "refresh")
MATRIX = [
    # accounts and tokens
    ("POST", "/api/auth/register", new_account, everyone(201), "access"),
    ("POST", "/api/auth/login", credentials, everyone(200), "access"),
    ("POST", "/api/auth/refresh", None, signed_in(200), "refresh"),
    ("POST", "/api/auth/refresh", None, signed_in(401), "access"),  # an access token is not a refresh token
    ("POST", "/api/auth/logout", None, signed_in(204), "access"),
    ("POST", "/api/auth/password", password_change, signed_in(204), "access"),
    # public: a token changes nothing (a wrong code is refused whoever sends it)
    ("POST", "/api/auth/password/reset", reset_asked, everyone(202), "access"),
    ("POST", "/api/auth/password/reset/confirm", wrong_reset_code, everyone(403), "access"),
    ("GET", "/api/auth/me", None, signed_in(200), "access"),
    # events
    ("GET", "/api/events", None, everyone(200), "access"),
    ("GET", "/api/events/{event}", None, everyone(200), "access"),
    ("POST", "/api/events", new_event, signed_in(201, customer=403, booker=403), "access"),
    ("PUT", "/api/events/{event}", replace, signed_in(200, **MANAGERS_ONLY), "access"),
    ("PATCH", "/api/events/{event}", change, signed_in(200, **MANAGERS_ONLY), "access"),
    ("DELETE", "/api/events/{event}", None, signed_in(204, **MANAGERS_ONLY), "access"),
    ("GET", "/api/events/{event}/bookings", None, signed_in(200, **MANAGERS_ONLY), "access"),
    # bookings: only customers book; the booker already holds a booking of this event
    ("POST", "/api/bookings", booking_of_event, signed_in(403, customer=201, booker=409), "access"),
    ("GET", "/api/bookings/my-bookings", None, signed_in(200), "access"),
    # a booking is visible to its customer, the event's owner and admins; 404 to anyone else
    ("GET", "/api/bookings/{booking}", None, signed_in(200, customer=404, organizer=404), "access"),
    # cancelled by its customer or an admin; the owner sees it but may not cancel it
    ("POST", "/api/bookings/{booking}/cancel", None, signed_in(200, customer=404, organizer=404, owner=403), "access"),
    # ticket types: managed by the event's owner and admins
    ("POST", "/api/events/{event}/ticket-types", new_type, signed_in(201, **MANAGERS_ONLY), "access"),
    ("PATCH", "/api/events/{event}/ticket-types/{type}", price_change, signed_in(200, **MANAGERS_ONLY), "access"),
    ("DELETE", "/api/events/{event}/ticket-types/{type}", None, signed_in(204, **MANAGERS_ONLY), "access"),
    # holds: customers hold (the booker has a booking of this event already); a hold is its
    # customer's (and visible to admins), 404 to anyone else
    ("POST", "/api/holds", booking_of_event, signed_in(403, customer=201, booker=409), "access"),
    ("GET", "/api/holds/{hold}", None, signed_in(404, booker=200, admin=200), "access"),
    ("DELETE", "/api/holds/{hold}", None, signed_in(404, booker=204, admin=204), "access"),
    ("POST", "/api/holds/{hold}/confirm", None, signed_in(403, customer=404, booker=201), "access"),
    # waiting lists: customers join while tickets are short (here they are not: 409); the
    # owner and admins see the queue
    ("POST", "/api/events/{event}/waitlist", wait_for_one, signed_in(403, customer=409, booker=409), "access"),
    ("GET", "/api/events/{event}/waitlist/me", None, signed_in(403, customer=404, booker=404), "access"),
    ("DELETE", "/api/events/{event}/waitlist/me", None, signed_in(403, customer=204, booker=204), "access"),
    ("GET", "/api/events/{event}/waitlist", None, signed_in(200, **MANAGERS_ONLY), "access"),
    # seat maps: public to read; the owner and admins put them (the world's event is
    # GENERAL: 422 for them, after the role and ownership checks)
    ("GET", "/api/events/{event}/seats", None, everyone(200), "access"),
    ("PUT", "/api/events/{event}/seats", seat_map, signed_in(422, **MANAGERS_ONLY), "access"),
    # at the door: tickets (and their QR codes) as bookings are seen; the event's owner
    # and admins scan, undo, export and count
    ("GET", "/api/bookings/{booking}/tickets", None, signed_in(200, customer=404, organizer=404), "access"),
    ("GET", "/api/bookings/{booking}/tickets/{ticket}/qr", None, signed_in(200, customer=404, organizer=404), "access"),
    ("POST", "/api/events/{event}/check-ins", scan_the_booking, signed_in(201, **MANAGERS_ONLY), "access"),
    ("DELETE", "/api/events/{event}/check-ins/{ticket}", None, signed_in(204, **MANAGERS_ONLY), "access"),
    ("GET", "/api/events/{event}/attendees.csv", None, signed_in(200, **MANAGERS_ONLY), "access"),
    ("GET", "/api/events/{event}/stats", None, signed_in(200, **MANAGERS_ONLY), "access"),
    ("GET", "/api/admin/stats", None, signed_in(403, admin=200), "access"),
    # notifications: the caller's own
    ("GET", "/api/notifications", None, signed_in(200), "access"),
    # administration: admins only ({user} is the world's customer)
    ("GET", "/api/admin/users", None, signed_in(403, admin=200), "access"),
    ("PATCH", "/api/admin/users/{user}", promote, signed_in(403, admin=200), "access"),
    # public documents
    ("GET", "/api/health", None, everyone(200), "access"),
    ("GET", "/api/openapi.json", None, everyone(200), "access"),
    ("GET", "/api/docs", None, everyone(200), "access"),
    ("GET", "/api/docs/assets/swagger-ui.css", None, everyone(200), "access"),
]


@pytest.fixture
def build_world(app, client, make_user, login):
    def build():
        owner = make_user("ORGANIZER")
        email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
        result = app.test_cli_runner().invoke(args=["create-admin", email, "--password", support.PASSWORD])
        assert result.exit_code == 0, result.output
        world = {
            "anon": None,
            "customer": make_user("CUSTOMER"),
            "booker": make_user("CUSTOMER"),
            "owner": owner,
            "organizer": make_user("ORGANIZER"),
            "admin": login(email),
        }
        response = client.post(
            "/api/events",
            headers=owner.headers,
            json={
                "title": "Owned",
                "description": "d",
                "date": in_days(30),
                "location": "Hall 1",
                "totalTickets": 100,
            },
        )
        assert response.status_code == 201, response.get_json()
        world["event"] = response.get_json()
        response = client.post(
            "/api/bookings", headers=world["booker"].headers, json={"eventId": world["event"]["id"], "ticketsCount": 2}
        )
        assert response.status_code == 201, response.get_json()
        world["booking"] = response.get_json()
        world["ticket"] = client.get(f"/api/bookings/{world['booking']['id']}/tickets",
                                     headers=world["booker"].headers).get_json()[0]
        response = client.post(f"/api/events/{world['event']['id']}/ticket-types", headers=owner.headers,
                               json={"name": "Unsold", "price": "5.00", "quantity": 3})
        assert response.status_code == 201, response.get_json()
        world["type"] = response.get_json()
        world["event"] = client.get(f"/api/events/{world['event']['id']}").get_json()
        other = client.post("/api/events", headers=owner.headers, json={
            "title": "Other", "date": in_days(31), "location": "Hall 2", "totalTickets": 10}).get_json()
        response = client.post("/api/holds", headers=world["booker"].headers, json={"eventId": other["id"],
                                                                                     "ticketsCount": 1})
        assert response.status_code == 201, response.get_json()
        world["hold"] = response.get_json()
        return world

    return build


def _row_id(row):
    method, path, _body, _expected, kind = row
    return f"{method} {path}" + (f" with {kind} token" if path.endswith("/refresh") else "")


@pytest.mark.parametrize("row", MATRIX, ids=[_row_id(row) for row in MATRIX])
def test_authorization_matrix(client, build_world, row):
    method, template, body, expected, kind = row
    actual, world = {}, None
    for actor in ACTORS:
        if world is None:
            world = build_world()
        path = template.format(event=world["event"]["id"], booking=world["booking"]["id"], type=world["type"]["id"],
                               hold=world["hold"]["id"], user=world["customer"].id, ticket=world["ticket"]["id"])
        user = world[actor]
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {user.refresh_token if kind == 'refresh' else user.token}"
        response = client.open(path, method=method, headers=headers, json=body(world) if body else None)
        response.close()  # a streamed answer (the CSV) ends its request context here
        actual[actor] = response.status_code
        if method != "GET" and response.status_code < 400:
            world = None  # it may have changed: the next actor gets a new one (a GET or a refusal changes nothing)
        if response.status_code >= 400:
            envelope = response.get_json()
            assert envelope["status"] == response.status_code, envelope
            assert envelope["code"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(
                response.status_code, envelope["code"]
            ), envelope
    assert actual == expected
    operation = documented_operations(client).get((method, template))
    if operation is None:  # Swagger UI's files are not in the document
        assert template.startswith("/api/docs/assets/"), template
    else:
        answers = {str(status) for status in actual.values()}
        assert answers <= operation["responses"].keys(), "every answer is in the OpenAPI document"


def documented_operations(client):
    """{(METHOD, path as the matrix writes it): operation} of the OpenAPI document."""
    spec = client.get("/api/openapi.json").get_json()
    return {
        (
            method.upper(),
            path.replace("{event_id}", "{event}").replace("{booking_id}", "{booking}").replace("{type_id}", "{type}")
            .replace("{hold_id}", "{hold}").replace("{user_id}", "{user}").replace("{ticket_id}", "{ticket}"),
        ): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_documented_operation_is_in_the_matrix(client):
    """A new endpoint without a row here fails this test."""
    covered = {(method, path) for method, path, *_ in MATRIX}
    assert documented_operations(client).keys() - covered == set()


def test_every_documented_error_answers_the_envelope(client):
    spec = client.get("/api/openapi.json").get_json()
    named = spec["components"]["responses"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue  # the path's own parameters
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    response = named[response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    error = spec["components"]["schemas"]["Error"]
    assert error["additionalProperties"] is True  # a 409's facts sit beside errors
    assert {"availableTickets", "unavailableSeatIds", "checkedInAt"} <= error["properties"].keys()


# -- object-level details the matrix cannot show -----------------------------------------


def test_a_customer_never_sees_another_customers_bookings(client, make_user, make_event):
    event = make_event()
    alice, bob = make_user("CUSTOMER"), make_user("CUSTOMER")
    booked = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=alice.headers)
    assert booked.status_code == 201
    assert client.get("/api/bookings/my-bookings", headers=bob.headers).get_json() == []
    assert client.get(f"/api/bookings/{booked.get_json()['id']}", headers=bob.headers).status_code == 404
    notes = client.get("/api/notifications", headers=bob.headers).get_json()
    assert all(note["recipient"] == bob.email for note in notes)


def test_another_organizers_event_is_left_untouched(client, organizer, make_user, make_event):
    event = make_event(owner=organizer, title="Mine")
    intruder = make_user("ORGANIZER")
    assert client.patch(f"/api/events/{event['id']}", json={"title": "Theirs"}, headers=intruder.headers).status_code == 403
    assert client.delete(f"/api/events/{event['id']}", headers=intruder.headers).status_code == 403
    after = client.get(f"/api/events/{event['id']}").get_json()
    assert after["title"] == "Mine" and after["status"] == "SCHEDULED"


@pytest.mark.parametrize(
    "path", ["/api/events/abc", "/api/events/1.5", "/api/bookings/x", "/api/events/-1", "/api/events/99999999999999999999"]
)
def test_non_integer_or_huge_ids_are_404(client, customer, path):
    response = client.get(path, headers=customer.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


# -- property level: no client sets what it may not (OWASP API3) ---------------------------

FORBIDDEN_FIELDS = {
    "role": "ADMIN",
    "id": 999,
    "organizerId": 1,
    "availableTickets": 1_000_000,
    "status": "CANCELLED",
    "userId": 1,
    "createdAt": "2020-01-01T00:00:00Z",
}
# `role` is a field of register (CUSTOMER or ORGANIZER): ADMIN is refused by value.


@pytest.mark.parametrize("field", sorted(FORBIDDEN_FIELDS))
def test_register_refuses_fields_it_does_not_take(client, field):
    email = f"sneaky-{field.lower()}@example.com"
    body = {"email": email, "password": support.PASSWORD, "role": "CUSTOMER", field: FORBIDDEN_FIELDS[field]}
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "validation_error"
    assert field in response.get_json()["errors"]
    assert client.post("/api/auth/login", json={"email": email, "password": support.PASSWORD}).status_code == 401


@pytest.mark.parametrize("field", sorted(FORBIDDEN_FIELDS))
def test_create_event_refuses_fields_it_does_not_take(client, organizer, field):
    body = {"title": "Sneaky", "date": in_days(10), "location": "X", "totalTickets": 5, field: FORBIDDEN_FIELDS[field]}
    response = client.post("/api/events", json=body, headers=organizer.headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert client.get("/api/events").get_json() == []


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("field", sorted(FORBIDDEN_FIELDS))
def test_update_event_refuses_fields_it_does_not_take(client, organizer, make_event, method, field):
    event = make_event(totalTickets=5)
    response = client.open(
        f"/api/events/{event['id']}",
        method=method,
        headers=organizer.headers,
        json={"title": "Changed", field: FORBIDDEN_FIELDS[field]},
    )
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    after = client.get(f"/api/events/{event['id']}").get_json()
    assert after == event


@pytest.mark.parametrize("field", sorted(FORBIDDEN_FIELDS))
def test_booking_refuses_fields_it_does_not_take(client, customer, make_event, field):
    event = make_event(totalTickets=5)
    response = client.post(
        "/api/bookings", headers=customer.headers, json={"eventId": event["id"], "ticketsCount": 1, field: FORBIDDEN_FIELDS[field]}
    )
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert client.get(f"/api/events/{event['id']}").get_json()["availableTickets"] == 5
    assert client.get("/api/bookings/my-bookings", headers=customer.headers).get_json() == []


def test_register_refuses_the_admin_role(client):
    response = client.post("/api/auth/register", json={"email": "wannabe@example.com", "password": support.PASSWORD, "role": "ADMIN"})
    assert response.status_code == 422
    assert "role" in response.get_json()["errors"]


def test_logout_refuses_unknown_fields(client, customer):
    response = client.post("/api/auth/logout", headers=customer.headers, json={"role": "ADMIN"})
    assert response.status_code == 422
    assert client.get("/api/auth/me", headers=customer.headers).status_code == 200
