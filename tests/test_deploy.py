"""What the platform does with a clean copy of the repository: run the release command
against a fresh database, start the web command with PORT set, wait for the health
check, serve real traffic, and on redeploy send SIGTERM — a clean exit, nothing lost.

The copy holds only the files git knows (tracked, or new and not ignored): no .env,
no instance/ directory, no virtualenv. The build step (`pip install .`) is stood in
for by the test virtualenv, whose bin directory is put first on PATH so that the
Procfile's commands run exactly as written."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from dotenv import dotenv_values

from config import normalize_database_url
from tests import support
from tests.support import in_days

SECRET = "deploy-test-secret-" + "x" * 40
RELEASE = "flask --app wsgi db upgrade"
WEB = "gunicorn wsgi:app -c gunicorn.conf.py"
DEFAULT_GRACEFUL_TIMEOUT = 20  # gunicorn.conf.py's default for GUNICORN_GRACEFUL_TIMEOUT


def procfile():
    processes = {}
    for line in (support.ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


# -- the files the platform reads ----------------------------------------------------


def test_procfile_declares_release_and_web():
    assert procfile() == {"release": RELEASE, "web": WEB}


def test_render_blueprint_declares_the_service_database_and_secrets():
    blueprint = yaml.safe_load((support.ROOT / "render.yaml").read_text())
    [web] = [s for s in blueprint["services"] if s["type"] == "web"]
    assert web["runtime"] == "python"
    assert web["buildCommand"] == "pip install ."
    assert web["preDeployCommand"] == procfile()["release"]
    assert web["startCommand"] == procfile()["web"]
    assert web["healthCheckPath"] == "/api/health"
    env = {item["key"]: item for item in web["envVars"] if "key" in item}

    [database] = blueprint["databases"]
    assert env["DATABASE_URL"]["fromDatabase"] == {"name": database["name"], "property": "connectionString"}
    assert env["JWT_SECRET_KEY"] == {"key": "JWT_SECRET_KEY", "generateValue": True}
    assert str(env["PROXY_FIX_X_FOR"]["value"]) == "1"
    assert str(env["PYTHON_VERSION"]["value"]).startswith("3.11.")
    assert "PORT" not in env  # the platform sets it

    # every variable it sets is a setting the app (or gunicorn) reads
    settings = set(dotenv_values(support.ROOT / ".env.example")) | {"PYTHON_VERSION"}
    assert set(env) <= settings, set(env) - settings
    for item in env.values():  # each has exactly one source
        assert len(set(item) & {"value", "fromDatabase", "fromService", "generateValue", "sync"}) == 1, item

    # Render waits maxShutdownDelaySeconds (default 30) after SIGTERM: gunicorn must be done before
    graceful = int(env.get("GUNICORN_GRACEFUL_TIMEOUT", {}).get("value", DEFAULT_GRACEFUL_TIMEOUT))
    assert graceful < web.get("maxShutdownDelaySeconds", 30)

    # the rate limits the README advertises, whatever WEB_CONCURRENCY and numInstances:
    # counted in a Key Value instance the blueprint provisions, not in each worker's memory
    source = env["RATELIMIT_STORAGE_URI"]["fromService"]
    assert source["type"] == "keyvalue" and source["property"] == "connectionString"
    [store] = [s for s in blueprint["services"] if s["name"] == source["name"] and s["type"] == "keyvalue"]
    assert store["ipAllowList"] == []  # internal only


# -- a clean copy, and the platform's environment ------------------------------------


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory):
    """The files git knows, copied to a new directory (what a build starts from)."""
    listed = subprocess.run(["git", "-C", str(support.ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    copy = tmp_path_factory.mktemp("deploy") / "app"
    for name in sorted({n for n in listed.decode().split("\0") if n}):
        source = support.ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for needed in ("Procfile", "render.yaml", ".env.example", "wsgi.py", "gunicorn.conf.py", "config.py",
                   "migrations/env.py", "eventbook/__init__.py"):
        assert (copy / needed).is_file(), f"{needed} is not in the repository (git ls-files)"
    for absent in (".env", "instance", ".venv"):
        assert not (copy / absent).exists()
    return copy


# Everything an inherited environment could set for the app: the platform sets only what it is told.
SETTINGS = set(dotenv_values(support.ROOT / ".env.example")) | {"FLASK_APP", "FLASK_DEBUG", "PYTHONPATH",
                                                                 "ADMIN_PASSWORD"}


def platform_env(**values):
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({key: str(value) for key, value in values.items()})
    return env


def run_release(copy, env):
    return subprocess.run(shlex.split(procfile()["release"]), cwd=copy, env=env, capture_output=True, text=True,
                          timeout=180)


class Web:
    """The Procfile's web command, run in the copy."""

    def __init__(self, copy, env, log_path):
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.process = subprocess.Popen(shlex.split(procfile()["web"]), cwd=copy, env=env, stdout=out,
                                            stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout=60):
        def healthy():
            if self.process.poll() is not None:
                raise AssertionError(f"the web command exited with {self.process.returncode}:\n"
                                     f"{self.log_path.read_text()[-3000:]}")
            try:
                response = httpx.get(f"{self.url}/api/health", verify=support.SSL, timeout=2)
            except httpx.HTTPError:
                return None
            return response if response.status_code == 200 else None

        return support.wait_until(healthy, timeout, 0.1, f"the web command to answer /api/health on {self.port}")

    def sigterm(self, timeout):
        """SIGTERM to the master (what the platform sends); (exit code, seconds taken)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout + 15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the web command did not exit within {timeout + 15}s of SIGTERM") from None
        return code, time.monotonic() - started

    def kill(self):
        if self.process.poll() is None:
            for pid in support._children(self.process.pid) + [self.process.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait(10)


@pytest.fixture
def fresh_database(backend, tmp_path):
    """(URL as the platform hands it out, URL for this test to look inside) of an empty,
    never migrated database: postgres://... on PostgreSQL, a new file on SQLite."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'deploy.db'}"
        yield url, url
        return
    name = f"eventbook_deploy_{uuid.uuid4().hex[:12]}"
    engine = support._admin_engine(support.PG_BASE_URL)
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = sa.engine.make_url(normalize_database_url(support.PG_BASE_URL)).set(database=name)
    platform_url = url.set(drivername="postgres").render_as_string(hide_password=False)
    assert platform_url.startswith("postgres://")
    try:
        yield platform_url, url.render_as_string(hide_password=False)
    finally:
        support.drop_database(url.render_as_string(hide_password=False))


