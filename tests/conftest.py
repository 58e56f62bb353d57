"""Fixtures. Every test that takes `app` or `client` runs twice: on SQLite and on
PostgreSQL (TEST_DATABASE_URL). In CI an unreachable PostgreSQL fails the run;
locally, without TEST_DATABASE_URL, the PostgreSQL half is deselected, with one message.
A test marked `postgresql_only("why")` exists only on PostgreSQL. In CI any skipped test
fails the run: a skip there would hide a service or a tool that CI must provide.

Each backend gets one migrated database per session; every test starts from empty
tables, and after every test the ticket invariant is checked (support.INVARIANT). A test
process keeps its apps from one test to the next (see `app`).
"""

import collections
import functools
import gc
import itertools
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from eventbook import create_app, database, logs
from eventbook.extensions import db
from tests import support
from tests.smtp import SMTPServer


@functools.cache
def postgres_missing():
    """None when TEST_DATABASE_URL answers, else why not (asked once per session)."""
    return support.check_postgres()


def pytest_configure(config):
    config.addinivalue_line("markers", "postgresql_only(reason): the test is not generated for SQLite, for this reason")
    config.addinivalue_line("markers", "own_app: the test changes its app (routes, hooks) or drops its connections: "
                                       "it is made for it alone")


def pytest_collection_finish(session):
    """What the imports made lives as long as the session: the garbage collector need
    not walk it again after each test's app (gc.freeze, as a preforking server does)."""
    gc.freeze()


def pytest_report_header(config):
    reason = postgres_missing()
    return f"eventbook backends: sqlite, postgresql ({'not run: ' + reason if reason else support.PG_BASE_URL})"


@pytest.hookimpl(trylast=True)  # after pytest's own ordering of the items
def pytest_collection_modifyitems(config, items):
    """Drop the SQLite instance of `postgresql_only` tests and, outside CI without a
    PostgreSQL server, the whole PostgreSQL half (said once, in the summary). Then put
    the modules that start servers (marked slow) first: `make test` gives each process a
    module at a time, so the run ends on short modules, not with one process busy on a
    long one while the other waits."""
    no_postgres = postgres_missing() and not support.IN_CI

    def dropped(item):
        backend = getattr(item, "callspec", None) and item.callspec.params.get("backend")
        if backend == "sqlite":
            return item.get_closest_marker("postgresql_only") is not None
        return backend == "postgresql" and no_postgres

    deselected = [item for item in items if dropped(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not dropped(item)]
    config.stash[POSTGRES_DESELECTED] = sum(1 for item in deselected if item.callspec.params["backend"] == "postgresql")
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


POSTGRES_DESELECTED = pytest.StashKey[int]()
_skipped = []  # the reports of skipped tests (xfails excluded), for the CI guard


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report)


def pytest_sessionfinish(session, exitstatus):
    if support.IN_CI and _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    count = config.stash.get(POSTGRES_DESELECTED, 0)
    if count:
        terminalreporter.write_line(
            f"PostgreSQL half not run ({count} tests deselected): {postgres_missing()}; "
            "set TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres to run it", yellow=True)
    if support.IN_CI and _skipped:
        terminalreporter.write_line(
            f"CI runs every test, and {len(_skipped)} skipped: {', '.join(r.nodeid for r in _skipped[:10])}. "
            "Provide what they need in .ci/run, or mark a test that cannot apply (postgresql_only).", red=True, bold=True)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "postgresql":
        reason = postgres_missing()
        if reason:  # only in CI: elsewhere the PostgreSQL half was deselected
            pytest.fail(f"CI must test PostgreSQL: {reason}")
    return request.param


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The URL of a Redis server this test session started itself (see support.RedisServer).
    Without the redis-server binary: a failure in CI, a skip with a message elsewhere."""
    server = support.RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except FileNotFoundError as exc:
        if support.IN_CI:
            pytest.fail(f"CI must run the Redis tests: {exc}")
        pytest.skip(f"Redis tests skipped: {exc}")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    """databases(backend) -> the URL of the session's migrated database of that backend,
    made when first asked for. Not a fixture parametrized by `backend` itself: pytest
    would drop it and make another each time a test process passes from one backend to
    the other (at every module)."""
    made = {}

    def database(backend):
        if backend not in made:
            made[backend] = support.create_database(backend, tmp_path_factory.mktemp(backend))
        return made[backend]

    yield database
    for url in made.values():
        support.drop_database(url)


@pytest.fixture
def database_url(backend, databases):
    return databases(backend)


@pytest.fixture
def new_database(backend, tmp_path):
    """Factory of fresh, migrated databases of the current backend (for live servers)."""
    made = []

    def make():
        made.append(support.create_database(backend, tmp_path))
        return made[-1]

    yield make
    for url in made:
        support.drop_database(url)


@pytest.fixture
def config_overrides():
    """Override in a module or test to change the app's config."""
    return {}


# This test process's apps, by database and config overrides, the last used last, and
# the one whose pooled connections are open, if any (see `app`).
_apps = collections.OrderedDict()
KEPT_APPS = 8
_connected = []


