"""Engine settings per database.

SQLite: WAL (readers never wait for the writer), foreign keys on, a busy timeout, and
write transactions that begin IMMEDIATE: the driver opens the transaction with
`BEGIN IMMEDIATE` at the first INSERT/UPDATE/DELETE, so a writer queues for the lock
up front instead of failing with "database is locked" when it tries to upgrade.
PostgreSQL: a connection pool that is thrown away when the server drops its
connections, so the app recovers by itself when the database comes back.
"""

import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine


def engine_options(config):
    return {**_options(config), "hide_parameters": True}  # no email or password hash in logs


def _options(config):
    uri = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        path = uri.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": 30, "isolation_level": "IMMEDIATE", "check_same_thread": False}}
    return {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_POOL_SIZE"],
        "pool_timeout": config["DB_POOL_TIMEOUT"],
        # No pre-ping (a round trip on every checkout): a connection that the server
        # dropped fails once, SQLAlchemy then discards the whole pool, the request gets a
        # 503 and the next one reconnects.
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 5},
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
