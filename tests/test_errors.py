"""The one error envelope, for every kind of error, and inputs that must never be a 500."""

import json
import time

import flask
import pytest
import sqlalchemy as sa

from tests import support
from tests.support import PASSWORD

LOGIN = "/api/auth/login"


def assert_error(response, status, code):
    body = response.get_json()
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    assert set(body) == {"status", "code", "message", "errors"}
    assert (body["status"], body["code"]) == (status, code)
    assert isinstance(body["message"], str) and body["message"]
    return body


def event_body(**fields):
    return {"title": "Tech Conf", "date": "2099-12-01T10:00:00Z", "location": "Hall", "totalTickets": 10, **fields}


# -- routing -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/nope", "/nope", "/api/events/1/nope", "/api/auth"])
def test_unknown_route_is_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("method, path, allowed", [
    ("put", LOGIN, "POST"), ("delete", "/api/auth/me", "GET"), ("get", "/api/auth/logout", "POST"),
    ("post", "/api/events/1", "PUT"), ("delete", "/api/events", "POST"),
])
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_error(response, 405, "method_not_allowed")
    assert allowed in [m.strip() for m in response.headers["Allow"].split(",")]


@pytest.mark.parametrize("path, allowed", [("/api/events", {"GET", "POST"}), (LOGIN, {"POST"}), ("/", {"GET"})])
def test_options_says_what_is_allowed_with_no_content(client, path, allowed):
    response = client.options(path)
    assert response.status_code == 204
    assert response.data == b"" and "Content-Type" not in response.headers
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("method, path, status", [
    ("post", "/api/nope", 404), ("post", "/api/events/1/nope", 404), ("put", LOGIN, 405), ("delete", "/api/events", 405),
])
def test_routing_comes_before_the_body_type(client, method, path, status):
    """A path that does not exist is a 404, and a method it does not take a 405, whatever
    the body: not a 415 for a body nobody would have read."""
    response = getattr(client, method)(path, data="email=a", content_type="text/plain")
    assert_error(response, status, "not_found" if status == 404 else "method_not_allowed")


def test_overlong_url_is_414(client):
    assert_error(client.get("/api/events?q=" + "x" * 5000), 414, "uri_too_long")


# -- bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["{bad", '{"email": ', "{'email': 'a'}", b'{"email": "\xff\xfe"}', b"\xef\xbb"])
def test_malformed_json_is_400(client, data):
    response = client.post(LOGIN, data=data, content_type="application/json")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("value", [[], [{"email": "a@example.com"}], "text", 42, 1.5, True, None])
def test_json_that_is_not_an_object_is_400(client, value):
    response = client.post(LOGIN, data=json.dumps(value), content_type="application/json")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_body_without_json_content_type_is_415(client, content_type):
    data = json.dumps({"email": "a@example.com", "password": PASSWORD})
    assert_error(client.post(LOGIN, data=data, content_type=content_type), 415, "unsupported_media_type")


def test_body_over_64_kib_is_413(client):
    data = json.dumps({"email": "a@example.com", "password": "x" * 70 * 1024})
    assert_error(client.post(LOGIN, data=data, content_type="application/json"), 413, "payload_too_large")


def test_the_document_lists_the_errors_of_an_unreadable_body(client):
    """Every operation that takes a body lists the 400, 413 and 415 above, as errors; so
    does every one that takes none but may be sent one (a POST, PUT, PATCH or DELETE),
    with the 422 a body with fields gets."""
    spec = client.get("/api/openapi.json").get_json()
    operations = [(path, method, operation) for path, item in spec["paths"].items()
                  for method, operation in item.items() if method in ("post", "put", "patch", "delete")]
    assert len(operations) > 20
    for path, method, operation in operations:
        for status in ("400", "413", "415") + (() if "requestBody" in operation else ("422",)):
            response = operation["responses"].get(status)
            assert response and response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, \
                (method, path, status)