@pytest.fixture
def app(request, database_url, config_overrides):
    """The app of this test's database and config overrides. Making one costs about a
    tenth of a second (flask-smorest building the OpenAPI document, most of it), as much
    as many a test, so a test process keeps it for the next test with the same ones and
    hands it on as made: after each test its background threads stop and new ones take
    their place, its rate-limit counts and config are reset, its tables emptied. Its
    pooled connections stay open for the next test until another app is used, or a
    test without an app runs. A test that adds routes or hooks to its app, or has the
    server drop its connections, is marked `own_app` and gets one of its own."""
    key = support.app_key(database_url, config_overrides)
    shared = key is not None and request.node.get_closest_marker("own_app") is None
    if shared and key in _apps:
        app, config = _apps[key]
        _apps.move_to_end(key)
        logs.configure(app)  # this test's stderr, and its level, as create_app does
    else:
        app = create_app(support.test_config(database_url, **config_overrides))
        config = dict(app.config)
        if shared:
            _apps[key] = (app, config)
            while len(_apps) > KEPT_APPS:
                _apps.popitem(last=False)
    if _connected and _connected[0] is not app:
        _disconnect()
    yield app
    support.stop_background(app, close=False)
    violations = support.app_invariant_violations(app)
    support.empty_tables(app)
    if shared:
        support.reset_app(app, config)
        _connected[:] = [app]
    else:
        with app.app_context():
            database.dispose()
    assert not violations, f"ticket invariant broken: {violations}"


def _disconnect():
    with _connected.pop().app_context():
        database.dispose()


@pytest.fixture(autouse=True)
def _kept_connections_closed_without_an_app(request):
    """A test without an app (one that starts servers of its own) first closes the pooled
    connections a kept app left open: PostgreSQL's 100 connections are shared by every
    test process and the servers they start."""
    if _connected and "app" not in request.fixturenames:
        _disconnect()


@pytest.fixture
def client(app):
    return app.test_client()


class Actor:
    def __init__(self, user, token, refresh_token, password):
        self.id = user["id"]
        self.email = user["email"]
        self.role = user["role"]
        self.token = token
        self.refresh_token = refresh_token
        self.password = password
        self.headers = {"Authorization": f"Bearer {token}"}


_numbers = itertools.count(1)


@pytest.fixture
def login(client):
    def login(email, password=support.PASSWORD):
        response = client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return Actor(body["user"], body["token"], body["refreshToken"], password)

    return login


@pytest.fixture
def make_user(client, login):
    """make_user(role="CUSTOMER", email=None) -> Actor, registered and logged in through the API."""

    def make(role="CUSTOMER", email=None, password=support.PASSWORD, name=None):
        email = email or f"{role.lower()}{next(_numbers)}@example.com"
        body = {"email": email, "password": password, "role": role}
        if name:
            body["name"] = name
        response = client.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.get_json()
        return login(email, password)

    return make


@pytest.fixture
def customer(make_user):
    return make_user("CUSTOMER")


@pytest.fixture
def organizer(make_user):
    return make_user("ORGANIZER")


@pytest.fixture
def admin(app, login):
    """An ADMIN, made the only way there is: `flask create-admin`."""
    email = f"admin{next(_numbers)}@example.com"
    result = app.test_cli_runner().invoke(args=["create-admin", email, "--password", support.PASSWORD])
    assert result.exit_code == 0, result.output
    return login(email)


@pytest.fixture
def make_event(client, organizer):
    """make_event(owner=organizer, **fields) -> the created event's JSON."""

    def make(owner=None, **fields):
        body = {"title": "Tech Conf", "description": "Annual tech meetup", "date": support.in_days(30),
                "location": "Convention Center", "totalTickets": 100, **fields}
        response = client.post("/api/events", json=body, headers=(owner or organizer).headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def set_event_date(app):
    """Move an event's date directly in the database (the API refuses past dates), to
    test what happens once an event has started."""

    def move(event_id, when):
        from eventbook.models import Event

        with app.app_context():
            db.session.execute(sa.update(Event).where(Event.id == event_id).values(date=when))
            db.session.commit()

    return move


@pytest.fixture
def expire_hold(app):
    """expire_hold(hold_id): move a hold's expiresAt into the past in the database, as
    time passing would (no sweep runs because of it)."""

    def expire(hold_id):
        from eventbook.models import Hold

        with app.app_context():
            db.session.execute(sa.update(Hold).where(Hold.id == hold_id)
                               .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
            db.session.commit()

    return expire


@pytest.fixture
def wait_for_notifications(client):
    """wait_for_notifications(actor, count, status="SENT") -> the actor's notifications
    once at least `count` of them have that status."""

    def wait(actor, count, status="SENT", timeout=15):
        def ready():
            items = client.get("/api/notifications?perPage=100", headers=actor.headers).get_json()
            return items if sum(1 for n in items if n["status"] == status) >= count else None

        return support.wait_until(ready, timeout, message=f"{count} {status} notifications for {actor.email}")

    return wait


@pytest.fixture
def shop(client):
    """The customer side of the API on this test's client (support.Shop)."""
    return support.Shop(client)


@pytest.fixture
def smtp():
    """A real SMTP server that accepts and records every message (tests.smtp)."""
    with SMTPServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory, request):
    """A live gunicorn (3 workers) on one fresh database of the current backend, shared by
    the tests of a module (each works on its own events and users). A module may set
    LIVE_ENV, a dict of extra environment for the server."""
    from tests import live

    running = live.start(backend, tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1],
                         env=getattr(request.module, "LIVE_ENV", None))
    yield running
    live.stop(running)


@pytest.fixture
def live(server):
    """The module's server, checked alive, its log quoted from this test's start on; the
    invariant is checked after the test."""
    assert server.server.process.poll() is None, f"gunicorn died before this test\n{server.log()}"
    server.log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
    server.broken_before = set(support.invariant_violations(server.database_url))
    yield server
    server.assert_invariant()
