"""Holds and waiting-list entries never give a removed one's id to a new one on SQLite
(AUTOINCREMENT, as events, ticket types and seats have since 0008): deleting an event
nobody booked removes its holds and entries, and a customer holding such a hold's id
must get a 404, never confirm someone's next hold. PostgreSQL's sequences never reuse
an id, so there is nothing to change there.

On SQLite both tables are rebuilt (batch mode copies each into a new table). The next
id is then one past the highest id in the table, so an id removed above it before this
upgrade may still be given once more.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("holds", "waitlist_entries")


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
