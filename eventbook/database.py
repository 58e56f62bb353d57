"""Engine settings per database, connecting (or saying in one line why not), the
request's auto-commit connection, deadlock retries and prepared statements.

SQLite: WAL (readers never wait for the writer), foreign keys on, a busy timeout, and
write transactions that begin IMMEDIATE: the driver opens the transaction with
`BEGIN IMMEDIATE` at the first INSERT/UPDATE/DELETE, so a writer queues for the lock
up front instead of failing with "database is locked" when it tries to upgrade.
PostgreSQL: a connection pool that is thrown away when the server drops its
connections, so the app recovers by itself when the database comes back, and a
second pool of auto-commit connections (`binds`).
"""

import logging
import random
import re
import sqlite3
import sys
import time
from contextlib import nullcontext
from functools import wraps
from pathlib import Path

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import String, event, make_url
from sqlalchemy.dialects.postgresql import psycopg2
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeoutError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import GenericFunction

log = logging.getLogger(__name__)

# The database cannot be reached, or the pool has no connection to give: a request gets
# 503, a background round tries again.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


def reason(exc):
    """The first line of what the database (or driver) said about `exc`, for a one-line
    log or exit message; the exception's class name when it said nothing."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def connect(engine):
    """A connection to the database, or the end of the command with one line saying why
    not (the `flask` commands and migrations/env.py)."""
    try:
        return engine.connect()
    except DBAPIError as exc:  # SQLite's DatabaseError among them: a file that is not a database
        # One line for the deploy log, as for the other settings, not a traceback.
        check = ("that it names an SQLite database file" if engine.dialect.name == "sqlite" else
                 "that the server is running and reachable from here, and the URL's host, port, user, password "
                 "and database")
        sys.exit(f"eventbook: cannot connect to DATABASE_URL ({engine.url.render_as_string(hide_password=True)}): "
                 f"{reason(exc)}. Check {check}.")


def engine_options(config):
    return {**_options(config), "hide_parameters": True}  # no email or password hash in logs


def _options(config):
    uri = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        path = make_url(uri).database  # None for sqlite://, ":memory:" for sqlite:///:memory:
        connect_args = {"timeout": 30, "isolation_level": "IMMEDIATE", "check_same_thread": False}
        if not path or path == ":memory:":  # Flask-SQLAlchemy gives it one shared connection (StaticPool)
            return {"connect_args": connect_args}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {**_pool(config), "connect_args": connect_args}
    return {
        **_pool(config),
        # No pre-ping (a round trip on every checkout): a connection that the server
        # dropped fails once, SQLAlchemy then discards the whole pool, the request gets a
        # 503 and the next one reconnects.
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 5, **_session_settings(config)},
    }


def _session_settings(config):
    """The server settings each PostgreSQL connection starts with (libpq's `options`).

    Times in JSON the server writes (notification parameters) come out in UTC. The
    prepared statements (`Prepared`) keep one generic plan: left to choose, PostgreSQL
    plans each of their first five executions, and a long-lived connection can go back
    to planning on every execution when the tables' statistics change. Other queries
    are planned each time anyway: only prepared statements are cached (and PL/pgSQL's;
    the app's one function runs no query). A statement waits DB_LOCK_TIMEOUT_SECONDS at
    most for a row lock; a statement runs, and a transaction sits idle,
    DB_STATEMENT_TIMEOUT_SECONDS at most (then 503).

    None behind a pooler in transaction mode (DB_PREPARED_STATEMENTS off): PgBouncer
    refuses a connection that asks for settings, and could not keep them anyway, since
    each transaction may run on another server connection. The limits are then the
    database's or the role's own (docs/operations.md, "Behind a connection pooler")."""
    if not config["DB_PREPARED_STATEMENTS"]:
        return {}
    return {"options": " ".join((
        "-c timezone=UTC -c plan_cache_mode=force_generic_plan",
        f"-c lock_timeout={config['DB_LOCK_TIMEOUT_SECONDS']}s",
        f"-c statement_timeout={config['DB_STATEMENT_TIMEOUT_SECONDS']}s",
        f"-c idle_in_transaction_session_timeout={config['DB_STATEMENT_TIMEOUT_SECONDS']}s"))}


def binds(config):
    """SQLALCHEMY_BINDS. On PostgreSQL, a second pool whose connections are opened in
    auto-commit mode, for `autocommit()`, so that no connection is switched to
    auto-commit and back on every request. The pool takes DB_POOL_SIZE connections and
    no overflow: only request threads use it, one at a time each."""
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return {}
    options = {**engine_options(config), "max_overflow": 0}
    return {"autocommit": {"url": config["SQLALCHEMY_DATABASE_URI"], **options,
                           "isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None}}


def dispose():
    """Close every pooled connection of the app's engines (tests)."""
    from eventbook.extensions import db

    for engine in db.engines.values():
        engine.dispose()


def _pool(config):
    return {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_POOL_SIZE"],
        "pool_timeout": config["DB_POOL_TIMEOUT"],
    }


def begin_write():
    """Before a read under a row lock (`with_for_update`) that decides a write: on SQLite,
    whose whole database is the lock, BEGIN IMMEDIATE now, which the driver would
    otherwise only send before the first write, after the read."""
    from eventbook.extensions import db

    connection = db.session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@event.listens_for(Engine, "handle_error")
def _drop_the_other_pool(context):
    """A connection the server dropped: SQLAlchemy discards its own pool's connections
    (they were opened before the server went away); the app's other pool (`binds`), to
    the same server, has such connections too, and without this each of its idle ones
    would fail a request, however long after the server came back."""
    if context.is_disconnect and has_app_context():
        from eventbook.extensions import db

        for engine in db.engines.values():
            if engine is not context.engine:
                engine.dispose()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value):
    return value.lower().replace("\u03c2", "\u03c3") if isinstance(value, str) else value


class unicode_lower(GenericFunction):  # noqa: N801 (an SQL function's name)
    """`lower(text)` for every alphabet: PostgreSQL's own `lower()`; on SQLite, whose
    `lower()` changes only ASCII letters, Python's `str.lower` (registered above). A
    final sigma is a sigma on both (Python lower-cases a word's last Σ to ς, PostgreSQL
    to σ): text lower-cased by either matches text lower-cased by the other."""

    type = String()
    inherit_cache = True


@compiles(unicode_lower, "postgresql")
def _postgresql_lower(element, compiler, **kw):
    return f"replace(lower({compiler.process(element.clauses, **kw)}), '\u03c2', '\u03c3')"


def autocommit():
    """A connection on which each statement commits by itself, for a `with` block: for
    reads that need no transaction (the token check), and for a change that is one
    statement (a booking, with or without an Idempotency-Key). A request checks one out
    the first time and keeps it, so the token check and the booking share it.

    A request never holds two pooled connections: when its session begins a
    transaction, the auto-commit connection goes back to the pool first
    (`_one_connection_per_request`), and while that transaction is open this gives the
    session's own connection. Holding two, requests that each kept one and waited for a
    second could take the whole pool and wait on each other until DB_POOL_TIMEOUT. So
    nothing inside the `with` block may use the session: that would close the
    connection the block is using."""
    from eventbook.extensions import db

    if not has_request_context():
        return _connect(db)
    connection = g.get("autocommit_connection")
    if connection is not None and not connection.invalidated:
        return nullcontext(connection)  # kept: no session transaction has begun since
    if db.session.registry.has() and db.session().in_transaction():  # has(): no session made just to ask
        return nullcontext(db.session.connection())
    connection = g.autocommit_connection = _connect(db)
    return nullcontext(connection)


def _connect(db):
    engine = db.engines.get("autocommit")  # PostgreSQL: connections already in auto-commit
    if engine is not None:
        return engine.connect()
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def end_session(_exc=None):
    """teardown_request: end the request's session, as Flask-SQLAlchemy's own teardown
    would a moment later. If the server dropped the connection after the response was
    made, the rollback that ends an open transaction fails: that must not replace the
    response with a 500 (nothing is left to undo: the connection is gone, and
    SQLAlchemy has discarded it)."""
    from eventbook.extensions import db

    try:
        db.session.remove()
    except UNAVAILABLE as lost:
        log.warning("database connection lost at the end of a request: %s", reason(lost))
        db.session.registry.clear()


def release_autocommit(_exc=None):
    """teardown_request: give the request's auto-commit connection back to the pool."""
    connection = g.pop("autocommit_connection", None)
    if connection is not None:
        connection.close()


@event.listens_for(Session, "after_transaction_create")
def _one_connection_per_request(_session, transaction):
    """A session transaction begins (before it checks out its connection): the request's
    auto-commit connection goes back to the pool."""
    if transaction.parent is None and has_request_context():
        release_autocommit()


DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for the victim of a deadlock


def retry_deadlocks(function):
    """Run a write (a service function that commits) again, up to twice, when
    PostgreSQL chose it as the victim of a deadlock: it was rolled back whole, so
    running it again is safe, and the client sees the outcome, never the deadlock.
    Writers lock rows in one order (`eventbook.inventory`), so this is for the rare
    crossings that order does not rule out.

    It pauses first (a random 50 to 100 ms, twice that before the third try): the
    survivor was waiting for a row the victim held, and must be let take it. Run again
    at once, the victim can lock that row again before the survivor's backend wakes,
    and wait for the survivor's other row: the same deadlock, found a second later."""

    @wraps(function)
    def retried(*args, **kwargs):
        from eventbook.extensions import db

        for attempt in range(3):
            try:
                return function(*args, **kwargs)
            except OperationalError as failure:
                if getattr(failure.orig, "pgcode", None) != DEADLOCK or attempt == 2:
                    raise
                db.session.rollback()
                time.sleep(random.uniform(0.05, 0.1) * 2**attempt)

    return retried


PARAMETER = re.compile(r"\$(\d+)(?!\d)")  # $n in SQL compiled for PostgreSQL


_DIALECT = psycopg2.dialect(paramstyle="numeric_dollar")  # what Prepared compiles for


def _numbered(statement):
    """`statement` compiled for PostgreSQL: its SQL, with its own constants written in
    and the request's values as $1, $2, ... (one per name); and those values' (name,
    type), in that order."""
    compiled = statement.compile(dialect=_DIALECT)
    binds = [compiled.binds[key] for key in compiled.positiontup]  # $1, $2, ... of the compiled SQL
    request = [bind for bind in binds if bind.required]
    number = {bind.key: n for n, bind in enumerate(request, 1)}

    def written(match):
        bind = binds[int(match.group(1)) - 1]
        return f"${number[bind.key]}" if bind.required else bind.type.literal_processor(_DIALECT)(bind.value)

    return PARAMETER.sub(written, str(compiled)), [(bind.key, bind.type) for bind in request]


def _named(sql, parameters):
    """SQL of `_numbered` with its values by name, for a text() construct (in
    parentheses: `(:name)::integer[]`, where `:name::` would not be one)."""
    return PARAMETER.sub(lambda match: f"(:{parameters[int(match.group(1)) - 1][0]})", sql)


class Prepared:
    """A statement PostgreSQL parses and plans once per connection (`PREPARE`), then only
    executes (`EXECUTE`): for the sales statements, whose plans cost the server more
    than running them, and the token check that every request runs
    (docs/performance.md). Once: the app's connections set `plan_cache_mode` to
    `force_generic_plan` (`_options`).

    The statement's own constants are written into the SQL it prepares, and only the
    request's values are its parameters: after a few executions PostgreSQL may run one
    generic plan for every value, and that plan must still see, say, `status =
    'CONFIRMED'` to use a partial index `WHERE status = 'CONFIRMED'` (with `status = $7`
    it would read every booking of the event instead).

    `execute(connection, values)` returns the statement's result: EXECUTE is a typed
    `text()` construct (each parameter and column with the statement's own type), so Core
    converts the values and columns as for the statement itself. Elsewhere than on
    PostgreSQL, or with DB_PREPARED_STATEMENTS off (a pooler in transaction mode, which
    cannot keep a connection's prepared statements), the statement runs as it is.

    `first`: SQL run just before the statement (text, a construct, or a list of them), on
    PostgreSQL in the same round trip and the same transaction (several statements in
    one query string are one transaction, and in READ COMMITTED each reads what was
    committed when it starts), with the statement's parameters: a lock that the
    statement then runs under, rows it then finds."""

    def __init__(self, name, statement, first=None):
        from sqlalchemy import bindparam, column, text

        self.name, self.statement = name, statement
        self.sql, self.parameters = _numbered(statement)  # the request's values: $1, $2, ...
        types = ", ".join(kind.compile(dialect=_DIALECT) for _, kind in self.parameters)
        self.prepare = f"PREPARE {name} ({types}) AS {self.sql}"
        first = "; ".join(part if isinstance(part, str) else _named(*_numbered(part))
                          for part in ([first] if isinstance(first, str) else first or ()))

        def typed(sql):
            return (
                text(f"{first}; {sql}" if first else sql)
                .bindparams(*(bindparam(key, type_=kind) for key, kind in self.parameters))
                .columns(*(column(selected.key, selected.type) for selected in statement.selected_columns))
            )

        self.execution = typed(f"EXECUTE {name}({', '.join(f':{key}' for key, _ in self.parameters)})")
        self.unprepared = typed(_named(self.sql, self.parameters)) if first else statement

    def execute(self, connection, values):
        if connection.dialect.name != "postgresql":
            return connection.execute(self.statement, values)
        if not current_app.config["DB_PREPARED_STATEMENTS"]:
            return connection.execute(self.unprepared, values)
        prepared = connection.connection.info.setdefault("eventbook.prepared", set())  # per server connection
        if self.name not in prepared:
            connection.exec_driver_sql(self.prepare.replace("%", "%%"))
            prepared.add(self.name)
        return connection.execute(self.execution, values)
