"""Helpers shared by the test modules: databases, users through the API, live servers."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import sqlalchemy as sa

# httpx builds a certifi SSL context for every Client, and for every httpx.get or post
# (about 40 ms of CPU each): a server's health polled every 0.1 s while it starts would
# spend a third of a core on it. The test servers are plain HTTP; every client shares this one.
SSL = ssl.create_default_context()

ROOT = Path(__file__).resolve().parent.parent
PG_BASE_URL = os.environ.get("TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct-horse-battery"


# -- databases -------------------------------------------------------------------


def _admin_engine(base_url):
    from config import normalize_database_url

    return sa.create_engine(normalize_database_url(base_url), isolation_level="AUTOCOMMIT")


def check_postgres():
    """None if TEST_DATABASE_URL answers, else the reason it does not."""
    if not PG_BASE_URL:
        return "TEST_DATABASE_URL is not set"
    try:
        engine = _admin_engine(PG_BASE_URL)
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc.__class__.__name__}: {exc}".splitlines()[0]
    return None


def create_database(backend, tmp_dir, revision="head"):
    """A new, empty database of `backend`, migrated to `revision`; returns its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{Path(tmp_dir) / f'eventbook-{uuid.uuid4().hex[:8]}.db'}"
    else:
        name = f"eventbook_test_{uuid.uuid4().hex[:12]}"
        engine = _admin_engine(PG_BASE_URL)
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = str(sa.engine.make_url(_normalized(PG_BASE_URL)).set(database=name).render_as_string(hide_password=False))
    migrate(url, revision)
    return url


def _normalized(url):
    from config import normalize_database_url

    return normalize_database_url(url)


def drop_database(url):
    if url.startswith("sqlite"):
        return
    name = sa.engine.make_url(url).database
    engine = _admin_engine(PG_BASE_URL)
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def migrate(url, revision="head", down=False, **config):
    """`flask db upgrade [revision]` (`downgrade revision` when `down`) on this database,
    in this process, with the test settings and `config`. A migration that refuses exits
    (flask-migrate logs its reason)."""
    from flask_migrate import downgrade, upgrade

    from eventbook import create_app, database

    app = create_app(test_config(url, **config))
    with app.app_context():
        try:
            (downgrade if down else upgrade)(revision=revision)
        finally:
            database.dispose()


def test_config(url, **overrides):
    from config import TestConfig

    return type("Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": _normalized(url), **overrides})


INVARIANT = {
    # For every event: 0 <= available, available + set aside <= total, and
    # total - available == tickets of CONFIRMED bookings + of HELD holds + set aside.
    "event": """
        SELECT e.id, e.total_tickets, e.available_tickets, e.set_aside_tickets,
               COALESCE(b.sold, 0), COALESCE(h.held, 0)
        FROM events e
        LEFT JOIN (SELECT event_id, SUM(tickets_count) AS sold FROM bookings WHERE status = 'CONFIRMED'
                   GROUP BY event_id) b ON b.event_id = e.id
        LEFT JOIN (SELECT event_id, SUM(tickets_count) AS held FROM holds WHERE status = 'HELD'
                   GROUP BY event_id) h ON h.event_id = e.id
        WHERE e.available_tickets < 0 OR e.set_aside_tickets < 0
           OR e.available_tickets + e.set_aside_tickets > e.total_tickets
           OR e.total_tickets - e.available_tickets != COALESCE(b.sold, 0) + COALESCE(h.held, 0) + e.set_aside_tickets
    """,
    # The same per ticket type, counted from the items of CONFIRMED bookings and HELD holds.
    "ticket type": """
        SELECT t.id, t.quantity, t.available_quantity, t.set_aside, COALESCE(s.sold, 0), COALESCE(h.held, 0)
        FROM ticket_types t
        LEFT JOIN (SELECT i.ticket_type_id, SUM(i.count) AS sold FROM items i
                   JOIN bookings b ON b.id = i.booking_id WHERE b.status = 'CONFIRMED'
                   GROUP BY i.ticket_type_id) s ON s.ticket_type_id = t.id
        LEFT JOIN (SELECT i.ticket_type_id, SUM(i.count) AS held FROM items i
                   JOIN holds h ON h.id = i.hold_id WHERE h.status = 'HELD'
                   GROUP BY i.ticket_type_id) h ON h.ticket_type_id = t.id
        WHERE t.available_quantity < 0 OR t.set_aside < 0 OR t.available_quantity + t.set_aside > t.quantity
           OR t.quantity - t.available_quantity != COALESCE(s.sold, 0) + COALESCE(h.held, 0) + t.set_aside
    """,
    # A booking's tickets: one per ticket it holds; its items add up to it.
    "booking": """
        SELECT b.id, b.tickets_count, (SELECT COUNT(*) FROM tickets k WHERE k.booking_id = b.id),
               (SELECT COALESCE(SUM(i.count), 0) FROM items i WHERE i.booking_id = b.id)
        FROM bookings b
        WHERE b.tickets_count != (SELECT COUNT(*) FROM tickets k WHERE k.booking_id = b.id)
           OR b.tickets_count != (SELECT COALESCE(SUM(i.count), 0) FROM items i WHERE i.booking_id = b.id)
    """,
    # BOOKED seats are the seats of CONFIRMED bookings, HELD seats those of HELD holds.
    "seat": """
        SELECT s.id, s.status, s.hold_id, s.booking_id FROM seats s
        LEFT JOIN holds h ON h.id = s.hold_id
        LEFT JOIN bookings b ON b.id = s.booking_id
        WHERE (s.status = 'AVAILABLE' AND (s.hold_id IS NOT NULL OR s.booking_id IS NOT NULL))
           OR (s.status = 'HELD' AND (h.status IS DISTINCT FROM 'HELD' OR s.booking_id IS NOT NULL))
           OR (s.status = 'BOOKED' AND b.status IS DISTINCT FROM 'CONFIRMED')
           OR (s.status != 'HELD' AND h.status = 'HELD')
    """,
}


