"""PostgreSQL goes away under a running app, then comes back.

The test starts a PostgreSQL cluster of its own (initdb + pg_ctl, as the `postgres` OS
user when the suite runs as root), so that it can stop it: no TEST_DATABASE_URL needed,
and it runs once, not per backend. While the database is down every request that needs
it answers 503 in the error envelope with Retry-After, health included; once it is back
the same processes serve again, and deliver again, without a restart."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests import support
from tests.support import in_days

pytestmark = pytest.mark.slow


def find_pg_bin():
    """The directory of initdb and pg_ctl: PG_BIN, /usr/lib/postgresql/15/bin (or
    another version there), or PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += ["/usr/lib/postgresql/15/bin"]
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        candidates += [str(p / "bin") for p in sorted(root.iterdir(), reverse=True)]
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port, in a temporary directory."""

    def __init__(self, bin_dir):
        self.bin = bin_dir
        self.port = support.free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="eventbook-pg-"))
        self.data = self.dir / "data"
        self.prefix = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, timeout=120):
        result = subprocess.run([*self.prefix, *map(str, args)], cwd=self.dir, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, f"{args[0]} failed: {result.stdout}\n{result.stderr}\n{self.log()}"
        return result

    def log(self):
        path = self.dir / "postgres.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def init(self):
        self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8")
        return self

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, "-l", self.dir / "postgres.log",
                  "-w", "-t", "60", "start")
        return self

    def stop(self, mode="fast"):
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self):
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                            "-w", "stop"], cwd=self.dir, capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self, name):
        engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres",
                                  isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def _has_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def cluster():
    bin_dir = find_pg_bin()
    reason = None
    if bin_dir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found; set PG_BIN"
    elif os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("postgres")):
        reason = "running as root, initdb needs the `postgres` OS user and runuser"
    if reason:
        if support.IN_CI:
            pytest.fail(f"CI must run the outage test: {reason}")
        pytest.skip(reason)
    made = Cluster(bin_dir)
    try:
        yield made.init().start()
    finally:
        made.destroy()


def new_event(api, organizer, total=10):
    response = api.http.post("/api/events", json={"title": "Outage Fest", "description": "Down and up",
                                                  "date": in_days(15), "location": "Hall", "totalTickets": total},
                             headers=organizer["headers"])
    assert response.status_code == 201, response.text
    return response.json()


def assert_unavailable(response):
    assert response.status_code == 503, f"{response.request.method} {response.request.url}: " \
                                        f"{response.status_code} {response.text}"
    body = response.json()
    assert body["status"] == 503 and body["code"] == "unavailable" and body["message"], body
    assert "errors" in body
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Type"].startswith("application/json")


def worker_pids(server):
    return sorted(support._children(server.process.pid))


def test_the_app_answers_503_while_postgresql_is_down_and_recovers_by_itself(cluster, tmp_path):
    url = cluster.create_database("eventbook")
    support.migrate(url)
    # a small queue: one sweep that failed and kept its slots would fill it (the pool must give them back)
    server = support.Server(url, workers=2, threads=4, log_path=tmp_path / "server.log",
                            env={"NOTIFY_QUEUE_SIZE": "50", "NOTIFY_SWEEP_SECONDS": "0.3", "HOLD_SWEEP_SECONDS": "0.3",
                                 "DB_POOL_TIMEOUT": "5", "NOTIFY_CLAIM_TIMEOUT_SECONDS": "3"})
    server.start()
    try:
        api = support.Api(server.url)
        organizer = api.user("ORGANIZER")
        customer = api.user("CUSTOMER")
        later = api.user("CUSTOMER")
        event = new_event(api, organizer)
        booked = api.http.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 2},
                               headers=customer["headers"])
        assert booked.status_code == 201, booked.text
        master, workers = server.process.pid, worker_pids(server)
        assert len(workers) == 2

        cluster.stop("fast")
        outage_started = time.monotonic()
        for _ in range(3):  # more than one worker and pooled connection get to see it
            started = time.monotonic()
            assert_unavailable(api.http.get("/api/events"))
            assert_unavailable(api.http.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1},
                                             headers=later["headers"]))
            assert_unavailable(api.http.get(f"/api/events/{event['id']}"))
            assert_unavailable(api.http.get("/api/bookings/my-bookings", headers=customer["headers"]))
            assert_unavailable(api.http.post("/api/auth/login", json={"email": later["email"],
                                                                      "password": support.PASSWORD}))
            health = api.http.get("/api/health")
            assert_unavailable(health)
            assert health.json().get("database") == "unreachable"
            assert time.monotonic() - started < 15, "an outage must be answered quickly, not hang"
        # things that do not need the database still work
        assert api.http.get("/api/openapi.json").status_code == 200
        # stay down long enough for several sweeps to fail in every worker
        time.sleep(max(0.0, 2.0 - (time.monotonic() - outage_started)))

        cluster.start()

        def serving():
            try:
                return api.http.get("/api/health").status_code == 200 and \
                    api.http.get("/api/events").status_code == 200
            except httpx.HTTPError:
                return False

        support.wait_until(serving, 10, 0.2, "the app to serve again after PostgreSQL came back")
        # the same processes: nothing was restarted
        assert server.process.poll() is None
        assert (server.process.pid, worker_pids(server)) == (master, workers)

        for _ in range(4):  # every worker, every pooled connection, recovered
            assert api.http.get("/api/events").status_code == 200
            assert api.http.get("/api/health").json()["database"] == "ok"
        again = api.http.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1},
                              headers=later["headers"])
        assert again.status_code == 201, again.text
        assert again.json()["event"]["availableTickets"] == 7
        listed = api.http.get(f"/api/events/{event['id']}").json()
        assert listed["availableTickets"] == 7

        # and the notification pools deliver again: the booking made after the outage is sent
        def delivered():
            notes = api.http.get("/api/notifications", headers=later["headers"]).json()
            return notes and all(n["status"] == "SENT" for n in notes)

        support.wait_until(delivered, 20, 0.2, "the post-outage booking's notification to be SENT")

        # the pre-outage booking's too, even when the outage cut its delivery after the
        # claim: the claim's lease (NOTIFY_CLAIM_TIMEOUT_SECONDS) runs out and a sweep sends it
        def kinds():
            return [(n["kind"], n["status"]) for n in api.http.get("/api/notifications", headers=customer["headers"]).json()]

        support.wait_until(lambda: kinds() == [("BOOKING_CONFIRMED", "SENT")], 20, 0.2,
                           "the pre-outage booking's notification to be SENT")
    finally:
        code = server.stop()
    assert code == 0
    assert support.invariant_violations(url) == []

    # The background loops said so once a round, in one line each, not a traceback.
    records = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines() if line.startswith("{")]
    failed = [r for r in records if r["message"].startswith(("hold sweep failed", "notification sweep failed"))]
    assert {r["message"].split(" failed")[0] for r in failed} == {"hold sweep", "notification sweep"}, failed
    for record in failed:
        assert "failed, the next round tries again: " in record["message"] and "exc_info" not in record, record
    # and each refused request in one line with the driver's reason
    refused = [r["message"] for r in records if r["message"].startswith("database unavailable: ")]
    # A request that finds its pooled connection dead before a sweep has noticed the outage
    # gives the server's closing; the others, the refused connect.
    assert refused and all("OperationalError: connection to server" in message
                           or "OperationalError: server closed the connection unexpectedly" in message
                           for message in refused), refused


def test_an_email_sent_as_postgresql_goes_away_is_recorded_once_it_is_back_and_not_sent_again(cluster, tmp_path):
    """The confirmation goes out (after a delivery delay) while the database is down:
    its SENT mark is tried again every second, so once PostgreSQL is back it is recorded,
    before the claim's lease runs out and a sweep would send it again. The log has no
    traceback."""
    url = cluster.create_database("eventbook")
    support.migrate(url)
    log_path = tmp_path / "server.log"
    server = support.Server(url, workers=1, threads=4, log_path=log_path,
                            env={"NOTIFY_DELIVERY_DELAY_MS": "1500", "NOTIFY_CLAIM_TIMEOUT_SECONDS": "8",
                                 "NOTIFY_SWEEP_SECONDS": "0.3", "DB_POOL_TIMEOUT": "5"})
    server.start()
    try:
        api = support.Api(server.url)
        organizer, customer = api.user("ORGANIZER"), api.user("CUSTOMER")
        event = new_event(api, organizer)
        booked = api.http.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1},
                               headers=customer["headers"])
        assert booked.status_code == 201, booked.text
        engine = sa.create_engine(support._normalized(url))
        with engine.connect() as connection:
            support.wait_until(lambda: connection.scalar(sa.text(
                "SELECT count(*) FROM notifications WHERE claim_token IS NOT NULL")), 5, 0.05, "the email claimed")
        engine.dispose()
        cluster.stop("fast")  # within the 1.5 s the claimed email waits before it is sent
        sent = f"Booking confirmation email sent to {customer['email']}"
        support.wait_until(lambda: sent in log_path.read_text(), 10, 0.1, "the email sent while the database is down")
        time.sleep(2)  # the mark fails, and is tried again
        cluster.start()

        def recorded():
            try:
                notes = api.http.get("/api/notifications", headers=customer["headers"]).json()
            except httpx.HTTPError:
                return None
            return isinstance(notes, list) and [(n["kind"], n["status"]) for n in notes] == [("BOOKING_CONFIRMED", "SENT")]

        support.wait_until(recorded, 10, 0.2, "the email recorded as SENT")
        time.sleep(10)  # past the claim's lease: a batch that had given up would be sent again by a sweep now
        assert log_path.read_text().count(sent) == 1
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert [r for r in records if "exc_info" in r or "Traceback" in r["message"]] == []


def test_a_restart_while_nobody_asks_costs_no_request_an_error(cluster, tmp_path):
    """PostgreSQL restarts while the app is idle (only its background loops run): the
    first requests afterwards, signed in and writing, are served, not answered 503 by a
    pooled connection from before the restart, in either of the app's pools."""
    url = cluster.create_database("eventbook")
    support.migrate(url)
    server = support.Server(url, workers=2, threads=4, log_path=tmp_path / "server.log",
                            env={"NOTIFY_SWEEP_SECONDS": "0.3", "HOLD_SWEEP_SECONDS": "0.3"})
    server.start()
    try:
        api = support.Api(server.url)
        organizer, customers = api.user("ORGANIZER"), [api.user("CUSTOMER") for _ in range(6)]
        event = new_event(api, organizer)
        for _ in range(8):  # every worker's pools hold connections from before the restart
            assert api.http.get("/api/bookings/my-bookings", headers=organizer["headers"]).status_code == 200
        cluster.stop("fast")
        cluster.start()
        time.sleep(2)  # the background loops of every worker meet the restart first
        answers = [api.http.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1},
                                 headers=customer["headers"]) for customer in customers]
        assert [answer.status_code for answer in answers] == [201] * 6, [answer.text for answer in answers]
    finally:
        assert server.stop() == 0
