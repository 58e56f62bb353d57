"""Headers, CORS, resource limits (OWASP API4, API8) and secrets that must never leak."""

import io
import json
import logging
import re

import pytest
import sqlalchemy as sa

from eventbook.extensions import db
from tests import support
from tests.support import in_days

API_PATHS = ["/api/events", "/api/health", "/api/nope", "/api/auth/me", "/api/openapi.json"]


def assert_envelope(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["message"], str) and isinstance(body["errors"], dict)
    return body


# -- security headers ---------------------------------------------------------------------


@pytest.mark.parametrize("path", API_PATHS)
def test_security_headers_on_api_responses(client, path):
    response = client.get(path)
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("no-referrer", "strict-origin-when-cross-origin", "same-origin")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "Strict-Transport-Security" not in headers  # plain http


def test_security_headers_on_errors_and_writes(client, organizer):
    responses = [
        client.post("/api/events", json={"title": "x"}, headers=organizer.headers),  # 422
        client.delete("/api/events"),  # 405
        client.post("/api/auth/login", data="not json", content_type="text/plain"),  # 415
        client.post(
            "/api/events", json={"title": "Ok", "date": in_days(3), "location": "L", "totalTickets": 1}, headers=organizer.headers
        ),  # 201
    ]
    assert [r.status_code for r in responses] == [422, 405, 415, 201]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers.get("X-Request-ID")