TABLES = ["idempotency_keys", "notifications", "tickets", "items", "waitlist_entries", "seats", "seat_ranges", "holds", "bookings",
          "ticket_types", "events", "revoked_tokens", "token_families", "users"]


def empty_tables(app):
    """Delete every row of `app`'s database; ids start again at 1."""
    from eventbook.extensions import db

    with app.app_context():
        # DELETE, not TRUNCATE: this runs after every test, on a few rows, where DELETE is
        # far cheaper (TRUNCATE makes new files for every table).
        for table in TABLES:
            db.session.execute(sa.text(f"DELETE FROM {table}"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("SELECT setval(oid::regclass, 1, false) FROM pg_class "
                                       "WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"))
        else:
            db.session.execute(sa.text("DELETE FROM sqlite_sequence"))
        db.session.commit()


def stop_background(app, timeout=5, close=True):
    """Stop an app's background threads (the hold sweeper, the notification pool) and,
    unless `close` is false, close its pooled connections: nothing of it may touch the
    database after this but what the caller does itself."""
    from eventbook import database

    app.extensions["eventbook.sweeper"].stop()
    app.extensions["notifications"].shutdown(timeout=timeout)
    if close:
        with app.app_context():
            database.dispose()


LITERALS = (str, int, float, bool, type(None), timedelta)


def app_key(url, overrides):
    """What an app made for `url` and these config overrides can be kept under for the
    next test that asks for the same (conftest `app`); None when an override is not a
    plain value, whose repr would not say what it is."""
    def plain(value):
        if isinstance(value, (list, tuple)):
            return all(plain(item) for item in value)
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return isinstance(value, LITERALS)

    if not plain(overrides):
        return None
    return url, repr(sorted(overrides.items()))


def reset_app(app, config):
    """Make a used app as create_app made it, for the next test: its config as it was
    (`config`, a copy taken then), a new notification pool and hold sweeper (the old ones
    stopped, see stop_background), rate-limit counts from zero."""
    from eventbook import ratelimits
    from eventbook.holds.sweeper import HoldSweeper
    from eventbook.notifications.dispatcher import Dispatcher

    app.config.clear()
    app.config.update(config)
    Dispatcher(app)
    HoldSweeper(app)
    ratelimits.init_app(app)


def app_invariant_violations(app):
    """invariant_violations, read through `app`'s own pool."""
    from eventbook.extensions import db

    with app.app_context():
        found = [(what, tuple(row)) for what, query in INVARIANT.items() for row in db.session.execute(sa.text(query))]
        db.session.rollback()
    return found


def invariant_violations(url):
    """Rows that break the ticket invariant (INVARIANT), as (what, row) pairs."""
    engine = sa.create_engine(_normalized(url))
    with engine.connect() as connection:
        found = [(what, tuple(row)) for what, query in INVARIANT.items() for row in connection.execute(sa.text(query))]
    engine.dispose()
    return found


# -- responses -------------------------------------------------------------------
def ok(response, status=200):
    """The JSON of a response that must have `status`."""
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def refused(response, status, code):
    """The JSON of an error response that must have `status` and `code`."""
    body = response.get_json()
    assert response.status_code == status and body["code"] == code, (response.status_code, body)
    return body


def bearer(token):
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def has_link(response, rel):
    """Whether the response's `Link` header has a link of relation `rel`."""
    return f'rel="{rel}"' in response.headers.get("Link", "")


def titles(response):
    """The titles of a 200 list of events."""
    assert response.status_code == 200, response.get_json()
    return [event["title"] for event in response.get_json()]


class Shop:
    """The customer side of the API in one place (as flaskr's AuthActions): each method
    sends one request and returns the response. Tests get one as the `shop` fixture."""

    def __init__(self, client):
        self.client = client

    def book(self, actor, event_id, tickets=1, key=None, **body):
        body = {"eventId": event_id, **({"ticketsCount": tickets} if not body else {}), **body}
        headers = {**actor.headers, **({"Idempotency-Key": key} if key is not None else {})}
        return self.client.post("/api/bookings", json=body, headers=headers)

    def hold(self, actor, event_id, tickets=1, **body):
        body = {"eventId": event_id, **({"ticketsCount": tickets} if not body else {}), **body}
        return self.client.post("/api/holds", json=body, headers=actor.headers)

    def confirm(self, actor, hold_id, key=None):
        headers = {**actor.headers, **({"Idempotency-Key": key} if key is not None else {})}
        return self.client.post(f"/api/holds/{hold_id}/confirm", headers=headers)

    def release(self, actor, hold_id):
        return self.client.delete(f"/api/holds/{hold_id}", headers=actor.headers)

    def cancel(self, actor, booking_id):
        return self.client.post(f"/api/bookings/{booking_id}/cancel", headers=actor.headers)

    def event(self, event_id):
        return self.client.get(f"/api/events/{event_id}").get_json()

    def available(self, event_id):
        return self.event(event_id)["availableTickets"]

    def types(self, event_id):
        """{name: TicketType} of an event."""
        return {ticket_type["name"]: ticket_type for ticket_type in self.event(event_id)["ticketTypes"]}


def statements(app, request):
    """The SQL statements that `request()` (a test client call, which runs the request
    in this thread) sends, and its response: (statements, response)."""
    from eventbook.extensions import db

    sent, thread = [], threading.get_ident()

    def record(_connection, _cursor, statement, *args):
        if threading.get_ident() == thread:  # not the background sweeps' statements
            sent.append(statement)

    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = request()
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", record)
    return sent, response


# -- times -----------------------------------------------------------------------


def iso(when):
    """A datetime in ISO 8601, UTC written as Z."""
    return when.isoformat().replace("+00:00", "Z")


def days_from_now(days):
    """The datetime `days` from now, to the second (negative: in the past)."""
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)


