"""Concurrency: nobody is ever sold a ticket that does not exist, however many people
press "book" (or "cancel") at the same second.

Everything here is real: a gunicorn master with several gthread workers (separate
processes, each with its own connection pool), client threads released together by a
`threading.Barrier`, each with its own HTTP connection opened beforehand, and a real
SQLite or PostgreSQL database (each test runs on both, through the `backend` param).
Nothing is mocked. After every test the database invariant
    0 <= available <= total  and  total - available == sum(CONFIRMED ticketsCount)
is checked straight in the database.
"""

import json
import random
import ssl
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests import support

pytestmark = pytest.mark.slow

HTTP_TIMEOUT = 60  # seconds: a request that takes longer than this is a bug (deadlock, lost lock)
SOLD_OUT_CODES = {"sold_out", "not_enough_tickets"}
# httpx builds a certifi SSL context per Client (~70 ms of CPU each): 200 of them would
# spread the clients' arrival at the barrier over many seconds. The server is plain HTTP.
_SSL = ssl.create_default_context()


def _log_tail(path, offset=0, lines=60):
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


class Live:
    """One running gunicorn on one fresh database, with helpers to drive it."""

    def __init__(self, server, database_url, log_path):
        self.server = server
        self.url = server.url
        self.database_url = database_url
        self.log_path = log_path
        self.log_offset = 0
        self.broken_before = set()
        self.http = httpx.Client(
            base_url=self.url,
            timeout=HTTP_TIMEOUT,
            verify=_SSL,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self.api = support.Api(self.url, client=self.http)

    def log(self):
        return _log_tail(self.log_path, self.log_offset)

    def user(self, role="CUSTOMER"):
        return self.api.user(role)

    def users(self, count, role="CUSTOMER"):
        """`count` users, registered and logged in (in parallel, before any race starts)."""
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda _: self.api.user(role), range(count)))

    def event(self, organizer, total_tickets):
        date = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat().replace("+00:00", "Z")
        response = self.http.post(
            "/api/events",
            headers=organizer["headers"],
            json={
                "title": f"Race {uuid.uuid4().hex[:6]}",
                "description": "concurrency test",
                "date": date,
                "location": "Arena",
                "totalTickets": total_tickets,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    def get_event(self, event_id):
        response = self.http.get(f"/api/events/{event_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def book(self, customer, event_id, tickets=1):
        body = {"eventId": event_id, "ticketsCount": tickets}
        response = self.http.post("/api/bookings", headers=customer["headers"], json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def event_bookings(self, organizer, event_id):
        """(X-Total-Count, every booking of the event) as its organizer sees them."""
        items, page = [], 1
        while True:
            response = self.http.get(
                f"/api/events/{event_id}/bookings", headers=organizer["headers"], params={"page": page, "perPage": 100}
            )
            assert response.status_code == 200, response.text
            items += response.json()
            total = int(response.headers["X-Total-Count"])
            if len(items) >= total or not response.json():
                return total, items
            page += 1

    def my_bookings(self, customer):
        response = self.http.get("/api/bookings/my-bookings", headers=customer["headers"], params={"perPage": 100})
        assert response.status_code == 200, response.text
        return response.json()

    def notifications(self, customer):
        response = self.http.get("/api/notifications", headers=customer["headers"], params={"perPage": 100})
        assert response.status_code == 200, response.text
        return response.json()

    def assert_invariant(self):
        """No event breaks the invariant (events already broken by an earlier test on this
        shared database are reported there, not again)."""
        violations = [v for v in support.invariant_violations(self.database_url) if v[0] not in self.broken_before]
        message = f"ticket invariant broken (id, total, available, sold): {violations}"
        assert not violations, f"{message}\n--- server log ---\n{self.log()}"

    def together(self, calls):
        """Run every `call(http)` in its own thread with its own httpx.Client, all released
        at the same instant by a Barrier (connections are opened before it); return the
        responses in the order of `calls`."""
        barrier = threading.Barrier(len(calls))
        results = [None] * len(calls)

        def run(index, call):
            phase = "connect"
            try:
                with httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT, verify=_SSL) as http:
                    http.get("/api/health")  # the TCP connection is up before the race starts
                    phase = "barrier"
                    barrier.wait(timeout=120)
                    phase = "request"
                    results[index] = call(http)
            except BaseException as exc:  # noqa: BLE001 - reported below, with the server log
                barrier.abort()
                results[index] = RuntimeError(f"client {index}, {phase}: {exc.__class__.__name__}: {exc}")

        threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HTTP_TIMEOUT + 130)
        stuck = sum(thread.is_alive() for thread in threads)
        failures = [str(r) for r in results if isinstance(r, BaseException)]
        failures.sort(key=lambda text: "BrokenBarrierError" in text)  # the cause first
        assert not stuck and not failures, (
            f"{stuck} client threads stuck, {len(failures)} failed: {failures[:5]}\n--- server log ---\n{self.log()}"
        )
        return results

    def explain(self, responses):
        """A failure message: the statuses and codes seen, and the end of the server log."""
        seen = Counter((r.status_code, _code(r)) for r in responses)
        return f"responses (status, code): {dict(seen)}\n--- server log ---\n{self.log()}"


def _code(response):
    try:
        return response.json().get("code") if response.status_code >= 400 else None
    except ValueError:
        return f"<not JSON: {response.text[:80]!r}>"


def _booking(customer, event_id, tickets=1, key=None):
    headers = dict(customer["headers"])
    if key is not None:
        headers["Idempotency-Key"] = key
    return lambda http: http.post("/api/bookings", headers=headers, json={"eventId": event_id, "ticketsCount": tickets})


def _cancel(customer, booking_id):
    return lambda http: http.post(f"/api/bookings/{booking_id}/cancel", headers=customer["headers"])


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    """One gunicorn with 3 workers on one fresh, migrated database of the current backend,
    shared by this module's tests of that backend (starting 3 workers costs seconds of
    CPU; every test works on its own event and users). Always stopped, killed if it will
    not stop; its log is kept next to the database and quoted in failure messages."""
    tmp = tmp_path_factory.mktemp(f"concurrency-{backend}")
    url = support.create_database(backend, tmp)
    log_path = tmp / "server.log"
    # The clients' connections are opened before the barrier and then sit idle until
    # every client is ready: gunicorn must not close them as idle keep-alives meanwhile
    # (on a busy machine it would reset one under a request: a test artifact, not a bug).
    process = support.Server(url, workers=3, threads=8, log_path=log_path, env={"GUNICORN_KEEPALIVE": "120"})
    live = None
    try:
        process.start()
        live = Live(process, url, log_path)
        yield live
    finally:
        if live is not None:
            live.http.close()
        try:
            process.stop(timeout=20)
        except Exception:  # noqa: BLE001 - a server that will not stop is killed
            process.kill()
        support.drop_database(url)


@pytest.fixture
def live(server):
    """The module's server, checked alive, its log quoted from this test's start on."""
    assert server.server.process.poll() is None, f"gunicorn died before this test\n{server.log()}"
    server.log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
    server.broken_before = {v[0] for v in support.invariant_violations(server.database_url)}
    yield server
    server.assert_invariant()


# -- 1. the rush: 200 customers, 50 tickets -------------------------------------------


def test_200_customers_rush_50_tickets_exactly_50_sold(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 50)
    customers = app.users(200)

    responses = app.together([_booking(c, event["id"], 1) for c in customers])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 150}, app.explain(responses)
    refused = Counter(_code(r) for r in responses if r.status_code == 409)
    assert set(refused) <= SOLD_OUT_CODES, app.explain(responses)
    sold = [r.json() for r in responses if r.status_code == 201]
    assert len({b["id"] for b in sold}) == 50
    assert len({b["userId"] for b in sold}) == 50
    assert all(b["ticketsCount"] == 1 and b["status"] == "CONFIRMED" for b in sold)
    assert all(0 <= b["event"]["availableTickets"] < 50 for b in sold)

    assert app.get_event(event["id"])["availableTickets"] == 0
    total, bookings = app.event_bookings(organizer, event["id"])
    assert total == 50
    assert sorted(b["id"] for b in bookings) == sorted(b["id"] for b in sold)
    app.assert_invariant()


def test_the_rush_confirmations_go_out_once_each_in_batches(live):
    """The log backend's emails leave in batches (one claim and one SENT mark for many):
    after a rush every buyer has exactly one confirmation, SENT on its first attempt,
    one log line each, nothing for those refused, and some batch held several emails."""
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 60)
    customers = app.users(90)

    responses = app.together([_booking(c, event["id"], 1) for c in customers])
    assert Counter(r.status_code for r in responses) == {201: 60, 409: 30}, app.explain(responses)
    buyers = [c for c, r in zip(customers, responses, strict=True) if r.status_code == 201]
    refused = [c for c, r in zip(customers, responses, strict=True) if r.status_code == 409]

    def all_sent():
        notes = [app.notifications(c) for c in buyers]
        return notes if all(len(n) == 1 and n[0]["status"] == "SENT" for n in notes) else None

    notes = [n for [n] in support.wait_until(all_sent, 30, 0.25, message="60 confirmations SENT")]
    assert all(n["kind"] == "BOOKING_CONFIRMED" and n["attempts"] == 1 for n in notes), notes
    assert all(app.notifications(c) == [] for c in refused)
    ours = {c["email"] for c in customers}  # an earlier test's late emails may share the log

    def our_emails():
        lines = _log_tail(app.log_path, app.log_offset, 10**6).splitlines()
        sent = [json.loads(line)["message"].rsplit(" ", 1)[-1] for line in lines if "email sent to" in line]
        found = [email for email in sent if email in ours]
        return found if len(found) >= 60 else None

    sent_to = Counter(support.wait_until(our_emails, 10, message="60 email log lines"))
    assert sent_to == Counter(c["email"] for c in buyers), sent_to
    # One SENT mark per batch: rows marked together share their sentAt.
    assert len({n["sentAt"] for n in notes}) < len(notes), "every email had a batch of its own"


