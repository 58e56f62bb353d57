import logging
import sys
from logging.config import fileConfig

from flask import current_app

from alembic import context
from sqlalchemy.exc import DBAPIError

from eventbook import logs
from eventbook.database import connect

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
# Keep the app's own loggers alive when migrations run inside a process (tests, release).
fileConfig(config.config_file_name, disable_existing_loggers=False)
# The migration's lines as the app writes its own (one JSON object per line in production).
logging.getLogger().handlers[:] = [logs.handler(current_app)]
logger = logging.getLogger('alembic.env')

DEADLOCK = "40P01"  # PostgreSQL's deadlock_detected
DEADLOCK_ATTEMPTS = 3


def get_engine():
    return current_app.extensions['migrate'].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace(
            '%', '%%')
    except AttributeError:
        return str(get_engine().url).replace('%', '%%')


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option('sqlalchemy.url', get_engine_url())
target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


# Kept by the database for search (migration 0005) and not declared by the models, so
# that `flask db check` does not offer to drop them: PostgreSQL's generated column and
# its index, SQLite's FTS5 table and the shadow tables FTS5 makes for it.
SEARCH_OBJECTS = {("column", "search_vector"), ("index", "ix_events_search_vector")}


def include_object(object, name, type_, reflected, compare_to):
    if not reflected or compare_to is not None:
        return True
    if type_ == "table":
        return not name.startswith("events_search")
    return (type_, name) not in SEARCH_OBJECTS


def get_metadata():
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True,
        include_object=include_object
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    conf_args = current_app.extensions['migrate'].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives
    conf_args.setdefault("include_object", include_object)

    connection = connect(get_engine())

    sqlite = connection.dialect.name == "sqlite"
    with connection:
        if sqlite:
            # SQLite changes a table by copying it into a new one and dropping the old
            # (batch mode): with foreign keys enforced, dropping a table that other rows
            # point at fails. They are off while the migrations run (a PRAGMA SQLite
            # takes only outside a transaction), and checked once they are done.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        else:
            # The app's requests give up on a row lock after DB_LOCK_TIMEOUT_SECONDS, and
            # on a statement (or an idle transaction) after DB_STATEMENT_TIMEOUT_SECONDS; a
            # migration waits for the locks it needs and runs its statements (an index of
            # a large table), as long as they take.
            for limit in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"):
                connection.exec_driver_sql(f"SET {limit} = 0")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            **conf_args
        )

        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                with context.begin_transaction():
                    context.run_migrations()
                break
            except DBAPIError as failure:
                if getattr(failure.orig, "pgcode", None) != DEADLOCK:
                    raise
                connection.rollback()
                if attempt == DEADLOCK_ATTEMPTS:
                    sys.exit(f"eventbook: the migration was rolled back {attempt} times, each time in a deadlock "
                             "with the running app's transactions; nothing changed: run it again")
                # The running app's requests may hold a table this migration's next step
                # needs while they wait for one it already holds: PostgreSQL rolled the
                # whole run back (DDL is transactional, and the run is one transaction),
                # which is run again.
                logger.warning("deadlock with the running app: the migration was rolled back; running it again")
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
            if broken:
                sys.exit(f"eventbook: the migrated database has rows whose references are broken "
                         f"(table, rowid, parent): {broken[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
