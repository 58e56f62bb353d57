"""Logs: in production one JSON object per line (the access line of every request, with
its request id, method, path, status, duration and user id; the notification
deliveries with the notification id); in development plain text.

The production case runs the real web command (gunicorn, LOG_FORMAT=json) and reads
what it wrote to stderr, as a platform's log collector would."""

import contextlib
import json
import logging
import uuid
from datetime import datetime

import pytest
from sqlalchemy import exc as sa_exc

from eventbook import create_app, logs
from tests import support
from tests.support import in_days

ACCESS_FIELDS = {"time", "level", "request_id", "method", "path", "status", "duration_ms", "user_id"}


def event_body(total=10):
    return {"title": "Log Conf", "description": "Logs", "date": in_days(20), "location": "Hall",
            "totalTickets": total}


def json_lines(path):
    """(objects, other lines) of a log file."""
    objects, others = [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            others.append(line)
            continue
        (objects if isinstance(value, dict) else others).append(value if isinstance(value, dict) else line)
    return objects, others


@pytest.fixture
def sqlite_url(tmp_path):
    """Logging does not depend on the backend: one migrated SQLite file, run once."""
    return support.create_database("sqlite", tmp_path)


@pytest.mark.slow
def test_production_logs_are_json_lines_with_the_request_fields(sqlite_url, tmp_path):
    log_path = tmp_path / "server.log"
    server = support.Server(sqlite_url, workers=1, threads=4, log_path=log_path,
                            env={"LOG_FORMAT": "json", "LOG_LEVEL": "info"}).start()
    try:
        api = support.Api(server.url)
        ids = {name: f"log-{name}-{uuid.uuid4().hex[:8]}" for name in ("health", "event", "book", "missing", "bad")}
        assert api.http.get("/api/health", headers={"X-Request-ID": ids["health"]}).status_code == 200
        organizer = api.user("ORGANIZER")
        customer = api.user("CUSTOMER")
        event = api.http.post("/api/events", json=event_body(),
                              headers={**organizer["headers"], "X-Request-ID": ids["event"]})
        assert event.status_code == 201, event.text
        booking = api.http.post("/api/bookings", json={"eventId": event.json()["id"], "ticketsCount": 2},
                                headers={**customer["headers"], "X-Request-ID": ids["book"]})
        assert booking.status_code == 201, booking.text
        assert api.http.get("/api/events/999999", headers={"X-Request-ID": ids["missing"]}).status_code == 404
        bad = api.http.post("/api/bookings", json={"eventId": "x"}, headers={**customer["headers"],
                                                                            "X-Request-ID": ids["bad"]})
        assert bad.status_code == 422

        def delivered():
            notes = api.http.get("/api/notifications", headers=customer["headers"]).json()
            return [n for n in notes if n["kind"] == "BOOKING_CONFIRMED" and n["status"] == "SENT"]

        note = support.wait_until(delivered, 20, message="the BOOKING_CONFIRMED notification to be SENT")[0]
        # the delivery line is written just before the row is marked SENT
        support.wait_until(lambda: any(o.get("notification_id") == note["id"] for o in json_lines(log_path)[0]),
                           10, message="the delivery's log line")
    finally:
        assert server.stop() == 0

    objects, others = json_lines(log_path)
    app_lines = [o for o in objects if str(o.get("logger", "")).startswith("eventbook")]
    assert app_lines, log_path.read_text()
    for line in app_lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line

    access = [o for o in app_lines if o.get("logger") == "eventbook.access"]
    for line in access:
        assert ACCESS_FIELDS <= set(line), line
        assert isinstance(line["status"], int) and isinstance(line["duration_ms"], (int, float))
        assert line["duration_ms"] >= 0 and line["level"] == "INFO"
        datetime.strptime(line["time"][:19], "%Y-%m-%d %H:%M:%S")  # a timestamp

    def the_line(request_id):
        found = [o for o in access if o["request_id"] == request_id]
        assert len(found) == 1, f"{len(found)} access lines for {request_id}: {found}"
        return found[0]

    health = the_line(ids["health"])
    assert (health["method"], health["path"], health["status"], health["user_id"]) == ("GET", "/api/health", 200, None)
    booked = the_line(ids["book"])
    assert (booked["method"], booked["path"], booked["status"]) == ("POST", "/api/bookings", 201)
    assert booked["user_id"] == customer["id"]
    created = the_line(ids["event"])
    assert (created["path"], created["status"], created["user_id"]) == ("/api/events", 201, organizer["id"])
    missing = the_line(ids["missing"])
    assert (missing["path"], missing["status"], missing["user_id"]) == ("/api/events/999999", 404, None)
    invalid = the_line(ids["bad"])
    assert (invalid["status"], invalid["user_id"]) == (422, customer["id"])
    # one line per request: every access line has its own request id
    assert len({o["request_id"] for o in access}) == len(access)

    deliveries = [o for o in app_lines if o.get("notification_id") == note["id"]]
    assert len(deliveries) == 1, deliveries
    assert deliveries[0]["level"] == "INFO" and deliveries[0]["logger"] == "eventbook.email"
    assert customer["email"] in deliveries[0]["message"]

    # production logs are JSON, every line (gunicorn's own lines included)
    assert others == [], f"{len(others)} lines that are not JSON objects, e.g. {others[:3]}"


@contextlib.contextmanager
def in_process_app(tmp_path, **overrides):
    """create_app on a fresh SQLite file with these config overrides; created inside
    the test so that its log handler writes to the captured stderr."""
    app = create_app(support.test_config(support.create_database("sqlite", tmp_path), **overrides))
    try:
        yield app
    finally:
        support.stop_background(app)


@pytest.mark.parametrize("overrides", [{"LOG_FORMAT": "text"}, {"LOG_FORMAT": "json", "DEBUG": True}],
                         ids=["LOG_FORMAT=text", "debug"])
def test_development_logs_are_plain_text(tmp_path, capfd, overrides):
    with in_process_app(tmp_path, **overrides) as app:
        client = app.test_client()
        assert client.get("/api/health", headers={"X-Request-ID": "text-mode-1"}).status_code == 200
        assert client.get("/api/events/424242").status_code == 404
        err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "eventbook.access" in line]
    assert len(lines) == 2, err
    for line in lines:
        with pytest.raises(ValueError):
            json.loads(line)
    assert "[text-mode-1] eventbook.access: GET /api/health 200" in lines[0]
    assert " INFO " in lines[0]
    assert "GET /api/events/424242 404" in lines[1]