# -- 2. mixed sizes --------------------------------------------------------------------


def test_mixed_sizes_sell_exactly_what_exists(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 100)
    customers = app.users(60)
    wanted = [random.Random(7 + i).randint(1, 4) for i in range(60)]  # ~150 tickets asked for 100

    responses = app.together([_booking(c, event["id"], n) for c, n in zip(customers, wanted, strict=True)])

    assert {r.status_code for r in responses} <= {201, 409}, app.explain(responses)
    assert {_code(r) for r in responses if r.status_code == 409} <= SOLD_OUT_CODES, app.explain(responses)
    sold = sum(r.json()["ticketsCount"] for r in responses if r.status_code == 201)
    for response, asked in zip(responses, wanted, strict=True):
        if response.status_code == 201:
            assert response.json()["ticketsCount"] == asked
    available = app.get_event(event["id"])["availableTickets"]
    assert 0 <= available <= 100
    assert sold == 100 - available, app.explain(responses)
    # Nothing is ever given back in this race, so availability only goes down: a refusal
    # is right only if even the final remainder is smaller than what was asked for.
    for response, asked in zip(responses, wanted, strict=True):
        if response.status_code == 409:
            assert asked > available, f"refused {asked} tickets while {available} are still left"
            if _code(response) == "sold_out":
                assert response.json().get("availableTickets", 0) == 0
    total, bookings = app.event_bookings(organizer, event["id"])
    assert total == sum(r.status_code == 201 for r in responses)
    assert sum(b["ticketsCount"] for b in bookings if b["status"] == "CONFIRMED") == sold
    app.assert_invariant()