def email_lines(log_path):
    """{notification id: delivery log lines} from a JSON log."""
    found = {}
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("logger") == "eventbook.email" and "notification_id" in entry:
            found[entry["notification_id"]] = found.get(entry["notification_id"], 0) + 1
    return found


def test_the_copy_runs_its_own_code(clean_copy):
    out = subprocess.run([sys.executable, "-c", "import config, eventbook; print(config.__file__); "
                          "print(eventbook.__file__)"], cwd=clean_copy, env=platform_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert all(Path(path).resolve().is_relative_to(clean_copy.resolve()) for path in out), out


@pytest.mark.slow
def test_release_then_web_then_sigterm_loses_nothing(clean_copy, fresh_database, tmp_path):
    platform_url, url = fresh_database
    engine = sa.create_engine(normalize_database_url(url))
    try:
        run(clean_copy, platform_url, url, engine, tmp_path)
    finally:
        engine.dispose()


def run(copy, platform_url, url, engine, tmp_path):
    base = {"DATABASE_URL": platform_url, "JWT_SECRET_KEY": SECRET}

    # release: the migrations, on an empty database; again on the next deploy (no-op)
    assert "users" not in sa.inspect(engine).get_table_names()
    for attempt in (1, 2):
        release = run_release(copy, platform_env(**base))
        assert release.returncode == 0, f"release #{attempt} failed:\n{release.stdout}\n{release.stderr}"
    assert {"users", "events", "bookings", "notifications", "alembic_version"} <= set(
        sa.inspect(engine).get_table_names())

    # web, with the platform's PORT; deliveries slowed so that SIGTERM lands while they are pending
    port = support.free_port()
    env = platform_env(**base, PORT=port, HOST="127.0.0.1", BCRYPT_ROUNDS=4, NOTIFY_DELIVERY_DELAY_MS=8000)
    first_log = tmp_path / "web-1.log"
    web = Web(copy, env, first_log)
    try:
        health = web.wait_healthy().json()
        assert health["status"] == "ok" and health["database"] == "ok"
        assert {"pending", "failed", "inFlight", "workers", "queueCapacity"} <= set(health["jobs"]), health
        api = support.Api(web.url)
        organizer = api.user("ORGANIZER")
        customers = [api.user("CUSTOMER") for _ in range(12)]
        event = api.http.post("/api/events", json={"title": "Launch party", "description": "Deployed",
                                                   "date": in_days(10), "location": "Render",
                                                   "totalTickets": 100}, headers=organizer["headers"])
        assert event.status_code == 201, event.text
        event_id = event.json()["id"]
        first = api.http.post("/api/bookings", json={"eventId": event_id, "ticketsCount": 2},
                              headers=customers[0]["headers"])
        assert first.status_code == 201, first.text

        # more bookings in flight while SIGTERM arrives: each one is either answered or never started
        answers, lock = [], threading.Lock()

        def book(customer):
            try:
                response = httpx.post(f"{web.url}/api/bookings", verify=support.SSL, json={"eventId": event_id, "ticketsCount": 1},
                                      headers=customer["headers"], timeout=30)
                outcome = response.status_code
            except httpx.HTTPError as exc:
                outcome = exc.__class__.__name__
            with lock:
                answers.append(outcome)

        with ThreadPoolExecutor(len(customers) - 1) as pool:
            futures = [pool.submit(book, customer) for customer in customers[1:]]
            support.wait_until(lambda: answers, 10, 0.005, "a first answer")
            code, took = web.sigterm(DEFAULT_GRACEFUL_TIMEOUT)
            for future in futures:
                future.result()
    finally:
        web.kill()
    assert code == 0, first_log.read_text()[-3000:]
    assert took < DEFAULT_GRACEFUL_TIMEOUT, f"took {took:.1f}s to stop"
    assert all(a in (201, "ConnectError", "RemoteProtocolError", "ReadError") for a in answers), answers

    with engine.connect() as connection:
        confirmed = connection.execute(sa.text(
            "SELECT id, user_id FROM bookings WHERE event_id = :e AND status = 'CONFIRMED'"), {"e": event_id}).all()
        notes = connection.execute(sa.text(
            "SELECT booking_id, status, claimed_until, claim_token FROM notifications "
            "WHERE kind = 'BOOKING_CONFIRMED'")).all()
    # every booking that was made was answered 201: no request cut off half-way
    assert len(confirmed) == 1 + answers.count(201), (confirmed, answers)
    assert sorted(n.booking_id for n in notes) == sorted(b.id for b in confirmed)
    # at exit each notification is sent, or pending and handed back (not held by a dead process's lease)
    for note in notes:
        assert note.status == "SENT" or (note.status == "PENDING" and note.claimed_until is None), note
    assert any(note.status == "PENDING" for note in notes), "SIGTERM came too late to test the hand-back"
    assert support.invariant_violations(url) == []

    # the next start (the redeploy) delivers what was left, each once
    second_log = tmp_path / "web-2.log"
    env = platform_env(**base, PORT=support.free_port(), HOST="127.0.0.1", BCRYPT_ROUNDS=4)
    web = Web(copy, env, second_log)
    try:
        web.wait_healthy()

        def all_sent():
            with engine.connect() as connection:
                statuses = connection.execute(sa.text(
                    "SELECT status FROM notifications WHERE kind = 'BOOKING_CONFIRMED'")).scalars().all()
            return len(statuses) == len(confirmed) and all(s == "SENT" for s in statuses)

        support.wait_until(all_sent, 30, 0.2, "every BOOKING_CONFIRMED notification to be SENT")
        mine = httpx.get(f"{web.url}/api/notifications", verify=support.SSL, headers=customers[0]["headers"], timeout=10).json()
        assert [(n["kind"], n["status"]) for n in mine] == [("BOOKING_CONFIRMED", "SENT")]
        code, _ = web.sigterm(DEFAULT_GRACEFUL_TIMEOUT)
    finally:
        web.kill()
    assert code == 0

    with engine.connect() as connection:
        ids = connection.execute(sa.text(
            "SELECT id FROM notifications WHERE kind = 'BOOKING_CONFIRMED'")).scalars().all()
    delivered = email_lines(first_log)
    for note_id, count in email_lines(second_log).items():
        delivered[note_id] = delivered.get(note_id, 0) + count
    assert delivered == {note_id: 1 for note_id in ids}, "each email sent exactly once"


# -- a bad environment stops the deploy at once, saying why ---------------------------------


def config_message(output):
    lines = [line for line in output.splitlines() if line.startswith("eventbook: invalid configuration")]
    assert len(lines) == 1, f"expected one configuration line:\n{output[-3000:]}"
    return lines[0]


def run_web_expecting_failure(copy, env, tmp_path):
    log_path = tmp_path / f"web-{uuid.uuid4().hex[:6]}.log"
    web = Web(copy, env, log_path)
    try:
        code = web.process.wait(30)
    except subprocess.TimeoutExpired:
        web.kill()
        raise AssertionError(f"the web command kept running with a bad configuration:\n"
                             f"{log_path.read_text()[-3000:]}") from None
    return code, log_path.read_text()


@pytest.mark.slow
def test_web_command_without_a_secret_exits_naming_it(clean_copy, tmp_path):
    env = platform_env(DATABASE_URL=f"sqlite:///{tmp_path / 'unused.db'}", PORT=support.free_port(),
                       HOST="127.0.0.1")
    code, output = run_web_expecting_failure(clean_copy, env, tmp_path)
    assert code != 0
    assert "JWT_SECRET_KEY" in config_message(output)
    assert "Traceback" not in output


@pytest.mark.slow
def test_web_command_names_a_bad_setting(clean_copy, tmp_path):
    env = platform_env(DATABASE_URL=f"sqlite:///{tmp_path / 'unused.db'}", PORT=support.free_port(),
                       HOST="127.0.0.1", JWT_SECRET_KEY=SECRET, NOTIFY_WORKERS="abc", LOG_LEVEL="chatty")
    code, output = run_web_expecting_failure(clean_copy, env, tmp_path)
    assert code != 0
    message = config_message(output)
    assert "NOTIFY_WORKERS must be an integer, got 'abc'" in message
    assert "LOG_LEVEL" in message and "JWT_SECRET_KEY" not in message


def test_release_command_logs_one_json_object_per_line(clean_copy, tmp_path):
    release = run_release(clean_copy, platform_env(DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}",
                                                   JWT_SECRET_KEY=SECRET, LOG_FORMAT="json"))
    assert release.returncode == 0, release.stderr
    lines = [json.loads(line) for line in release.stderr.splitlines() if line.strip()]
    assert any(line["logger"] == "alembic.runtime.migration" and line["message"].startswith("Running upgrade")
               for line in lines), release.stderr


