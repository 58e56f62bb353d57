"""Scale-out as documented: several app instances (each a gunicorn with its worker
processes and notification pools) on one PostgreSQL database, rate-limit counters in
Redis. Customers booking through both at once never oversell, and every confirmation
email reaches the mail server exactly once."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from config import normalize_database_url
from tests import support
from tests.smtp import SMTPServer
from tests.support import in_days

pytestmark = pytest.mark.slow

CUSTOMERS = 60
TICKETS = 40
REGISTER_LIMIT = 500


@pytest.fixture
def redis_store(redis_url):
    """Database 14 of the session's own Redis server, flushed before and after."""
    import redis

    url = f"{redis_url}/14"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.mark.postgresql_only("scale-out is several instances on one PostgreSQL database; SQLite is one machine's file")
def test_two_instances_on_one_database_never_oversell_and_send_each_email_once(new_database, redis_store, tmp_path):
    url = new_database()
    with SMTPServer() as smtp:
        env = {
            **smtp.env(),
            "RATELIMIT_ENABLED": "true",
            "RATELIMIT_STORAGE_URI": redis_store,
            "RATELIMIT_REGISTER": f"{REGISTER_LIMIT} per hour",
            "RATELIMIT_HEADERS_ENABLED": "true",  # the probe below reads the shared count from them
            "RATELIMIT_LOGIN": "1000 per minute",
            "RATELIMIT_BOOKING": "60 per minute",
            "NOTIFY_WORKERS": "2",
        }
        servers = [support.Server(url, workers=2, threads=8, env=env, log_path=tmp_path / f"instance-{n}.log")
                   for n in (1, 2)]
        try:
            for server in servers:
                server.start(timeout=60)
            run(servers, url, smtp)
        finally:
            codes = [server.stop() for server in servers]
        assert codes == [0, 0]
        # nothing was sent twice, even by the sweeper of the other instance after the stop
        assert set(smtp.by_notification().values()) == {1}
    assert support.invariant_violations(url) == []


def run(servers, url, smtp):
    apis = [support.Api(server.url) for server in servers]
    organizer = apis[0].user("ORGANIZER")
    event = apis[0].http.post("/api/events", json={"title": "Scale Conf", "description": "Two instances",
                                                   "date": in_days(40), "location": "Hall",
                                                   "totalTickets": TICKETS}, headers=organizer["headers"])
    assert event.status_code == 201, event.text
    event_id = event.json()["id"]

    # customers register and log in on alternating instances
    with ThreadPoolExecutor(8) as pool:
        customers = list(pool.map(lambda n: apis[n % 2].user("CUSTOMER", f"fan{n}-{uuid.uuid4().hex[:6]}@example.com"),
                                  range(CUSTOMERS)))

    # the registration counter is shared: both instances (4 processes) counted into one Redis key
    probe = apis[1].http.post("/api/auth/register", json={"email": f"probe-{uuid.uuid4().hex[:6]}@example.com",
                                                          "password": support.PASSWORD, "role": "CUSTOMER"})
    assert probe.status_code == 201
    assert int(probe.headers["X-RateLimit-Limit"]) == REGISTER_LIMIT
    assert int(probe.headers["X-RateLimit-Remaining"]) == REGISTER_LIMIT - (CUSTOMERS + 2)

    # everyone books at once, alternating between the instances
    start = threading.Barrier(CUSTOMERS)

    def book(n):
        start.wait(30)
        response = httpx.post(f"{servers[n % 2].url}/api/bookings", verify=support.SSL, json={"eventId": event_id, "ticketsCount": 1},
                              headers=customers[n]["headers"], timeout=60)
        return n, response.status_code, response.json()

    with ThreadPoolExecutor(CUSTOMERS) as pool:
        results = list(pool.map(book, range(CUSTOMERS)))

    created = [n for n, status, _ in results if status == 201]
    refused = [(status, body.get("code")) for _, status, body in results if status != 201]
    assert len(created) == TICKETS, results
    assert all(status == 409 and code in ("sold_out", "not_enough_tickets") for status, code in refused), refused
    assert {n % 2 for n in created} == {0, 1}  # both instances sold tickets

    final = apis[1].http.get(f"/api/events/{event_id}").json()
    assert final["availableTickets"] == 0
    assert support.invariant_violations(url) == []

    # each confirmation: one row, SENT once, and one email at the SMTP server
    smtp.wait_for(TICKETS, timeout=60)
    engine = sa.create_engine(normalize_database_url(url))
    try:
        def all_sent():
            with engine.connect() as connection:
                rows = connection.execute(sa.text(
                    "SELECT b.id AS booking_id, n.id, n.status, n.attempts FROM bookings b "
                    "JOIN notifications n ON n.booking_id = b.id AND n.kind = 'BOOKING_CONFIRMED' "
                    "WHERE b.event_id = :e AND b.status = 'CONFIRMED'"), {"e": event_id}).all()
            return rows if len(rows) == TICKETS and all(r.status == "SENT" for r in rows) else None

        rows = support.wait_until(all_sent, 30, 0.2, "every confirmation to be SENT")
        with engine.connect() as connection:
            total = connection.execute(sa.text(
                "SELECT COUNT(*) FROM notifications WHERE kind = 'BOOKING_CONFIRMED'")).scalar()
    finally:
        engine.dispose()
    assert total == TICKETS
    assert len({r.booking_id for r in rows}) == TICKETS  # one notification per booking
    assert all(r.attempts == 1 for r in rows), rows
    messages = smtp.settle(quiet=2.0)
    assert smtp.by_notification() == {r.id: 1 for r in rows}, "each email delivered exactly once"
    assert sorted(m["To"] for m in messages) == sorted(customers[n]["email"] for n in created)
