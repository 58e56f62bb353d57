"""Events and ticket types never give a removed one's id to a new one on SQLite
(AUTOINCREMENT, as seats already have): a client holding the id of an event or ticket
type that was deleted gets a 404, never someone else's. PostgreSQL's sequences never
reuse an id, so there is nothing to change there.

On SQLite both tables are rebuilt (batch mode copies each into a new table), and their
triggers, which a dropped table takes with it, made again: those of `events` keep its
search index (0005) in step. The next id is then one past the highest id in the table,
so an id removed above it before this upgrade may still be given once more.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("events", "ticket_types")


def _rebuild(autoincrement):
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for table in TABLES:
        triggers = connection.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table ORDER BY name"),
            {"table": table}).scalars().all()
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
        for trigger in triggers:
            op.execute(trigger)


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