def test_release_command_without_a_secret_exits_naming_it(clean_copy, tmp_path):
    database = tmp_path / "never.db"
    release = run_release(clean_copy, platform_env(DATABASE_URL=f"sqlite:///{database}"))
    assert release.returncode != 0
    assert "JWT_SECRET_KEY" in config_message(release.stderr)
    assert "Traceback" not in release.stderr
    assert not database.exists() or "users" not in sa.inspect(sa.create_engine(f"sqlite:///{database}")) \
        .get_table_names()


@pytest.mark.parametrize("url, says", [
    (f"postgres://postgres@127.0.0.1:{support.free_port()}/eventbook", "Connection refused"),
    ("postgres://eventbook:s3cret@db.invalid:5432/eventbook", "db.invalid"),
], ids=["refused", "unknown-host"])
def test_release_command_with_an_unreachable_database_says_so_in_one_line(clean_copy, url, says):
    release = run_release(clean_copy, platform_env(DATABASE_URL=url, JWT_SECRET_KEY=SECRET))
    assert release.returncode != 0
    lines = [line for line in release.stderr.splitlines() if line.startswith("eventbook:")]
    assert len(lines) == 1 and lines[0].startswith("eventbook: cannot connect to DATABASE_URL"), release.stderr
    assert says in lines[0] and "s3cret" not in release.stderr
    assert "Traceback" not in release.stderr


def test_release_command_refuses_a_url_without_a_database_name(clean_copy):
    """Without one the server would silently use its default database."""
    release = run_release(clean_copy, platform_env(DATABASE_URL="postgres://eventbook@127.0.0.1:5432",
                                                   JWT_SECRET_KEY=SECRET))
    assert release.returncode != 0
    message = config_message(release.stderr)
    assert "DATABASE_URL must name a database" in message and "127.0.0.1:5432/eventbook" in message
    assert "Traceback" not in release.stderr
