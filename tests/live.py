"""A live gunicorn on a fresh database, and the means to race clients against it: the
`server` (module-scoped, one per backend) and `live` fixtures of tests/conftest.py use it.

Everything is real: a gunicorn master with several gthread workers (separate processes,
each with its own connection pool), client threads released together by a
`threading.Barrier`, each with its own HTTP connection opened beforehand, and a real
SQLite or PostgreSQL database. Nothing is mocked. After every test the database
invariant (tests/support.py: INVARIANT) is checked straight in the database.
"""

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx

from tests import support

HTTP_TIMEOUT = 60  # seconds: a request that takes longer than this is a bug (deadlock, lost lock)
SOLD_OUT_CODES = {"sold_out", "not_enough_tickets"}


def log_tail(path, offset=0, lines=60):
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
            verify=support.SSL,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self.api = support.Api(self.url, client=self.http)

    def log(self):
        return log_tail(self.log_path, self.log_offset)

    def user(self, role="CUSTOMER"):
        return self.api.user(role)

    def users(self, count, role="CUSTOMER"):
        """`count` users, registered and logged in (in parallel, before any race starts)."""
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda _: self.api.user(role), range(count)))

    def event(self, organizer, total_tickets, **fields):
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
                **fields,
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
        violations = [v for v in support.invariant_violations(self.database_url) if v not in self.broken_before]
        message = f"ticket invariant broken: {violations}"
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
                with httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT, verify=support.SSL) as http:
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
        seen = Counter((r.status_code, code(r)) for r in responses)
        return f"responses (status, code): {dict(seen)}\n--- server log ---\n{self.log()}"


def code(response):
    try:
        return response.json().get("code") if response.status_code >= 400 else None
    except ValueError:
        return f"<not JSON: {response.text[:80]!r}>"


def booking(customer, event_id, tickets=1, key=None):
    headers = dict(customer["headers"])
    if key is not None:
        headers["Idempotency-Key"] = key
    return lambda http: http.post("/api/bookings", headers=headers, json={"eventId": event_id, "ticketsCount": tickets})


def cancel(customer, booking_id):
    return lambda http: http.post(f"/api/bookings/{booking_id}/cancel", headers=customer["headers"])




def start(backend, tmp_path_factory, name, workers=3, env=None, threads=6):
    """A gunicorn with `workers` workers on one fresh, migrated database of `backend`, and
    its Live; call `stop(live)` when done."""
    tmp = tmp_path_factory.mktemp(f"{name}-{backend}")
    url = support.create_database(backend, tmp)
    log_path = tmp / "server.log"
    # The clients' connections are opened before the barrier and then sit idle until
    # every client is ready: gunicorn must not close them as idle keep-alives meanwhile.
    process = support.Server(url, workers=workers, threads=threads, log_path=log_path,
                             env={"GUNICORN_KEEPALIVE": "120", **(env or {})})
    try:
        process.start()
    except BaseException:
        _stop(process, url)
        raise
    return Live(process, url, log_path)


def stop(live):
    live.http.close()
    _stop(live.server, live.database_url)


def _stop(process, url):
    try:
        process.stop(timeout=20)
    except Exception:  # noqa: BLE001 - a server that will not stop is killed
        process.kill()
    support.drop_database(url)