def in_days(days):
    """An ISO 8601 time `days` from now (negative: in the past)."""
    return iso(datetime.now(timezone.utc) + timedelta(days=days))


# -- waiting ---------------------------------------------------------------------


def wait_until(predicate, timeout=15.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def crossed(database_url, request, holding, then, params):
    """A deadlock: another connection locks a row (`holding`, SQL); `request` runs in a
    thread until it waits for that row; then the connection asks for a row the request
    has locked (`then`, SQL). The victim is `request`, which waited first (should the
    other side be chosen on a starved machine, `request` simply goes on). `request`'s
    answer."""
    answers = []
    engine = sa.create_engine(_normalized(database_url))
    try:
        with engine.connect() as other:
            other.execute(sa.text(holding), params)
            running = threading.Thread(target=lambda: answers.append(request()))
            running.start()
            wait_until(lambda: waiting_for_locks(engine) == 1, 10, message="the request waiting for the locked row")
            try:
                other.execute(sa.text(then), params)
            except sa.exc.OperationalError:
                pass
            other.rollback()
            running.join(30)
    finally:
        engine.dispose()
    return answers[0]


def while_written(app, backend, database_url, statements, send):
    """The answer to `send(client)`, sent from another thread while `statements` ((SQL,
    parameters) pairs) are written in an outside transaction and not yet committed; the
    transaction commits once the request waits for it (on PostgreSQL, for a row lock; on
    SQLite, for the database's one writer)."""
    engine = sa.create_engine(_normalized(database_url))
    answers = []
    try:
        with engine.connect() as writing:
            if backend == "sqlite":
                writing.exec_driver_sql("BEGIN IMMEDIATE")
            for sql, parameters in statements:
                writing.execute(sa.text(sql), parameters)
            thread = threading.Thread(target=lambda: answers.append(send(app.test_client())))
            thread.start()
            if backend == "postgresql":
                wait_until(lambda: waiting_for_locks(engine) == 1, 10, message="the request waiting")
            else:
                time.sleep(1)  # the request's write waits for the database's one writer
            writing.commit()
            thread.join(30)
    finally:
        engine.dispose()
    [answer] = answers
    return answer


def waiting_for_locks(engine):
    """How many sessions of the engine's PostgreSQL database wait for a lock (a request
    blocked on a row a test holds)."""
    with engine.connect() as watching:
        return watching.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND wait_event_type = 'Lock'"))


# -- live servers ----------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private `redis-server` (the binary of the machine's Debian package) on a free
    port, in memory only, started and stopped by the tests themselves: the suite never
    depends on a Redis somebody else left running."""

    def __init__(self, workdir):
        self.binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout=15):
        if self.binary is None:
            raise FileNotFoundError("no redis-server binary (Debian package redis-server)")
        self.log = open(self.workdir / "redis.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout, 0.05, f"redis-server on port {self.port} to answer PING")
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}: "
                                 f"{(self.workdir / 'redis.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        terminate(self.process)
        if self.process is not None:
            self.log.close()


def terminate(process, timeout=10):
    """SIGTERM a child process (if started and running) and wait; SIGKILL if it takes longer."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


class Server:
    """`gunicorn wsgi:app -c gunicorn.conf.py` in a subprocess, as production runs it.

    Unless `env` says otherwise its pools hold half as many connections as a worker has
    threads (DB_POOL_SIZE), the session's pool as many more in overflow: a connection for
    every request thread there, and few kept open. PostgreSQL's 100 connections are
    shared by every test process and the servers they start, and on the default of 10 a
    server of 3 workers kept 50 open."""

    def __init__(self, database_url, workers=2, threads=8, env=None, port=None, log_path=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "JWT_SECRET_KEY": "live-server-test-secret-0123456789abcdefghij",
            "BCRYPT_ROUNDS": "4",
            "RATELIMIT_ENABLED": "false",
            "NOTIFY_SWEEP_SECONDS": "0.5",
            "NOTIFY_BACKOFF_SECONDS": "0.2",
            "LOG_FORMAT": "json",
            "DB_POOL_SIZE": str(max(2, threads // 2)),
            **(env or {}),
        }
        self.process = None

    def start(self, timeout=30):
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout, 0.1, f"gunicorn on port {self.port} to answer /api/health")
        return self

    def _healthy(self):
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode} before it was healthy")
        try:
            return httpx.get(f"{self.url}/api/health", verify=SSL, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Send `sig` to the master and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        """SIGKILL the master and its workers at once, as a crash would."""
        if self.process is None or self.process.poll() is not None:
            return
        for pid in _children(self.process.pid) + [self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)


def _children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


class Api:
    """A tiny client for a live server: register, log in, send with a token."""

    def __init__(self, base_url, client=None):
        self.base_url = base_url
        self.http = client or httpx.Client(verify=SSL, base_url=base_url, timeout=30)

    def user(self, role="CUSTOMER", email=None):
        email = email or f"{role.lower()}-{uuid.uuid4().hex[:10]}@example.com"
        response = self.http.post("/api/auth/register", json={"email": email, "password": PASSWORD, "role": role})
        assert response.status_code == 201, response.text
        response = self.http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        return {"id": body["user"]["id"], "email": email, "token": body["token"],
                "headers": {"Authorization": f"Bearer {body['token']}"}}
