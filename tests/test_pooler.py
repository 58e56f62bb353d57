"""The app behind PgBouncer in transaction mode, as its settings offer it
(`DB_PREPARED_STATEMENTS=false`, docs/operations.md "Behind a connection pooler").

The test starts Debian's PgBouncer on a port of its own, in front of the suite's
PostgreSQL, pooling in transaction mode; the database is migrated straight on
PostgreSQL, as the docs advise for the release command, and a live gunicorn reaches it
only through PgBouncer. Without /usr/sbin/pgbouncer the test is skipped with a message
saying how to enable it; in CI it fails instead."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests import support
from tests.support import in_days

pytestmark = pytest.mark.slow

PGBOUNCER = Path(os.environ.get("PGBOUNCER_PATH", "/usr/sbin/pgbouncer"))
HOW_TO_ENABLE = "`apt-get install pgbouncer` (as root) enables it"
CUSTOMERS = 16
TICKETS = 10


class PgBouncer:
    """PgBouncer on 127.0.0.1:port in transaction mode, in front of the server of `url`."""

    def __init__(self, url):
        self.direct_url = url
        server = make_url(url)
        self.port = support.free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="eventbook-pgbouncer-"))
        self.prefix = []
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        (self.dir / "users.txt").write_text(f'"{server.username}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(f"""\
[databases]
* = host={server.host} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / "users.txt"}
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
logfile = {self.dir / "pgbouncer.log"}
""")
        self.url = server.set(port=self.port).render_as_string(hide_password=False)
        self.process = None

    def start(self):
        self.process = subprocess.Popen([*self.prefix, str(PGBOUNCER), str(self.dir / "pgbouncer.ini")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        support.wait_until(self._listening, 15, 0.1, f"PgBouncer on port {self.port}")
        return self

    def _listening(self):
        if self.process.poll() is not None:
            raise AssertionError(f"PgBouncer exited with {self.process.returncode}: {self.log()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self):
        path = self.dir / "pgbouncer.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self):
        support.terminate(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def pgbouncer(new_database):
    if not PGBOUNCER.exists():
        reason = f"no PgBouncer at {PGBOUNCER}: {HOW_TO_ENABLE}"
        if support.IN_CI:
            pytest.fail(f"CI must run the pooler test: {reason}")
        pytest.skip(f"Pooler test skipped: {reason}")
    url = new_database()
    engine = sa.create_engine(support._normalized(url))
    with engine.begin() as connection:  # the limits a deployment behind a pooler sets on its database
        name = connection.execute(sa.text("SELECT current_database()")).scalar()
        connection.execute(sa.text(f'ALTER DATABASE "{name}" SET lock_timeout = \'1s\''))
    engine.dispose()
    pooler = PgBouncer(url).start()
    yield pooler
    pooler.stop()


@pytest.mark.postgresql_only("PgBouncer pools PostgreSQL connections")
def test_the_app_sells_through_pgbouncer_in_transaction_mode_and_never_oversells(pgbouncer, tmp_path):
    """Connections through the pooler are accepted (no startup parameter it refuses), and
    sales, holds and the outbox work when each transaction may run on another server
    connection."""
    server = support.Server(pgbouncer.url, workers=2, threads=4, log_path=tmp_path / "server.log",
                            env={"DB_PREPARED_STATEMENTS": "false", "DB_POOL_SIZE": "4"})
    try:
        server.start(timeout=30)
    except AssertionError as failed:
        server.kill()
        raise AssertionError(f"{failed}\nPgBouncer's log:\n{pgbouncer.log()}\nthe server's log:\n"
                             f"{(tmp_path / 'server.log').read_text()[-3000:]}") from None
    try:
        api = support.Api(server.url)
        http = api.http
        organizer = api.user("ORGANIZER")
        event = http.post("/api/events", headers=organizer["headers"], json={
            "title": "Pooled night", "date": in_days(5), "location": "Hall", "totalTickets": TICKETS})
        assert event.status_code == 201, event.text
        event_id = event.json()["id"]
        customers = [api.user() for _ in range(CUSTOMERS)]
        answers, gate = {}, threading.Barrier(CUSTOMERS)

        def book(customer):
            with httpx.Client(verify=support.SSL, base_url=server.url, timeout=60) as own:
                gate.wait()
                answers[customer["id"]] = own.post("/api/bookings", headers=customer["headers"],
                                                   json={"eventId": event_id, "ticketsCount": 1})

        threads = [threading.Thread(target=book, args=(customer,)) for customer in customers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        statuses = sorted(answer.status_code for answer in answers.values())
        assert statuses == [201] * TICKETS + [409] * (CUSTOMERS - TICKETS), [a.text for a in answers.values()]
        assert http.get(f"/api/events/{event_id}").json()["availableTickets"] == 0

        # a hold, then its confirm, on a second event, by a customer who has a booking
        buyer = next(customer for customer in customers if answers[customer["id"]].status_code == 201)
        second = http.post("/api/events", headers=organizer["headers"], json={
            "title": "Pooled matinee", "date": in_days(6), "location": "Hall", "totalTickets": 3}).json()
        held = http.post("/api/holds", headers=buyer["headers"], json={"eventId": second["id"], "ticketsCount": 2})
        assert held.status_code == 201, held.text
        confirmed = http.post(f"/api/holds/{held.json()['id']}/confirm", headers=buyer["headers"])
        assert confirmed.status_code == 201, confirmed.text
        assert http.get(f"/api/events/{second['id']}").json()["availableTickets"] == 1

        # the outbox delivers through the pooler too
        def sent():
            mine = http.get("/api/notifications", headers=buyer["headers"])
            return mine.status_code == 200 and len([n for n in mine.json() if n["status"] == "SENT"]) == 2

        support.wait_until(sent, 20, 0.2, "the customer's two confirmations sent")
        assert http.get("/api/health").json()["database"] == "ok"

        # The limits are the database's own here (ALTER DATABASE, as docs/operations.md
        # says): a booking held up by a lock held elsewhere is a 503 that takes nothing.
        third = http.post("/api/events", headers=organizer["headers"], json={
            "title": "Pooled encore", "date": in_days(7), "location": "Hall", "totalTickets": 3}).json()
        engine = sa.create_engine(support._normalized(pgbouncer.direct_url))
        try:
            with engine.connect() as locking:
                locking.execute(sa.text("SELECT id FROM events WHERE id = :id FOR UPDATE"), {"id": third["id"]})
                refused = http.post("/api/bookings", headers=customers[1]["headers"],
                                    json={"eventId": third["id"], "ticketsCount": 1})
                locking.rollback()
        finally:
            engine.dispose()
        assert refused.status_code == 503 and "busy" in refused.json()["message"], refused.text
        assert http.get(f"/api/events/{third['id']}").json()["availableTickets"] == 3
        http.close()
    finally:
        assert server.stop() == 0
    assert support.invariant_violations(pgbouncer.direct_url) == []
    log = (tmp_path / "server.log").read_text()
    assert '"level": "ERROR"' not in log and "Traceback" not in log, log[-3000:]