def test_the_document_lists_every_header_the_answers_carry(client):
    """Every response of the document has the X-Request-ID every answer carries; every
    429 and 503 the Retry-After they carry, every 401 its WWW-Authenticate; each holds for a real answer, as does the
    401 code of a refresh token used twice and a repeated confirm's Idempotent-Replayed."""
    spec = client.get("/api/openapi.json").get_json()

    def resolved(response):
        ref = response.get("$ref")
        return spec["components"]["responses"][ref.rsplit("/", 1)[1]] if ref else response

    responses = [(path, status, resolved(response)) for path, item in spec["paths"].items()
                 for operation in item.values() if isinstance(operation, dict)
                 for status, response in operation.get("responses", {}).items()]
    assert len(responses) > 200
    for path, status, response in responses:
        assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}, (path, status)
        if status in ("429", "503"):
            assert response["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}, (path, status)
        if status == "401":
            assert response["headers"]["WWW-Authenticate"] == {"$ref": "#/components/headers/WWW-Authenticate"}, \
                (path, status)
    assert {"X-Request-ID", "Retry-After", "WWW-Authenticate"} <= spec["components"]["headers"].keys()
    assert "X-Request-ID" in client.get("/api/events").headers
    assert "refresh_token_reused" in spec["paths"]["/api/auth/refresh"]["post"]["responses"]["401"]["description"]
    confirmed_again = spec["paths"]["/api/holds/{hold_id}/confirm"]["post"]["responses"]["200"]
    assert "Idempotent-Replayed" in confirmed_again["headers"]
    for path in ("/api/bookings", "/api/holds/{hold_id}/confirm"):  # a kept refusal, replayed
        assert "Idempotent-Replayed" in spec["paths"][path]["post"]["responses"]["409"]["headers"]


def test_the_document_lists_a_503_for_every_operation_and_every_field_a_response_always_has(client, organizer):
    """Every operation but the document and Swagger UI reads the database, so each may
    answer 503 (tests/test_outage.py shows the answers); and a response's fields that are
    always sent are `required`, so that a client generated from the document does not
    make them optional."""
    spec = client.get("/api/openapi.json").get_json()
    operations = [(path, method, operation) for path, item in spec["paths"].items()
                  for method, operation in item.items() if isinstance(operation, dict) and "responses" in operation]
    for path, method, operation in operations:
        if path in ("/api/openapi.json", "/api/docs"):
            assert "503" not in operation["responses"], path
        else:
            assert operation["responses"]["503"]["headers"]["Retry-After"], (method, path)
    schemas = spec["components"]["schemas"]
    for name, fields in {"Tokens": {"token", "refreshToken", "user"}, "Refreshed": {"token", "refreshToken"},
                         "Registered": {"message", "user"}, "Health": {"status", "database", "jobs"},
                         "AdminStats": {"usersByRole", "ticketsSold", "notificationsByStatus"},
                         "EventStats": {"capacity", "sold", "held", "available", "setAside", "checkedIn", "revenue",
                                        "currency", "byType", "waiting"},
                         "TypeStats": {"ticketTypeId", "name", "sold", "revenue"},
                         "Item": {"ticketTypeId", "count", "price"}, "SeatRef": {"id", "section", "row", "number"}}.items():
        assert fields <= set(schemas[name]["required"]), name
    # and they are sent: a login's answer, an event's figures
    login = client.post("/api/auth/login", json={"email": organizer.email, "password": support.PASSWORD}).get_json()
    assert set(schemas["Tokens"]["required"]) <= login.keys()
    event = client.post("/api/events", headers=organizer.headers, json={
        "title": "Figures", "date": support.in_days(5), "location": "Hall", "totalTickets": 3}).get_json()
    stats = client.get(f"/api/events/{event['id']}/stats", headers=organizer.headers).get_json()
    assert set(schemas["EventStats"]["required"]) <= stats.keys()
    assert set(schemas["TypeStats"]["required"]) <= stats["byType"][0].keys()


def test_validation_errors_are_keyed_by_camelcase_field(client, organizer):
    body = event_body(totalTickets="many", title="", unknownField=1)
    del body["location"]
    errors = assert_error(client.post("/api/events", json=body, headers=organizer.headers), 422, "validation_error")["errors"]
    assert set(errors) == {"totalTickets", "title", "location", "unknownField"}
    assert all(isinstance(messages, list) and messages for messages in errors.values())


# -- hostile ids and query strings --------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("get", "/api/events/99999999999999999999"), ("get", "/api/events/2147483648"), ("get", "/api/events/0"),
    ("get", "/api/events/-1"), ("get", "/api/events/abc"), ("get", "/api/events/1.5"),
    ("patch", "/api/events/99999999999999999999"), ("delete", "/api/events/2147483648"),
    ("get", "/api/events/99999999999999999999/bookings"),
    ("get", "/api/bookings/-1"), ("get", "/api/bookings/99999999999999999999"), ("get", "/api/bookings/abc"),
    ("post", "/api/bookings/99999999999999999999/cancel"), ("post", "/api/bookings/-1/cancel"),
])
def test_ids_that_cannot_exist_are_404(client, organizer, method, path):
    assert_error(getattr(client, method)(path, headers=organizer.headers), 404, "not_found")


