"""Bad input from an attacker or a new user: every undecodable body is one 400, oversized
headers a 431, single-line fields hold one line, and nothing of it is a 500 or changes
anything. (What gunicorn itself sees first: tests/test_gunicorn_limits.py.)"""

import logging
import re

import pytest
import sqlalchemy as sa

from eventbook.extensions import db
from eventbook.models import Event
from tests import support
from tests.support import in_days

# Bodies that are not a JSON object, each sent as application/json.
BAD_BODIES = {
    "nested 1,000 deep": '{"title": ' + "[" * 1000 + "]" * 1000 + "}",
    "nested 50,000 deep": "[" * 50_000,
    "integer of 4,301 digits": '{"ticketsCount": ' + "9" * 4301 + "}",
    "empty": "",
    "blank": " \r\n",
    "not JSON": "{bad",
    "NaN": '{"ticketsCount": NaN}',
    "Infinity": '{"ticketsCount": -Infinity}',
    "not UTF-8": b'{"title": "\xff"}',
    "UTF-16": '{"title": "x"}'.encode("utf-16"),
    "an array": "[]",
    "a string": '"text"',
    "null": "null",
    "a name twice": '{"ticketsCount": 1, "ticketsCount": 2}',
    "a name twice, nested": '{"items": [{"ticketTypeId": 1, "count": 1, "count": 9}]}',
    "a name twice, escaped": '{"title": "a", "\\u0074itle": "b"}',
}


