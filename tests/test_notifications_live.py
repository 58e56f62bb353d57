"""Notifications on a real gunicorn (2 worker processes, each with its own pool and
sweeper) mailing a real SMTP server: a crash (SIGKILL) in the middle of delivery, a
graceful stop (SIGTERM), and two servers sharing one PostgreSQL database. In every case
each notification reaches the SMTP server exactly once, counted by its
X-Eventbook-Notification header."""

import threading
import time

import pytest
import sqlalchemy as sa

from tests import support
from tests.support import in_days

pytestmark = pytest.mark.slow


@pytest.fixture
def servers():
    """Server factory; every server still running at the end is killed."""
    made = []

    def make(url, log_path, **kwargs):
        made.append(support.Server(url, log_path=str(log_path), **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.kill()


def tail(path, lines=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def query(url, sql):
    engine = sa.create_engine(support._normalized(url))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def make_event(api, organizer, **fields):
    body = {"title": "Live Conf", "description": "Live", "date": in_days(30), "location": "Hall 9", "totalTickets": 500, **fields}
    response = api.http.post("/api/events", json=body, headers=organizer["headers"])
    assert response.status_code == 201, response.text
    return response.json()


def book(api, person, event, tickets=1):
    started = time.monotonic()
    response = api.http.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": tickets}, headers=person["headers"])
    assert response.status_code == 201, response.text
    return response.json(), time.monotonic() - started


def notifications(api, person):
    response = api.http.get("/api/notifications?perPage=100", headers=person["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def wait_all_sent(api, people, per_person, url, log, timeout=45):
    """Every person's notifications, once each has `per_person` of them and all are SENT."""

    def ready():
        found = {p["email"]: notifications(api, p) for p in people}
        done = all(len(n) == per_person and all(x["status"] == "SENT" for x in n) for n in found.values())
        return found if done else None

    try:
        return support.wait_until(ready, timeout, 0.25, message="every notification SENT")
    except AssertionError as exc:
        rows = query(
            url,
            "SELECT id, status, attempts, claim_token, claimed_until, next_attempt_at, last_error "
            "FROM notifications WHERE status != 'SENT' ORDER BY id",
        )
        events = [line for line in tail(log, 2000).splitlines() if '"eventbook.access"' not in line]
        raise AssertionError(f"{exc}; not sent: {rows}\n--- server log (no access lines) ---\n" + "\n".join(events[-40:])) from None


def assert_exactly_once(smtp, found, expected_total):
    ids = {n["id"] for notes in found.values() for n in notes}
    assert len(ids) == expected_total, ids
    smtp.settle(quiet=1.0)
    counts = smtp.by_notification()
    twice = {nid: n for nid, n in counts.items() if n != 1}
    assert not twice, f"delivered more than once: {twice}"
    assert set(counts) == ids, f"missing {ids - set(counts)}, unexpected {set(counts) - ids}"
    by_id = {n["id"]: n for notes in found.values() for n in notes}
    for message in smtp.messages:
        assert message["To"] == by_id[int(message["X-Eventbook-Notification"])]["recipient"]


# -- a crash -----------------------------------------------------------------------


def test_sigkill_during_delivery_then_restart_sends_each_exactly_once(backend, new_database, smtp, servers, tmp_path):
    url = new_database()
    log = tmp_path / "server.log"
    # The lease (NOTIFY_CLAIM_TIMEOUT_SECONDS) is written by the process that claims, so
    # the crashed server's leases must be short too; it stays above the 1.5 s delay.
    first = servers(
        url, log, workers=2, env={**smtp.env(), "NOTIFY_DELIVERY_DELAY_MS": "1500", "NOTIFY_CLAIM_TIMEOUT_SECONDS": "4"}
    ).start()
    api = support.Api(first.url)
    organizer = api.user("ORGANIZER")
    event = make_event(api, organizer)
    people = [api.user() for _ in range(10)]
    for person in people:
        book(api, person, event)
    first.kill()  # SIGKILL, master and workers, while deliveries sleep in their delay
    received_before = len(smtp.messages)
    assert received_before < 10, "every email left before the crash: the test proves nothing"
    held = query(url, "SELECT id FROM notifications WHERE status = 'PENDING' AND claimed_until IS NOT NULL")
    assert held, "no claim was left behind by the crash: the lease timeout is not exercised"

    second = servers(url, log, workers=2, env={**smtp.env(), "NOTIFY_CLAIM_TIMEOUT_SECONDS": "2"}).start()
    api = support.Api(second.url)
    found = wait_all_sent(api, people, 1, url, log)
    assert_exactly_once(smtp, found, expected_total=10)
    assert all(n["kind"] == "BOOKING_CONFIRMED" for notes in found.values() for n in notes)
    health = api.http.get("/api/health").json()["jobs"]
    assert health["pending"] == 0 and health["failed"] == 0, health


# -- a graceful stop ---------------------------------------------------------------


def test_sigterm_stops_in_time_and_restart_sends_the_rest_once(backend, new_database, smtp, servers, tmp_path):
    url = new_database()
    log = tmp_path / "server.log"
    env = {**smtp.env(), "NOTIFY_DELIVERY_DELAY_MS": "1500", "NOTIFY_SHUTDOWN_SECONDS": "5", "GUNICORN_GRACEFUL_TIMEOUT": "10"}
    first = servers(url, log, workers=2, env=env).start()
    api = support.Api(first.url)
    organizer = api.user("ORGANIZER")
    event = make_event(api, organizer)
    people = [api.user() for _ in range(6)]
    for person in people:
        book(api, person, event)
    api.http.close()  # no idle keep-alive connection to hold a worker in its graceful drain

    started = time.monotonic()
    code = first.stop()  # SIGTERM while every delivery still sleeps in its delay
    took = time.monotonic() - started
    assert code == 0, f"gunicorn exited with {code}\n{tail(log)}"
    assert took < 10, f"SIGTERM took {took:.1f}s, more than the graceful timeout\n{tail(log)}"
    assert tail(log, 200).count("notification pool stopped") >= 2, tail(log)  # one per worker
    assert len(smtp.messages) < 6, "everything was sent before the stop: the test proves nothing"

    second = servers(url, log, workers=2, env=smtp.env()).start()
    api = support.Api(second.url)
    found = wait_all_sent(api, people, 1, url, log, timeout=20)
    assert_exactly_once(smtp, found, expected_total=6)
    # Given back at the stop, not failed: each went out on its first counted attempt.
    assert all(n["attempts"] == 1 for notes in found.values() for n in notes), found


# -- two servers, one PostgreSQL database --------------------------------------------


@pytest.mark.postgresql_only(
    "two servers sharing one database exercise the PostgreSQL claim (FOR UPDATE SKIP LOCKED); SQLite is one file on one host"
)
def test_two_servers_on_one_database_deliver_each_once(new_database, smtp, servers, tmp_path):
    url = new_database()
    # A small queue sends most rows through the sweepers, where 4 processes race to claim.
    env = {**smtp.env(), "NOTIFY_QUEUE_SIZE": "2", "NOTIFY_SWEEP_SECONDS": "0.2", "NOTIFY_DELIVERY_DELAY_MS": "50"}
    pair = [servers(url, tmp_path / f"server{n}.log", workers=2, env=env) for n in (1, 2)]
    starters = [threading.Thread(target=server.start) for server in pair]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    for server, name in zip(pair, ("server1", "server2"), strict=True):
        assert server.process.poll() is None and server._healthy(), tail(tmp_path / f"{name}.log")
    apis = [support.Api(server.url) for server in pair]

    organizer = apis[0].user("ORGANIZER")
    event = make_event(apis[0], organizer)
    people = [apis[n % 2].user() for n in range(20)]
    for n, person in enumerate(people):  # half the bookings through each server
        book(apis[n % 2], person, event)
    response = apis[1].http.patch(f"/api/events/{event['id']}", json={"location": "Hall 10"}, headers=organizer["headers"])
    assert response.status_code == 200, response.text

    found = wait_all_sent(apis[0], people, 2, url, tmp_path / "server1.log")
    assert sorted(n["kind"] for n in found[people[0]["email"]]) == ["BOOKING_CONFIRMED", "EVENT_UPDATED"]
    assert_exactly_once(smtp, found, expected_total=40)
    # Several processes took part (each pool signs its claims with its own prefix).
    prefixes = query(url, "SELECT DISTINCT split_part(claim_token, '-', 1) FROM notifications WHERE recipient IS NOT NULL")
    assert len(prefixes) >= 2, prefixes