def test_an_id_has_one_spelling(client, make_event, organizer):
    """Written with leading zeros, an id that exists is a 404 too: one resource, one URL."""
    event_id = make_event()["id"]
    assert client.get(f"/api/events/{event_id}").status_code == 200
    for path in (f"/api/events/0{event_id}", f"/api/events/00{event_id}/seats", f"/api/events/0{event_id}/stats"):
        assert_error(client.get(path, headers=organizer.headers), 404, "not_found")
    assert_error(client.patch(f"/api/events/0{event_id}", json={"title": "X"}, headers=organizer.headers),
                 404, "not_found")
    assert client.get(f"/api/events/{event_id}").get_json()["title"] != "X"


@pytest.mark.parametrize("query, field", [
    ("page=99999999999999999999", "page"), ("page=0", "page"), ("page=-1", "page"), ("page=x", "page"),
    ("perPage=0", "perPage"), ("perPage=-5", "perPage"),
    ("organizerId=1e99", "organizerId"), ("organizerId=99999999999999999999", "organizerId"),
    ("from=not-a-date", "from"), ("to=2026-13-45", "to"), ("from=9999-12-31T23:59:59-10:00", "from"),
    ("from=0001-01-01T00:00:00%2B14:00", "from"),
    ("status=DELETED", "status"), ("q=" + "x" * 201, "q"),
])
def test_bad_query_arguments_are_422(client, query, field):
    errors = assert_error(client.get(f"/api/events?{query}"), 422, "validation_error")["errors"]
    assert field in errors


@pytest.mark.parametrize("query, found", [
    ("page=2147483647", 0), ("perPage=1000", 1), ("perPage=99999999999999999999", 1),
    ("from=0001-01-01T00:00:00Z", 1), ("to=9999-12-31T23:59:59Z", 1), ("organizerId=2147483647", 0),
    ("q=conf", 1), ("q=%25", 0), ("q=_", 0), ("q=%5C", 0), ("q=%ED%A0%80", 0),
])
def test_extreme_but_valid_queries_are_answered(client, make_event, query, found):
    make_event()
    response = client.get(f"/api/events?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert len(response.get_json()) == found


def test_huge_page_of_my_bookings_is_422(client, customer):
    response = client.get("/api/bookings/my-bookings?page=99999999999999999999", headers=customer.headers)
    assert_error(response, 422, "validation_error")


# -- strings a database cannot store --------------------------------------------------------


@pytest.mark.parametrize("raw", [r'"a\u0000b"', r'"\ud800"', r'"x\udfff"'])
def test_nul_and_lone_surrogates_in_bodies_are_refused(client, organizer, raw):
    # Sent as raw JSON text: the escapes reach the server, which decodes them itself.
    body = json.dumps(event_body()).replace('"Tech Conf"', raw)
    response = client.post("/api/events", data=body, content_type="application/json", headers=organizer.headers)
    assert "title" in assert_error(response, 422, "validation_error")["errors"]

    # Credentials no account can have are wrong credentials like any others.
    body = '{"email": %s, "password": %s}' % (raw, raw)
    assert_error(client.post(LOGIN, data=body, content_type="application/json"), 401, "unauthorized")

    body = '{"email": "a@example.com", "password": "%s", "role": "CUSTOMER", "name": %s}' % (PASSWORD, raw)
    response = client.post("/api/auth/register", data=body, content_type="application/json")
    assert "name" in assert_error(response, 422, "validation_error")["errors"]


def test_nul_in_query_is_422(client):
    assert "q" in assert_error(client.get("/api/events?q=a%00b"), 422, "validation_error")["errors"]


# -- request ids and server faults ----------------------------------------------------------


@pytest.mark.parametrize("method, path", [("get", "/api/health"), ("get", "/api/nope"), ("get", "/api/auth/me"),
                                          ("put", LOGIN), ("post", LOGIN)])
def test_every_response_has_a_request_id(client, method, path):
    assert getattr(client, method)(path).headers["X-Request-ID"]


@pytest.mark.parametrize("sent", ["req-42.abc:DEF_1", "b64+/id==", "Root=1-5759e988-bd862e3f", "a@host"])
def test_a_safe_request_id_is_echoed(client, sent):
    assert client.get("/api/health", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent
    assert client.get("/api/nope", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["a b\r\n", "a b", "<script>", "x" * 129, "é", "a\nX-Injected: 1"])
def test_an_unsafe_request_id_is_replaced(client, sent):
    response = client.get("/api/health", environ_overrides={"HTTP_X_REQUEST_ID": sent})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] not in ("", sent)
    assert "X-Injected" not in response.headers


@pytest.mark.own_app
def test_unexpected_exception_is_a_bare_500(app, client):
    def boom():
        raise RuntimeError("secret-detail from /srv/eventbook/db.py")

    app.add_url_rule("/api/test-boom", "test_boom", boom)
    response = client.get("/api/test-boom", headers={"X-Request-ID": "boom-123"})
    body = assert_error(response, 500, "internal_error")
    assert body["errors"] == {}
    assert "boom-123" in body["message"]
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "secret-detail", "/srv/", ".py"):
        assert leak not in text
    assert response.headers["X-Request-ID"] == "boom-123"