def assert_envelope(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert (body["status"], body["code"]) == (status, code), body
    assert isinstance(body["message"], str) and body["message"] and isinstance(body["errors"], dict)
    return body


@pytest.fixture
def app_log(caplog):
    """Every record of the app's loggers (which do not propagate) at INFO and above."""
    logger = logging.getLogger("eventbook")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


def assert_no_error_logged(caplog):
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


@pytest.fixture
def json_operations(client, admin, organizer, customer):
    """(method, path, headers) of every operation of the OpenAPI document that takes a JSON
    body, with the token of a role it accepts (so that its body is read)."""
    spec = client.get("/api/openapi.json").get_json()
    operations = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or "application/json" not in operation.get("requestBody", {}).get("content", {}):
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            for actor in (None, customer, organizer, admin):
                headers = actor.headers if actor else {}
                response = client.open(url, method=method.upper(), json={"unknownField": 1}, headers=headers)
                if response.status_code not in (401, 403):
                    operations.append((method.upper(), url, headers))
                    break
            else:
                pytest.fail(f"no role has its body read: {method.upper()} {path}")
    assert len(operations) >= 14, operations  # register, login, logout, events x3, bookings, holds... at least
    return operations


@pytest.mark.parametrize("name", BAD_BODIES)
def test_every_json_endpoint_answers_a_body_that_is_not_an_object_with_400(client, json_operations, app_log, name):
    for method, url, headers in json_operations:
        response = client.open(url, method=method, data=BAD_BODIES[name], content_type="application/json",
                               headers=headers)
        body = assert_envelope(response, 400, "bad_request")
        assert "JSON" in body["message"], body
    assert_no_error_logged(app_log)
    assert client.get("/api/events?status=SCHEDULED").get_json() == []


def test_the_message_says_what_is_wrong(client):
    says = {
        "nested 1,000 deep": "nested too deeply", "integer of 4,301 digits": "more than 4300 digits",
        "empty": "empty", "NaN": "NaN is not a JSON value", "not UTF-8": "not UTF-8",
        "not JSON": "line 1, column 2", "an array": "must be a JSON object",
        "a name twice": "names 'ticketsCount' more than once", "a name twice, escaped": "names 'title' more than once",
    }
    for name, words in says.items():
        response = client.post("/api/auth/login", data=BAD_BODIES[name], content_type="application/json")
        assert words in assert_envelope(response, 400, "bad_request")["message"], name


LIMITS = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_LOGIN_ACCOUNT": "2 per minute"}


@pytest.mark.parametrize("config_overrides", [LIMITS], ids=["limits"])
@pytest.mark.parametrize("name", ["nested 1,000 deep", "nested 50,000 deep", "integer of 4,301 digits", "not UTF-8"])
def test_login_limit_key_reads_a_bad_body_safely(client, customer, app_log, name):
    """The per-account limit's key reads the body before the view does (silently)."""
    for _ in range(3):
        response = client.post("/api/auth/login", data=BAD_BODIES[name], content_type="application/json")
        assert_envelope(response, 400, "bad_request")
    assert_no_error_logged(app_log)
    # a 400 is no failed login: the account is not locked
    body = {"email": customer.email, "password": support.PASSWORD}
    assert client.post("/api/auth/login", json=body).status_code == 200


def test_optional_bodies_may_be_absent_but_not_empty_json(client, organizer, make_event):
    event = make_event()
    url = f"/api/events/{event['id']}"
    assert client.patch(url, headers=organizer.headers).status_code == 200  # no body, no content type
    assert_envelope(client.patch(url, data="", content_type="application/json", headers=organizer.headers),
                    400, "bad_request")
    assert_envelope(client.post("/api/auth/logout", data="", content_type="application/json",
                                headers=organizer.headers), 400, "bad_request")
    assert client.get("/api/auth/me", headers=organizer.headers).status_code == 200  # not logged out
    assert client.post("/api/auth/logout", headers=organizer.headers).status_code == 204


def test_operations_that_take_no_body_refuse_any_field_and_change_nothing(client, customer, organizer, admin, shop,
                                                                          make_event):
    spec = client.get("/api/openapi.json").get_json()
    refused = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch", "delete") or "requestBody" in operation:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            for actor in (customer, organizer, admin):  # the first role whose request gets past authorization
                token = actor.refresh_token if path.endswith("/refresh") else actor.token
                response = client.open(url, method=method.upper(), json={"unknownField": 1},
                                       headers={"Authorization": f"Bearer {token}"})
                if response.status_code not in (401, 403):
                    break
            body = assert_envelope(response, 422, "validation_error")
            assert body["errors"] == {"unknownField": ["Unknown field."]}, (method, path)
            refused.append(f"{method.upper()} {path}")
    assert len(refused) >= 8, refused  # refresh, deletes, cancel, confirm
    event = make_event(totalTickets=3)
    booking = shop.book(customer, event["id"], 1).get_json()
    url = f"/api/bookings/{booking['id']}/cancel"
    assert_envelope(client.post(url, json={"status": "CONFIRMED"}, headers=customer.headers), 422, "validation_error")
    assert shop.available(event["id"]) == 2  # not cancelled
    assert client.post(url, json={}, headers=customer.headers).get_json()["status"] == "CANCELLED"  # {} is no field


# -- headers ----------------------------------------------------------------------------


@pytest.mark.parametrize("size, status", [(8192, 401), (8193, 431), (10_000, 431)])
def test_a_header_value_over_8_kib_is_431(client, size, status):
    response = client.get("/api/auth/me", headers={"Authorization": "Bearer " + "a" * (size - 7)})
    body = assert_envelope(response, status, "header_too_large" if status == 431 else "unauthorized")
    if status == 431:
        assert "Authorization" in body["message"] and response.headers["X-Request-ID"]


def test_any_oversized_header_is_431_even_on_unknown_routes(client):
    assert_envelope(client.get("/api/nowhere", headers={"X-Custom": "x" * 9000}), 431, "header_too_large")


def test_no_content_means_no_content_type(client, organizer, make_event):
    event = make_event()
    for response in (client.delete(f"/api/events/{event['id']}", headers=organizer.headers),
                     client.post("/api/auth/logout", headers=organizer.headers)):
        assert response.status_code == 204
        assert "Content-Type" not in response.headers and response.get_data() == b""


# -- single-line text --------------------------------------------------------------------

BREAKERS = ["\r\n", "\n", "\r", "\t", "\x01", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202a", "\u202e",
            "\u2066", "\u2069"]


@pytest.mark.parametrize("char", BREAKERS, ids=["+".join(f"U+{ord(c):04X}" for c in chars) for chars in BREAKERS])
def test_single_line_fields_refuse_control_and_bidi_override_characters(client, organizer, make_event, char):
    event = make_event()
    text = f"Tech{char}Conf"
    for field in ("title", "location"):
        body = {"title": "T", "date": in_days(5), "location": "L", "totalTickets": 5, field: text}
        response = client.post("/api/events", json=body, headers=organizer.headers)
        assert set(assert_envelope(response, 422, "validation_error")["errors"]) == {field}
        response = client.patch(f"/api/events/{event['id']}", json={field: text}, headers=organizer.headers)
        assert field in assert_envelope(response, 422, "validation_error")["errors"]
    register = {"email": "x@example.com", "password": support.PASSWORD, "role": "CUSTOMER", "name": text}
    assert "name" in assert_envelope(client.post("/api/auth/register", json=register), 422, "validation_error")["errors"]
    assert client.get(f"/api/events/{event['id']}").get_json() == event
    assert client.get("/api/events").get_json() == [event]


@pytest.mark.parametrize("title", ["Fête de la musique", "כנס \u200fטכנולוגיה\u200f 2027", "مؤتمر\u061c 2027",
                                   "Tokyo 東京 🎉", "a\u200bb"])
def test_single_line_fields_keep_real_text(client, make_event, title):
    assert make_event(title=title, location=title)["title"] == title


def test_the_documented_pattern_is_the_rule(client):
    spec = client.get("/api/openapi.json").get_json()
    pattern = spec["components"]["schemas"]["EventCreate"]["properties"]["title"]["pattern"]
    for char in BREAKERS:
        assert not re.search(pattern, f"Tech{char}Conf"), repr(char)
    assert re.search(pattern, "כנס \u200fטכנולוגיה")
    assert not re.search(pattern, "   ")


@pytest.fixture
def config_overrides(request):
    return request.getfixturevalue("smtp").config() if "smtp" in request.fixturenames else {}


def test_a_title_stored_with_a_line_break_still_mails_one_subject_line(
        app, client, customer, make_event, smtp, wait_for_notifications):
    """A title written before these checks (or by hand) cannot split an email header."""
    event = make_event()
    with app.app_context():
        db.session.execute(sa.update(Event).where(Event.id == event["id"]).values(title="Evil\r\nBcc: v@example.com"))
        db.session.commit()
    booked = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=customer.headers)
    assert booked.status_code == 201, booked.get_json()
    [note] = wait_for_notifications(customer, 1)
    assert note["attempts"] == 1
    smtp.wait_for(1)
    [message] = smtp.messages
    assert message["Subject"] == "Booking confirmed: Evil Bcc: v@example.com"
    assert message["Bcc"] is None and message["To"] == customer.email


