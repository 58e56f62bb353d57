"""Seat maps are written as their ranges: one row per range of a row's seats
(`seat_ranges`), and a seat gets its own row only when it is first asked for.

A seat's id is its range's `first_seat_id` plus its number's offset in the range. New
ranges take the ids from `id * 100000` (`SEATS_PER_RANGE`), which go past 2**31: seat ids
become BIGINT on PostgreSQL (SQLite's integers are 64-bit already), and seats get no id
of their own any more. The index of an event's seats in map order keeps only those
held or booked: a sale finds its seats by their ids. A seat's place is its range's:
on PostgreSQL an exclusion constraint (btree_gist) keeps two ranges of a row from
sharing a seat, where a unique key kept two seats from sharing a place.

The seats already there keep their ids and rows: each run of seats of one row whose
numbers, places and ids all follow on becomes a range. The range ids then start past
the highest seat id ever given (the old id counter) divided by 100000, so that no new
seat can have an old one's id, not even a deleted seat's.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SEATS_PER_RANGE = 100_000
SEAT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TAKEN = {"postgresql_where": sa.text("status != 'AVAILABLE'"), "sqlite_where": sa.text("status != 'AVAILABLE'")}


def _sqlite_foreign_keys(on):
    """Off while SQLite copies seats into a new table (migration 0007 says why)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    connection = op.get_bind()
    postgresql = connection.dialect.name == "postgresql"
    op.create_table(
        "seat_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(50), nullable=False),
        sa.Column("row", sa.String(20), nullable=False),
        sa.Column("first_number", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("first_seat_id", SEAT_ID, nullable=False),
        sa.CheckConstraint("first_number <= last_number", name="ck_seat_ranges_numbers_ascending"),
        sa.ForeignKeyConstraint(["event_id", "ticket_type_id"], ["ticket_types.event_id", "ticket_types.id"],
                                name="fk_seat_ranges_event_id_ticket_types"),
        sa.PrimaryKeyConstraint("id", name="pk_seat_ranges"),
        sa.UniqueConstraint("event_id", "position", name="uq_seat_ranges_event_id_position"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_seat_ranges_event_id_first_seat_id", "seat_ranges", ["event_id", "first_seat_id"])
    if postgresql:  # no two ranges of a row share a seat
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute("ALTER TABLE seat_ranges ADD CONSTRAINT ex_seat_ranges_place EXCLUDE USING gist "
                   "(event_id WITH =, section WITH =, row WITH =, int4range(first_number, last_number, '[]') WITH &&)")

    _sqlite_foreign_keys(False)
    sqlite = "always" if not postgresql else "auto"  # rebuilt on SQLite, without AUTOINCREMENT now
    with op.batch_alter_table("seats", recreate=sqlite) as batch:
        batch.add_column(sa.Column("range_id", sa.Integer(), nullable=True))
    _sqlite_foreign_keys(True)

    # A seat that does not follow on from the one before it in its event's map (same
    # type, section and row; number, place and id one more) starts a range: the ranges
    # are numbered by counting those starts in map order.
    op.execute("""
        INSERT INTO seat_ranges (id, event_id, ticket_type_id, section, row, first_number, last_number, position,
                                 first_seat_id)
        WITH marked AS (
            SELECT id, event_id, ticket_type_id, section, row, number, position,
                   CASE WHEN LAG(id) OVER place = id - 1 AND LAG(number) OVER place = number - 1
                             AND LAG(position) OVER place = position - 1
                             AND LAG(ticket_type_id) OVER place = ticket_type_id
                             AND LAG(section) OVER place = section AND LAG(row) OVER place = row
                        THEN 0 ELSE 1 END AS starts
            FROM seats
            WINDOW place AS (PARTITION BY event_id ORDER BY position)
        ), numbered AS (
            SELECT *, SUM(starts) OVER (ORDER BY event_id, position ROWS UNBOUNDED PRECEDING) AS range_id
            FROM marked
        )
        SELECT range_id, event_id, MIN(ticket_type_id), MIN(section), MIN(row), MIN(number), MAX(number),
               MIN(position), MIN(id)
        FROM numbered
        GROUP BY range_id, event_id
    """)
    # a seat's range: its event's range that starts last at or before the seat's id (the
    # ranges' ids are runs apart from each other)
    op.execute("""
        UPDATE seats SET range_id = (
            SELECT r.id FROM seat_ranges r
            WHERE r.event_id = seats.event_id AND r.first_seat_id <= seats.id
            ORDER BY r.first_seat_id DESC LIMIT 1)
    """)
    # the next range's seats start past every seat id ever given
    if postgresql:
        given = connection.execute(sa.text(
            "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM seats_id_seq")).scalar()
    else:
        given = connection.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'seats'")).scalar()
    highest = max(given or 0, connection.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM seats")).scalar())
    start = max(connection.execute(sa.text("SELECT COUNT(*) FROM seat_ranges")).scalar(), highest // SEATS_PER_RANGE)
    if postgresql and start:
        op.execute(f"SELECT setval(pg_get_serial_sequence('seat_ranges', 'id'), {start})")
    elif start:
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'seat_ranges'")
        op.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES ('seat_ranges', {start})")

    _sqlite_foreign_keys(False)
    with op.batch_alter_table("seats") as batch:
        batch.alter_column("range_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("id", existing_type=sa.Integer(), type_=SEAT_ID, server_default=None)
        batch.create_foreign_key("fk_seats_range_id_seat_ranges", "seat_ranges", ["range_id"], ["id"])
        batch.create_index("ix_seats_range_id", ["range_id"])
        batch.drop_index("ix_seats_event_id_position")
        batch.create_index("ix_seats_event_id_position", ["event_id", "position"], **TAKEN)
        batch.drop_constraint("uq_seats_place", type_="unique")
        batch.create_index("ix_seats_ticket_type_id", ["ticket_type_id"])
    if postgresql:
        op.execute("DROP SEQUENCE IF EXISTS seats_id_seq")
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("seat_id", existing_type=sa.Integer(), type_=SEAT_ID)
    _sqlite_foreign_keys(True)


def downgrade():
    """Every seat gets its row again (AVAILABLE, where it had none), keeping its id; new
    seats take theirs from a sequence past the highest; the ranges go."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute("""
        INSERT INTO seats (id, range_id, event_id, ticket_type_id, section, row, number, position, status)
        WITH RECURSIVE numbered (range_id, number) AS (
            SELECT id, first_number FROM seat_ranges
            UNION ALL
            SELECT n.range_id, n.number + 1 FROM numbered n JOIN seat_ranges r ON r.id = n.range_id
            WHERE n.number < r.last_number
        )
        SELECT r.first_seat_id + n.number - r.first_number, r.id, r.event_id, r.ticket_type_id, r.section, r.row,
               n.number, r.position + n.number - r.first_number, 'AVAILABLE'
        FROM numbered n JOIN seat_ranges r ON r.id = n.range_id
        WHERE NOT EXISTS (SELECT 1 FROM seats s WHERE s.id = r.first_seat_id + n.number - r.first_number)
    """)
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("seats", recreate="always" if not postgresql else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index("ix_seats_range_id")
        batch.drop_index("ix_seats_event_id_position")
        batch.create_index("ix_seats_event_id_position", ["event_id", "position"])
        batch.drop_index("ix_seats_ticket_type_id")
        batch.create_unique_constraint("uq_seats_place", ["event_id", "section", "row", "number"])
        batch.drop_constraint("fk_seats_range_id_seat_ranges", type_="foreignkey")
        batch.drop_column("range_id")
    if postgresql:
        # seat ids (and tickets' seat_id) stay BIGINT: a seat may have one past 2**31 now;
        # new seats number on from the highest
        op.execute("CREATE SEQUENCE seats_id_seq OWNED BY seats.id")
        op.execute("SELECT setval('seats_id_seq', COALESCE((SELECT MAX(id) FROM seats), 0) + 1, false)")
        op.execute("ALTER TABLE seats ALTER COLUMN id SET DEFAULT nextval('seats_id_seq')")
    _sqlite_foreign_keys(True)
    op.drop_index("ix_seat_ranges_event_id_first_seat_id", table_name="seat_ranges")
    op.drop_table("seat_ranges")