# -- 3. twenty cancels of one booking ----------------------------------------------------


def test_20_simultaneous_cancels_return_tickets_once(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 10)
    customer = app.user()
    booking = app.book(customer, event["id"], 3)
    assert app.get_event(event["id"])["availableTickets"] == 7

    responses = app.together([_cancel(customer, booking["id"]) for _ in range(20)])

    assert all(r.status_code == 200 for r in responses), app.explain(responses)
    bodies = [r.json() for r in responses]
    assert all(b["id"] == booking["id"] and b["status"] == "CANCELLED" for b in bodies)
    assert len({b["cancelledAt"] for b in bodies}) == 1, "more than one cancel took effect"
    assert app.get_event(event["id"])["availableTickets"] == 10

    # The notification rows are written with the cancel; wait until delivery is done and
    # the list has stopped changing, then count.
    previous, stable_since = None, None
    deadline = time.monotonic() + 20
    while True:
        notes = app.notifications(customer)
        state = sorted((n["id"], n["kind"], n["status"]) for n in notes)
        done = notes and all(n["status"] != "PENDING" for n in notes)
        if state != previous or not done:
            previous, stable_since = state, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            break
        assert time.monotonic() < deadline, f"notifications never settled: {state}\n{app.log()}"
        time.sleep(0.1)
    kinds = Counter(n["kind"] for n in notes)
    assert kinds == {"BOOKING_CONFIRMED": 1, "BOOKING_CANCELLED": 1}, f"{notes}\n{app.log()}"
    assert all(n["status"] == "SENT" for n in notes), notes
    app.assert_invariant()