# -- digits and slashes that only look right ----------------------------------------

OTHER_DIGITS = {"Arabic-Indic": "\u0661", "full-width": "\uff11", "mathematical bold": "\U0001d7cf"}


@pytest.mark.parametrize("digit", OTHER_DIGITS.values(), ids=OTHER_DIGITS.keys())
def test_ids_and_numbers_are_ascii_digits(client, organizer, customer, make_event, shop, digit):
    """Python's int() reads every script's digits: "/api/events/١" was event 1."""
    event = make_event(totalTickets=5)
    assert event["id"] == 1
    booking = support.ok(shop.book(customer, event["id"], 1), 201)
    assert booking["id"] == 1
    assert_envelope(client.get(f"/api/events/{digit}"), 404, "not_found")
    assert_envelope(client.get(f"/api/bookings/{digit}", headers=customer.headers), 404, "not_found")
    assert_envelope(client.get(f"/api/events/{digit}/stats", headers=organizer.headers), 404, "not_found")
    for query in (f"page={digit}", f"perPage={digit}", f"organizerId={digit}"):
        body = assert_envelope(client.get(f"/api/events?{query}"), 422, "validation_error")
        assert list(body["errors"]) == [query.split("=")[0]], body
    price = {"name": "Balcony", "price": f"{digit}{digit}.00", "quantity": 1}
    body = assert_envelope(client.post(f"/api/events/{event['id']}/ticket-types", json=price, headers=organizer.headers),
                           422, "validation_error")
    assert "price" in str(body["errors"])
    assert [t["name"] for t in client.get(f"/api/events/{event['id']}").get_json()["ticketTypes"]] == ["General admission"]


# A leading doubled slash (//api/events) is checked through a live gunicorn
# (test_gunicorn_limits.py): Flask's test client reads "//api" as a host name.
@pytest.mark.parametrize("path", ["/api//events", "/api/events//1", "/static//page.css"])
def test_a_doubled_slash_is_a_404_never_a_redirect_to_the_host_sent(client, make_event, path):
    make_event()
    response = client.get(path, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert_envelope(response, 404, "not_found")
    assert "Location" not in response.headers
