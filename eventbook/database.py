"""Engine settings per database, the request's auto-commit connection, and prepared
statements.

SQLite: WAL (readers never wait for the writer), foreign keys on, a busy timeout, and
write transactions that begin IMMEDIATE: the driver opens the transaction with
`BEGIN IMMEDIATE` at the first INSERT/UPDATE/DELETE, so a writer queues for the lock
up front instead of failing with "database is locked" when it tries to upgrade.
PostgreSQL: a connection pool that is thrown away when the server drops its
connections, so the app recovers by itself when the database comes back, and a
second pool of auto-commit connections (`binds`).
"""

import sqlite3
import weakref
from contextlib import nullcontext
from pathlib import Path

from flask import current_app, g, has_request_context
from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


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
        "connect_args": {"connect_timeout": 5},
    }


def binds(config):
    """SQLALCHEMY_BINDS. On PostgreSQL, a second pool whose connections are opened in
    auto-commit mode, for `autocommit()`. Switching a pooled psycopg2 connection to
    auto-commit and back (psycopg2's set_isolation_level, once each way) cost about
    65 us of CPU a request; these connections never switch. The pool takes
    DB_POOL_SIZE connections and no overflow: only request threads use it, one at a time
    each."""
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


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


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


class Prepared:
    """A Core statement that PostgreSQL parses and plans once per connection (PREPARE),
    then only executes (EXECUTE): for the booking statement, whose three-part WITH
    pgbench ran at 1550 a second unprepared and 2230 prepared (README, Performance).

    `run(connection, values)` gives the rows as dicts of label -> value, typed like the
    statement's columns. With DB_PREPARED_STATEMENTS off (a pooler in transaction mode
    in front of PostgreSQL cannot keep a connection's prepared statements), or on
    another database, the statement is executed as it is.

    EXECUTE goes to the driver's cursor directly, with Core's own type conversions
    for the values and the columns (`_conversions`), and Core's handling of driver
    errors (`_failed`). Core's execution context and result objects cost about 110 us
    of CPU on the booking statement and 40 us on the token check, for statements whose
    text, parameters and columns never change: without them a booking takes 5% fewer
    CPU instructions (tests/perf/instructions.py: 6.13 -> 5.80 million)."""

    def __init__(self, name, statement):
        from sqlalchemy.dialects.postgresql import psycopg2

        dialect = psycopg2.dialect(paramstyle="numeric_dollar")
        compiled = statement.compile(dialect=dialect)
        self.statement = statement
        self.name = name
        order = compiled.positiontup  # the names of $1, $2, ...
        types = ", ".join(compiled.binds[key].type.compile(dialect=dialect) for key in order)
        self.prepare = f"PREPARE {name} ({types}) AS {compiled}"
        # EXECUTE sends the statement's own constants as literals, and the values as
        # the driver's %(name)s parameters
        arguments = (f"%({key})s" if compiled.binds[key].required else _literal(compiled.params[key]) for key in order)
        self.execute = f"EXECUTE {name}({', '.join(arguments)})"
        self._binds = [(key, compiled.binds[key].type) for key in order if compiled.binds[key].required]
        self._columns = [(c.key, c.type) for c in statement.selected_columns]
        self._by_dialect = weakref.WeakKeyDictionary()  # an app's engines; tests make many

    def run(self, connection, values):
        if connection.dialect.name != "postgresql" or not current_app.config["DB_PREPARED_STATEMENTS"]:
            return [dict(row._mapping) for row in connection.execute(self.statement, values)]
        binds, columns = self._conversions(connection.dialect)
        parameters = {key: convert(values[key]) if convert else values[key] for key, convert in binds}
        prepared = connection.connection.info.setdefault("prepared", set())  # per server connection
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            if self.name not in prepared:
                cursor.execute(self.prepare)
                prepared.add(self.name)
            cursor.execute(self.execute, parameters)
            rows = cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as failure:
            self._failed(connection, failure, parameters, cursor)
        finally:
            cursor.close()
        return [
            {key: convert(value) if convert else value for (key, convert), value in zip(columns, row, strict=True)}
            for row in rows
        ]

    def _conversions(self, dialect):
        """Core's converters (or None) of each parameter and column, for this dialect."""
        found = self._by_dialect.get(dialect)
        if found is None:
            found = self._by_dialect[dialect] = (
                [(key, type_.dialect_impl(dialect).bind_processor(dialect)) for key, type_ in self._binds],
                [(key, type_.dialect_impl(dialect).result_processor(dialect, None)) for key, type_ in self._columns],
            )
        return found

    def _failed(self, connection, failure, parameters, cursor):
        """Raise the driver's error as Core would have: wrapped in sqlalchemy.exc
        (IntegrityError, OperationalError... which the callers and the error handlers
        read), and with a lost server connection invalidated, with the rest of its pool.
        This is Core's own (private) handler, the one its execute() calls; setup.cfg
        keeps SQLAlchemy below 2.2 for it, and a test drops the server's connections
        under the prepared statements (tests/test_bookings.py)."""
        connection._handle_dbapi_exception(failure, self.execute, parameters, cursor, None)


def _literal(value):
    """A constant of our own statement as SQL, for the driver (which reads % as the start
    of a parameter)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"no literal for {value!r}")
    literal = str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
    return literal.replace("%", "%%")
