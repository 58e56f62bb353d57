"""SQLite: the search index's triggers again where an early 0008 lost them.

Migration 0008 rebuilds `events` on SQLite, which drops the triggers that keep the FTS5
index `events_search` in step with it (made by 0005). The first version of 0008 did not
make them again; it was mended in place, so a database that ran that first version stays
at 0008 without them, and its search finds no event made or changed since, for good.
This makes whichever of the three is missing (as 0005 made it) and rebuilds the index
from the events (on every SQLite database: cheap, and right either way). PostgreSQL's search
column is kept by the database itself: nothing to do there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# As 0005 made them (a migration keeps its own copy: 0005 may not be changed).
COLUMNS = "title, description, location"
FTS_ROW = "new.id, new.title, new.description, new.location"
FTS_DELETE = (
    "INSERT INTO events_search (events_search, rowid, title, description, location) "
    "VALUES ('delete', old.id, old.title, old.description, old.location);"
)
TRIGGERS = {
    "events_search_insert": "CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN "
    f"INSERT INTO events_search (rowid, {COLUMNS}) VALUES ({FTS_ROW}); END",
    "events_search_delete": f"CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN {FTS_DELETE} END",
    "events_search_update": f"CREATE TRIGGER events_search_update AFTER UPDATE OF {COLUMNS} ON events BEGIN "
    f"{FTS_DELETE} INSERT INTO events_search (rowid, {COLUMNS}) VALUES ({FTS_ROW}); END",
}


def upgrade():
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    present = set(connection.execute(
        sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'")).scalars())
    missing = [name for name in TRIGGERS if name not in present]
    for name in missing:
        op.execute(TRIGGERS[name])
    # Always: SQLite makes a trigger outside the migration's transaction, so a run that
    # stopped after making them and before this would find none missing the next time.
    op.execute("INSERT INTO events_search (events_search) VALUES ('rebuild')")


def downgrade():
    pass  # the triggers belong to 0005's index: a database at 0010 should have them too