def test_json_mode_in_process_writes_the_user_id(tmp_path, capfd):
    """The same fields without gunicorn: create_app with LOG_FORMAT=json."""
    with in_process_app(tmp_path, LOG_FORMAT="json") as app:
        client = app.test_client()
        body = {"email": "logger@example.com", "password": support.PASSWORD, "role": "CUSTOMER"}
        assert client.post("/api/auth/register", json=body).status_code == 201
        login = client.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
        token, user_id = login.get_json()["token"], login.get_json()["user"]["id"]
        capfd.readouterr()
        mine = client.get("/api/notifications", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "me-1"})
        assert mine.status_code == 200
        err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "eventbook.access"]
    assert len(access) == 1, err
    assert ACCESS_FIELDS <= set(access[0])
    assert access[0]["request_id"] == "me-1" and access[0]["user_id"] == user_id
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/api/notifications", 200)


@pytest.mark.parametrize("failure, reason", [
    (sa_exc.OperationalError("SELECT 1", {}, Exception("connection to server at \"127.0.0.1\" failed\nmore")),
     'connection to server at "127.0.0.1" failed'),
    (sa_exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")), "connection already closed"),
    (sa_exc.TimeoutError("QueuePool limit of size 5 overflow 0 reached, connection timed out"),
     "QueuePool limit of size 5 overflow 0 reached, connection timed out"),
], ids=["operational", "interface", "pool timeout"])
def test_a_background_round_the_database_fails_logs_one_line(caplog, failure, reason):
    """The hold sweeper's and the notification sweeper's rounds, when the database is down:
    each kind of failure that makes a request answer 503 is one line with its reason (a
    connection PostgreSQL closed is an InterfaceError once psycopg2 knows it: CI saw a
    traceback for it), not a traceback every few seconds."""
    log = logging.getLogger("eventbook.test.round")
    with caplog.at_level(logging.WARNING, logger=log.name):
        try:
            raise failure
        except Exception:  # noqa: BLE001 - as the loops do
            logs.round_failed(log, "hold sweep")
    [record] = caplog.records
    assert record.exc_info is None
    assert record.getMessage() == f"hold sweep failed, the next round tries again: {reason}"


def test_a_background_round_that_fails_otherwise_logs_the_traceback(caplog):
    log = logging.getLogger("eventbook.test.round")
    with caplog.at_level(logging.WARNING, logger=log.name):
        try:
            raise KeyError("a bug")
        except KeyError:
            logs.round_failed(log, "notification sweep")
    [record] = caplog.records
    assert record.getMessage() == "notification sweep failed" and record.exc_info[0] is KeyError