# -- 4. one customer, twenty clicks ------------------------------------------------------


def test_same_customer_20_clicks_books_once(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 100)
    customer = app.user()

    responses = app.together([_booking(customer, event["id"], 1) for _ in range(20)])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 19}, app.explain(responses)
    assert {_code(r) for r in responses if r.status_code == 409} == {"already_booked"}, app.explain(responses)
    assert len(app.my_bookings(customer)) == 1
    assert app.get_event(event["id"])["availableTickets"] == 99
    app.assert_invariant()


# -- 5. Idempotency-Key under a race ----------------------------------------------------


def test_same_idempotency_key_30_times_at_once_books_once(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 20)
    customer = app.user()
    key = f"retry-{uuid.uuid4()}"

    responses = app.together([_booking(customer, event["id"], 2, key=key) for _ in range(30)])

    ok = [r for r in responses if 200 <= r.status_code < 300]
    assert ok, app.explain(responses)
    # A repeat may at most be told the key is busy (409 idempotency_key_reused, "retry");
    # `already_booked` would mean the key let a second purchase through to the booking.
    refused = [r for r in responses if r not in ok]
    assert all(r.status_code == 409 for r in refused), app.explain(responses)
    assert {_code(r) for r in refused} <= {"idempotency_key_reused"}, app.explain(responses)
    assert len({r.json()["id"] for r in ok}) == 1, app.explain(responses)
    assert all(r.status_code == 201 and r.json()["ticketsCount"] == 2 for r in ok)
    originals = [r for r in ok if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(originals) == 1, f"{len(originals)} responses claim to have booked\n{app.log()}"
    mine = app.my_bookings(customer)
    assert [b["id"] for b in mine] == [ok[0].json()["id"]]
    assert app.get_event(event["id"])["availableTickets"] == 18

    with_key = {**customer["headers"], "Idempotency-Key": key}
    again = app.http.post("/api/bookings", headers=with_key, json={"eventId": event["id"], "ticketsCount": 2})
    assert again.status_code == 201 and again.json()["id"] == mine[0]["id"], again.text
    reused = app.http.post("/api/bookings", headers=with_key, json={"eventId": event["id"], "ticketsCount": 3})
    assert reused.status_code == 409, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    assert len(app.my_bookings(customer)) == 1
    assert app.get_event(event["id"])["availableTickets"] == 18
    app.assert_invariant()


# -- 6. cancels racing bookings -----------------------------------------------------------


def test_cancels_racing_bookings_never_oversell(live):
    app = live
    organizer = app.user("ORGANIZER")
    event = app.event(organizer, 10)
    holders = app.users(10)
    held = [app.book(holder, event["id"], 1) for holder in holders]
    assert app.get_event(event["id"])["availableTickets"] == 0
    newcomers = app.users(30)

    calls = [_cancel(h, b["id"]) for h, b in zip(holders, held, strict=True)]
    calls += [_booking(c, event["id"], 1) for c in newcomers]
    responses = app.together(calls)
    cancels, books = responses[:10], responses[10:]

    assert all(r.status_code == 200 and r.json()["status"] == "CANCELLED" for r in cancels), app.explain(cancels)
    assert {r.status_code for r in books} <= {201, 409}, app.explain(books)
    assert {_code(r) for r in books if r.status_code == 409} <= SOLD_OUT_CODES, app.explain(books)
    won = [r.json() for r in books if r.status_code == 201]
    assert len(won) <= 10

    available = app.get_event(event["id"])["availableTickets"]
    _, bookings = app.event_bookings(organizer, event["id"])
    confirmed = [b for b in bookings if b["status"] == "CONFIRMED"]
    assert sum(b["ticketsCount"] for b in confirmed) <= 10
    assert sorted(b["id"] for b in confirmed) == sorted(b["id"] for b in won)
    assert available == 10 - len(won)
    app.assert_invariant()