@pytest.mark.postgresql_only("SQLite has no server connection to drop")
def test_a_connection_dropped_after_the_answer_was_made_does_not_replace_it(database_url, make_event):
    """PostgreSQL drops the request's connection (a restart, a failover, an idle timeout)
    after the view has answered, while its transaction is still open: the client gets
    the answer, not a 500 from ending the session on a dead connection."""
    import sqlalchemy as sa

    from eventbook import create_app
    from eventbook.extensions import db

    event = make_event()
    app = create_app(support.test_config(database_url, NOTIFY_AUTOSTART=False))
    # Auto-commit: pg_stat_activity is read afresh by each statement, not once a transaction.
    killer = sa.create_engine(support._normalized(database_url), isolation_level="AUTOCOMMIT")

    @app.after_request
    def drop_the_connection(response):
        if flask.request.path == "/api/events":
            pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))  # the session's transaction is open
            with killer.connect() as connection:
                connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                support.wait_until(lambda: not connection.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar(), 10,
                    message="the backend to end")
        return response

    client = app.test_client()
    try:
        response = client.get("/api/events")
        after = client.get(f"/api/events/{event['id']}")  # the next request gets a new connection
    finally:
        killer.dispose()
        with app.app_context():
            db.engine.dispose()
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert event["id"] in [found["id"] for found in response.get_json()]
    assert after.status_code == 200


@pytest.mark.own_app
def test_unexpected_exception_without_a_sent_request_id(app, client):
    def boom():
        raise RuntimeError("secret-detail")

    app.add_url_rule("/api/test-boom", "test_boom", boom)
    response = client.get("/api/test-boom")
    assert response.headers["X-Request-ID"] in assert_error(response, 500, "internal_error")["message"]


# -- health ---------------------------------------------------------------------------


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert isinstance(body["jobs"], dict) and body["jobs"]
    assert all(isinstance(value, int) for value in body["jobs"].values())


@pytest.mark.postgresql_only("SQLite's lock is its busy timeout")
def test_health_says_busy_not_unreachable_while_a_table_it_counts_is_locked(app, client, database_url):
    """A VACUUM FULL or a migration locks the notifications table: the database is up and
    every other request is served, so a platform's health check must not take the
    instance out of service, and it says so within the check's time (Render's: 5 s),
    whatever DB_LOCK_TIMEOUT_SECONDS (5) is."""
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as locking:
            locking.execute(sa.text("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            response = client.get("/api/health")
            waited = time.monotonic() - started
            listed = client.get("/api/events")
            locking.rollback()
    finally:
        engine.dispose()
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "busy", body
    # this process's figures still answer; the two counted in the locked table are unknown
    jobs = body["jobs"]
    assert jobs["pending"] is None and jobs["failed"] is None and isinstance(jobs["inFlight"], int), body
    assert (jobs["workers"], jobs["queueCapacity"]) == (app.config["NOTIFY_WORKERS"], app.config["NOTIFY_QUEUE_SIZE"])
    assert waited < 3
    assert listed.status_code == 200
    assert client.get("/api/health").get_json()["database"] == "ok"  # the lock gone
