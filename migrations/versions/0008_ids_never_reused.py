"""Events and ticket types never give a removed one's id to a new one on SQLite
(AUTOINCREMENT, as seats already have): a client holding the id of an event or ticket
type that was deleted gets a 404, never someone else's. PostgreSQL's sequences never
reuse an id, so there is nothing to change there.

On SQLite both tables are rebuilt; the next id is then one past the highest id in the
table, so an id removed above it before this upgrade may still be given once more.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("events", "ticket_types")


def _rebuild(autoincrement):
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