def test_swagger_ui_is_served_locally_under_its_own_csp(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)

    csp = dict(
        (directive.split()[0], directive.split()[1:])
        for directive in (part.strip() for part in page.headers["Content-Security-Policy"].split(";"))
        if directive
    )
    for directive in ("script-src", "style-src"):
        sources = csp.get(directive) or csp.get("default-src")
        assert "'self'" in sources, csp
        assert not any(source.startswith(("http:", "https:", "*")) or source == "*" for source in sources), csp
    assert csp.get("frame-ancestors") == ["'none'"]

    # no CDN: nothing in the page is fetched from another host
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\s\"'<>]+", html)
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    scripts = [url for url in assets if url.endswith(".js")]
    styles = [url for url in assets if url.endswith(".css")]
    assert scripts and styles, assets
    for url in scripts + styles:
        assert url.startswith("/api/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 1000, url
        expected = "javascript" if url.endswith(".js") else "css"
        assert expected in asset.mimetype, (url, asset.mimetype)
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    # the page's spec URL is served
    spec_url = re.search(r"""url:\s*["']([^"']+)["']""", html).group(1)
    assert client.get(spec_url).status_code == 200


def test_docs_assets_cannot_escape_their_folder(client):
    for path in [
        "/api/docs/assets/../../config.py",
        "/api/docs/assets/%2e%2e/%2e%2e/config.py",
        "/api/docs/assets/..%2f..%2fconfig.py",
        "/api/docs/assets/nope.js",
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["code"] == "not_found"


def test_hsts_only_over_https(client):
    secure = client.get("/api/events", base_url="https://localhost")
    hsts = secure.headers.get("Strict-Transport-Security", "")
    match = re.search(r"max-age=(\d+)", hsts)
    assert match and int(match.group(1)) >= 15552000, hsts  # at least 180 days
    assert "Strict-Transport-Security" not in client.get("/api/events").headers


# -- CORS ---------------------------------------------------------------------------------


def test_cors_is_off_by_default(client):
    plain = client.get("/api/events", headers={"Origin": "https://app.example"})
    assert plain.status_code == 200
    assert "Access-Control-Allow-Origin" not in plain.headers
    preflight = client.options(
        "/api/bookings",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Methods" not in preflight.headers


@pytest.mark.parametrize("config_overrides", [{"CORS_ORIGINS": ["https://app.example"]},
                                              {"CORS_ORIGINS": ["https://app.example", "https://other.example"]}],
                         ids=["cors", "cors-two-origins"])
def test_cors_allows_the_configured_origins_only(client):
    allowed = client.get("/api/events", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    # a cache must not hand this answer to another origin, nor another origin's to this one
    for origin in ("https://app.example", "https://evil.example", None):
        for path in ("/api/events", "/api/health", "/api/nowhere"):
            answer = client.get(path, headers={"Origin": origin} if origin else {})
            assert ",".join(answer.headers.getlist("Vary")).count("Origin") == 1, (origin, path)
    exposed = {name.strip() for name in allowed.headers.get("Access-Control-Expose-Headers", "").split(",")}
    assert {"X-Request-ID", "X-Total-Count", "Link", "Retry-After", "ETag", "Idempotent-Replayed"} <= exposed

    preflight = client.options(
        "/api/bookings",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in preflight.headers.get("Access-Control-Allow-Methods", "")
    assert "authorization" in preflight.headers.get("Access-Control-Allow-Headers", "").lower()

    for origin in ("https://evil.example", "https://app.example.evil.com", "http://app.example", "null"):
        refused = client.get("/api/events", headers={"Origin": origin})
        assert refused.headers.get("Access-Control-Allow-Origin") is None, origin
        preflight = client.options("/api/bookings", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert preflight.headers.get("Access-Control-Allow-Origin") is None, origin
    assert allowed.headers.get("Access-Control-Allow-Origin") != "*"


# -- request id ---------------------------------------------------------------------------


def test_every_response_has_a_request_id(client, customer, organizer, monkeypatch):
    import eventbook.events.search

    monkeypatch.setattr(eventbook.events.service, "get", lambda event_id: 1 / 0)
    responses = {
        200: client.get("/api/events"),
        201: client.post("/api/auth/register", json={"email": "rid@example.com", "password": support.PASSWORD, "role": "CUSTOMER"}),
        204: client.post("/api/auth/logout", headers=organizer.headers),
        400: client.post("/api/auth/login", data="{bad json", content_type="application/json"),
        401: client.get("/api/auth/me"),
        403: client.post("/api/events", json={}, headers=customer.headers),
        404: client.get("/api/nowhere"),
        405: client.put("/api/events"),
        413: client.post("/api/auth/login", data="x" * (70 * 1024), content_type="application/json"),
        415: client.post("/api/auth/login", data="email=a", content_type="application/x-www-form-urlencoded"),
        422: client.post("/api/auth/login", json={}),
        500: client.get("/api/events/1"),
    }
    seen = set()
    for status, response in responses.items():
        assert response.status_code == status, (status, response.get_data(as_text=True)[:300])
        request_id = response.headers.get("X-Request-ID")
        assert request_id and re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", request_id), (status, request_id)
        seen.add(request_id)
    assert len(seen) == len(responses)  # one per request


def test_request_id_echoes_a_safe_client_id_and_replaces_others(client):
    assert client.get("/api/events", headers={"X-Request-ID": "abc-123.XYZ:9"}).headers["X-Request-ID"] == "abc-123.XYZ:9"
    for unsafe in ("has spaces", "<script>alert(1)</script>", "x" * 500, "a;b", "\u00e9t\u00e9"):
        returned = client.get("/api/events", headers={"X-Request-ID": unsafe.encode("utf-8").decode("latin-1")}).headers[
            "X-Request-ID"
        ]
        assert returned != unsafe
        assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", returned)


# -- resource limits (API4) ---------------------------------------------------------------


def test_body_over_64_kib_is_413(client, organizer):
    big = {"title": "Big", "description": "x" * (64 * 1024), "date": in_days(5), "location": "L", "totalTickets": 1}
    response = client.post("/api/events", json=big, headers=organizer.headers)
    assert_envelope(response, 413, "payload_too_large")
    # just under the limit reaches validation (the description is too long for an event)
    near = dict(big, description="x" * (60 * 1024))
    assert client.post("/api/events", json=near, headers=organizer.headers).status_code == 422
    assert client.get("/api/events").get_json() == []


def test_chunked_body_over_the_limit_is_413(client):
    """A body without Content-Length (chunked) is held to the same limit when it is read."""
    big = json.dumps({"email": "a@b.c", "password": "x" * (80 * 1024)}).encode()
    response = client.post(
        "/api/auth/login",
        input_stream=io.BytesIO(big),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_envelope(response, 413, "payload_too_large")
    # a valid object padded past the limit must not be cut down to the object and accepted
    padded = json.dumps({"email": "a@b.c", "password": "12345678"}).encode() + b" " * (70 * 1024)
    response = client.post(
        "/api/auth/login",
        input_stream=io.BytesIO(padded),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_envelope(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "content_type, data",
    [
        ("text/plain", '{"email": "a@b.c", "password": "12345678"}'),
        ("application/x-www-form-urlencoded", "email=a%40b.c&password=12345678"),
        ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="email"\r\n\r\na\r\n--x--\r\n'),
        ("application/xml", "<login/>"),
    ],
)
def test_non_json_body_is_415(client, content_type, data):
    response = client.post("/api/auth/login", data=data, content_type=content_type)
    assert_envelope(response, 415, "unsupported_media_type")


def test_malformed_json_is_400(client):
    assert_envelope(client.post("/api/auth/login", data='{"email": ', content_type="application/json"), 400, "bad_request")
    assert_envelope(client.post("/api/auth/login", data="[1, 2]", content_type="application/json"), 400, "bad_request")


def test_per_page_is_capped_at_100(app, client, organizer):
    from eventbook.models import Event, EventStatus, utcnow

    now = utcnow()
    with app.app_context():
        for n in range(105):
            db.session.add(
                Event(
                    title=f"E{n}",
                    description=None,
                    location="L",
                    date=now.replace(year=now.year + 1),
                    total_tickets=10,
                    available_tickets=10,
                    status=EventStatus.SCHEDULED,
                    organizer_id=organizer.id,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.session.commit()
    response = client.get("/api/events?perPage=1000")
    assert response.status_code == 200
    assert len(response.get_json()) == 100
    assert response.headers["X-Total-Count"] == "105"
    assert 'rel="next"' in response.headers["Link"]
    assert len(client.get("/api/events?perPage=1000&page=2").get_json()) == 5
    for bad in ("0", "-1", "abc"):
        assert_envelope(client.get(f"/api/events?perPage={bad}"), 422, "validation_error")


@pytest.mark.parametrize("count, status", [(0, 422), (-1, 422), (11, 422), (1000, 422), (10, 201), (1, 201)])
def test_tickets_per_booking_are_capped(client, customer, make_event, count, status):
    event = make_event(totalTickets=100)
    response = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": count}, headers=customer.headers)
    assert response.status_code == status, response.get_json()
    if status == 422:
        assert "ticketsCount" in response.get_json()["errors"]
        assert client.get(f"/api/events/{event['id']}").get_json()["availableTickets"] == 100


@pytest.mark.parametrize("config_overrides", [{"MAX_TICKETS_PER_BOOKING": 4}], ids=["max4"])
def test_tickets_cap_is_configurable(client, customer, make_event):
    event = make_event(totalTickets=100)
    assert client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 5}, headers=customer.headers).status_code == 422
    assert client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 4}, headers=customer.headers).status_code == 201


@pytest.mark.parametrize("config_overrides", [{"MAX_TICKETS_PER_BOOKING": 12}], ids=["max12"])
def test_the_seats_an_order_takes_follow_the_tickets_cap(client, organizer, customer, make_event):
    """Seats are tickets: a server that lets a booking hold 12 lets it take 12 seats."""
    event = make_event(seating="RESERVED", totalTickets=20)
    map_ = {"sections": [{"name": "Hall", "ticketTypeId": event["ticketTypes"][0]["id"],
                          "rows": [{"label": "A", "from": 1, "to": 20}]}]}
    assert client.put(f"/api/events/{event['id']}/seats", json=map_, headers=organizer.headers).status_code == 200
    ids = [seat["id"] for seat in client.get(f"/api/events/{event['id']}/seats").get_json()]
    too_many = client.post("/api/bookings", json={"eventId": event["id"], "seatIds": ids[:13]}, headers=customer.headers)
    assert_envelope(too_many, 422, "validation_error")
    assert "seatIds" in too_many.get_json()["errors"]
    booked = client.post("/api/bookings", json={"eventId": event["id"], "seatIds": ids[:12]}, headers=customer.headers)
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["ticketsCount"] == 12
    # and the served document says so: this server's limits, not the default's
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    for name in ("Order", "HoldCreate"):
        order = schemas[name]["properties"]
        assert order["ticketsCount"]["maximum"] == order["seatIds"]["maxItems"] == order["items"]["maxItems"] == 12
    assert schemas["Join"]["properties"]["ticketsCount"]["maximum"] == 12
    assert schemas["OrderItem"]["properties"]["count"]["maximum"] == 12  # one item may hold them all


def test_event_capacity_is_capped(client, organizer):
    body = {"title": "Huge", "date": in_days(5), "location": "L", "totalTickets": 1_000_001}
    response = client.post("/api/events", json=body, headers=organizer.headers)
    assert_envelope(response, 422, "validation_error")
    assert "totalTickets" in response.get_json()["errors"]


# -- nothing secret leaks -----------------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"LOG_LEVEL": "debug"}], ids=["debug-logs"])
def test_no_secret_in_any_log_record_or_response(app, client, caplog, wait_for_notifications):
    # Everything at DEBUG, SQLAlchemy's statement log included (it defaults itself to WARNING).
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    app_logger = logging.getLogger("eventbook")  # does not propagate: listen to it directly
    app_logger.addHandler(caplog.handler)
    responses = []

    def call(method, path, **kwargs):
        response = client.open(path, method=method, **kwargs)
        responses.append((method, path, response))
        return response

    try:
        password = "S3cret-Horse-Battery-Staple"
        wrong_password = "Wr0ng-Guess-Of-A-Password"
        customer_email, organizer_email = "leak-customer@example.com", "leak-organizer@example.com"
        for email, role in ((customer_email, "CUSTOMER"), (organizer_email, "ORGANIZER")):
            assert call("POST", "/api/auth/register", json={"email": email, "password": password, "role": role}).status_code == 201
        assert call("POST", "/api/auth/login", json={"email": customer_email, "password": wrong_password}).status_code == 401
        assert call("POST", "/api/auth/login", json={"email": "nobody@example.com", "password": password}).status_code == 401
        logged_in = call("POST", "/api/auth/login", json={"email": customer_email, "password": password}).get_json()
        organizer = call("POST", "/api/auth/login", json={"email": organizer_email, "password": password}).get_json()
        token, refresh_token = logged_in["token"], logged_in["refreshToken"]
        auth = {"Authorization": f"Bearer {token}"}
        refreshed = call("POST", "/api/auth/refresh", headers={"Authorization": f"Bearer {refresh_token}"})
        assert refreshed.status_code == 200
        new_token = refreshed.get_json()["token"]
        assert call("GET", "/api/auth/me", headers=auth).status_code == 200
        event = call(
            "POST",
            "/api/events",
            headers={"Authorization": f"Bearer {organizer['token']}"},
            json={"title": "Leaky", "date": in_days(9), "location": "L", "totalTickets": 5},
        ).get_json()
        booking = call(
            "POST",
            "/api/bookings",
            headers={**auth, "Idempotency-Key": "leak-key-1"},
            json={"eventId": event["id"], "ticketsCount": 2},
        )
        assert booking.status_code == 201
        assert call("POST", f"/api/bookings/{booking.get_json()['id']}/cancel", headers=auth).status_code == 200
        assert call("GET", "/api/notifications", headers=auth).status_code == 200
        # a bad and a malformed token are logged as such, never echoed
        assert call("GET", "/api/auth/me", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
        assert call("POST", "/api/auth/logout", headers=auth, json={"refreshToken": refresh_token}).status_code == 204
        assert call("GET", "/api/auth/me", headers=auth).status_code == 401  # revoked
        assert (
            call("POST", "/api/auth/refresh", headers={"Authorization": f"Bearer {refresh_token}"}).status_code == 401
        )  # revoked too
        # logout revoked every token of that login (new_token too): a new login waits for the emails
        again = call("POST", "/api/auth/login", json={"email": customer_email, "password": password}).get_json()
        customer_actor = type("A", (), {"headers": {"Authorization": f"Bearer {again['token']}"}, "email": customer_email})
        wait_for_notifications(customer_actor, 2)
    finally:
        app_logger.removeHandler(caplog.handler)

    with app.app_context():
        hashes = db.session.scalars(sa.text("SELECT password_hash FROM users")).all()
    assert hashes and all(h.startswith("$2") for h in hashes)
    secrets = {
        "password": password,
        "wrong password": wrong_password,
        "access token": token,
        "refresh token": refresh_token,
        "refreshed token": new_token,
        "organizer token": organizer["token"],
        "jwt secret": app.config["JWT_SECRET_KEY"],
        "bcrypt hash marker": "$2b$",
        **{f"hash {n}": h for n, h in enumerate(hashes)},
        # the signature part alone is enough to matter
        "token signature": token.rsplit(".", 1)[-1],
    }

    formatter = logging.Formatter()
    records = caplog.records
    assert any(r.name.startswith("eventbook") for r in records), "the app's logs were not captured"
    for record in records:
        text = " ".join(
            [
                record.getMessage(),
                repr(record.__dict__),
                formatter.formatException(record.exc_info) if record.exc_info else "",
            ]
        )
        for name, secret in secrets.items():
            assert secret not in text, f"{name} in log record {record.name}: {record.getMessage()[:300]}"

    issued = {token, refresh_token, new_token, organizer["token"], organizer["refreshToken"]}
    for method, path, response in responses:
        body = response.get_data(as_text=True)
        for name in ("password", "wrong password", "bcrypt hash marker", "jwt secret"):
            assert secrets[name] not in body, f"{name} in the response to {method} {path}"
        for h in hashes:
            assert h not in body, f"a password hash in the response to {method} {path}"
        if path not in ("/api/auth/login", "/api/auth/refresh"):
            for t in issued:
                assert t not in body, f"a token in the response to {method} {path}"
        payload = response.get_json(silent=True)
        if isinstance(payload, dict) and isinstance(payload.get("user"), dict):
            assert set(payload["user"]) == {"id", "email", "name", "role", "createdAt"}, path


def test_a_500_body_carries_only_the_request_id(client, caplog, monkeypatch):
    import eventbook.events.search

    def explode(args):
        raise RuntimeError("boom: postgresql://admin:hunter2@db.internal/prod SELECT * FROM users")

    monkeypatch.setattr(eventbook.events.search, "browse", explode)
    app_logger = logging.getLogger("eventbook")
    app_logger.addHandler(caplog.handler)
    try:
        response = client.get("/api/events", headers={"X-Request-ID": "trace-500-abc"})
    finally:
        app_logger.removeHandler(caplog.handler)
    body = assert_envelope(response, 500, "internal_error")
    assert set(body) == {"status", "code", "message", "errors"}
    assert body["errors"] == {}
    assert response.headers["X-Request-ID"] == "trace-500-abc"
    assert "trace-500-abc" in body["message"]
    text = response.get_data(as_text=True)
    for leak in ("hunter2", "postgresql", "RuntimeError", "Traceback", "boom", "SELECT", "explode", ".py"):
        assert leak not in text, leak
    # ...and the details are in the log, under the same request id
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged and any("trace-500-abc" in r.getMessage() or getattr(r, "request_id", "") == "trace-500-abc" for r in logged)


@pytest.mark.parametrize(
    "path, method, status",
    [("/api/nope", "GET", 404), ("/api/events", "DELETE", 405), ("/nope", "GET", 404), ("/", "POST", 405),
     ("/api/events/1/bookings", "POST", 405)],
)
def test_routing_errors_are_json_without_internals(client, path, method, status):
    response = client.open(path, method=method)
    assert response.mimetype == "application/json"
    assert response.status_code == status
    if status == 405:
        assert response.headers.get("Allow")
    assert "<html" not in response.get_data(as_text=True).lower()


# -- what schemathesis found: schema-valid requests must not be refused ------------------
# (.ci/schemathesis.sh; each of these was a finding, see the report in the issue)


def test_organizer_filter_takes_a_query_string_integer(client, organizer, make_event):
    event = make_event(owner=organizer)
    response = client.get(f"/api/events?organizerId={organizer.id}")
    assert response.status_code == 200, response.get_json()
    assert [e["id"] for e in response.get_json()] == [event["id"]]


@pytest.mark.parametrize("field", ["email", "password"])
def test_login_with_a_nul_character_is_just_wrong_credentials(client, customer, field):
    body = {"email": customer.email, "password": support.PASSWORD}
    body[field] = body[field][:3] + "\x00" + body[field][3:]
    assert_envelope(client.post("/api/auth/login", json=body), 401, "unauthorized")


@pytest.mark.parametrize("schema, field", [("Register", "password"), ("PasswordChange", "newPassword")])
def test_documented_lengths_match_the_enforced_ones(client, schema, field):
    spec = client.get("/api/openapi.json").get_json()
    password = spec["components"]["schemas"][schema]["properties"][field]
    # 8 to 72 bytes in NFKC form; in characters (JSON Schema's count), what those bytes allow: 2 to 72
    assert (password.get("x-minBytes"), password.get("x-maxBytes")) == (8, 72), password
    assert password.get("x-unicodeNormalization") == "NFKC", password
    assert password.get("minLength") == 2 and password.get("maxLength") == 72, password
    header = next(p for p in spec["paths"]["/api/bookings"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert header["schema"].get("minLength") == 1 and header["schema"].get("maxLength") == 255, header


def test_logout_with_a_refresh_token_that_is_not_the_callers(client, make_user):
    alice, bob = make_user("CUSTOMER"), make_user("CUSTOMER")
    for foreign in ("not-a-token", bob.refresh_token, alice.token):
        response = client.post("/api/auth/logout", headers=alice.headers, json={"refreshToken": foreign})
        assert_envelope(response, 401, "unauthorized")  # nothing revoked: alice is still logged in
        assert client.get("/api/auth/me", headers=alice.headers).status_code == 200
    # bob's refresh token was never revoked by alice
    assert client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {bob.refresh_token}"}).status_code == 200


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_missing_update_body_matches_the_document(client, organizer, make_event, method):
    event = make_event()
    spec = client.get("/api/openapi.json").get_json()
    required = spec["paths"]["/api/events/{event_id}"][method.lower()]["requestBody"].get("required", False)
    response = client.open(f"/api/events/{event['id']}", method=method, headers=organizer.headers)
    if required:
        assert response.status_code in (400, 415, 422), response.get_json()
    else:
        assert response.status_code == 200
        assert response.get_json() == event


def test_an_overlong_url_is_refused_in_the_envelope(client, organizer, make_event):
    event = make_event()
    pages = "&".join(f"page={n}" for n in range(1000))
    response = client.get(f"/api/events/{event['id']}/bookings?{pages}", headers=organizer.headers)
    assert response.status_code == 414
    assert response.mimetype == "application/json"
    assert response.get_json()["status"] == 414
    assert response.headers.get("X-Request-ID")
