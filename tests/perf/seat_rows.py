"""What a seat costs PostgreSQL when a map is put: the seat map's own statement
(`eventbook.seats.service.INSERT_ROWS`, one `INSERT ... SELECT` of 5,000 and of 50,000
seats, committed) into the `seats` table as migrated, and into copies of it with fewer
of its checks, down to a table with no index at all; then a narrower row with only a
primary key, and the primary-key-only copy written by COPY instead:

    .venv/bin/python tests/perf/seat_rows.py [--rounds 7] [--put-ms SMALL,LARGE]

Each variant is a new table `LIKE seats` (same columns and defaults) with the checks
named; each round puts a 5,000-seat map then a 50,000-seat one, each for an event and
ticket type of its own; the figures are medians. The cost of a seat is the slope
between the two sizes. With `--put-ms`, the medians of the benchmark's PUTs of the same
two maps (`make bench`'s seats scenario), the request's fixed cost is the intercept of
those two, and each variant's line says what PUT ratio a server with that table would
reach: 50,000 seats in 5 times the time of 5,000 takes a request whose fixed cost is
worth 6,250 seats. PostgreSQL at BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); the script makes and drops its own
database. Results: docs/performance.md.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SIZES = (5_000, 50_000)
PER_ROW = 100

# name: what the copy of `seats` keeps besides its columns (make_table)
VARIANTS = {
    "as migrated": ("place", "position", "hold_booking", "check", "fk_type", "fk_hold_booking"),
    "no key to ticket_types": ("place", "position", "hold_booking", "check", "fk_hold_booking"),
    "no foreign key": ("place", "position", "hold_booking", "check"),
    "no foreign key, no place index": ("position", "hold_booking", "check"),
    "primary key and (event_id, position) only": ("position",),
    "primary key only": (),
    "no index at all": ("no_primary_key",),
}


def make_table(cursor, name, keep):
    cursor.execute(f"CREATE TABLE {name} (LIKE seats INCLUDING DEFAULTS)")
    if "no_primary_key" not in keep:
        cursor.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
    if "place" in keep:
        cursor.execute(f'ALTER TABLE {name} ADD UNIQUE (event_id, section, "row", number)')
    if "position" in keep:
        cursor.execute(f'CREATE INDEX ON {name} (event_id, "position")')
    if "hold_booking" in keep:
        cursor.execute(f"CREATE INDEX ON {name} (hold_id) WHERE hold_id IS NOT NULL")
        cursor.execute(f"CREATE INDEX ON {name} (booking_id) WHERE booking_id IS NOT NULL")
    if "check" in keep:
        cursor.execute(f"ALTER TABLE {name} ADD CHECK (status IN ('AVAILABLE', 'HELD', 'BOOKED'))")
    if "fk_type" in keep:
        cursor.execute(f"ALTER TABLE {name} ADD FOREIGN KEY (event_id, ticket_type_id) "
                       "REFERENCES ticket_types (event_id, id)")
    if "fk_hold_booking" in keep:
        cursor.execute(f"ALTER TABLE {name} ADD FOREIGN KEY (hold_id) REFERENCES holds (id)")
        cursor.execute(f"ALTER TABLE {name} ADD FOREIGN KEY (booking_id) REFERENCES bookings (id)")


def new_event(cursor, organizer_id):
    cursor.execute(
        "INSERT INTO events (title, date, location, total_tickets, available_tickets, status, organizer_id, "
        "created_at, updated_at, seating) VALUES ('Seat rows', now() + interval '30 days', 'Hall', 0, 0, "
        "'SCHEDULED', %s, now(), now(), 'RESERVED') RETURNING id", (organizer_id,))
    event_id = cursor.fetchone()[0]
    cursor.execute("INSERT INTO ticket_types (event_id, name, price, quantity, available_quantity) "
                   "VALUES (%s, 'Seat', 25, 0, 0) RETURNING id", (event_id,))
    return event_id, cursor.fetchone()[0]


def map_parameters(event_id, type_id, seats):
    """INSERT_ROWS's parameters for `seats` seats in rows of PER_ROW, 25 rows a section
    (the benchmark's map)."""
    rows = seats // PER_ROW
    return {"event_id": event_id, "types": [type_id] * rows,
            "sections": [f"Section {row // 25 + 1}" for row in range(rows)],
            "labels": [f"R{row + 1}" for row in range(rows)], "firsts": [1] * rows, "lasts": [PER_ROW] * rows,
            "positions": [row * PER_ROW for row in range(rows)]}


def measure(connection, organizer_id, statement, rounds):
    """Medians of committing a map of each size, in ms. `statement` is SQL run with
    map_parameters, or a function(cursor, event_id, type_id, seats) that writes them."""
    cursor = connection.cursor()
    times = {size: [] for size in SIZES}
    for _ in range(rounds):
        for size in SIZES:
            event_id, type_id = new_event(cursor, organizer_id)
            connection.commit()
            started = time.perf_counter()
            if callable(statement):
                statement(cursor, event_id, type_id, size)
            else:
                cursor.execute(statement, map_parameters(event_id, type_id, size))
            connection.commit()
            times[size].append((time.perf_counter() - started) * 1000)
    return [statistics.median(times[size]) for size in SIZES]


def copy_into(table):
    """The same seats sent by COPY (built in Python, as a COPY-based PUT would), into `table`."""
    def write(cursor, event_id, type_id, seats):
        lines = (f"{event_id}\t{type_id}\tSection {seat // PER_ROW // 25 + 1}\tR{seat // PER_ROW + 1}\t"
                 f"{seat % PER_ROW + 1}\t{seat}\tAVAILABLE\n" for seat in range(seats))
        cursor.copy_expert(f'COPY {table} (event_id, ticket_type_id, section, "row", number, position, status) '
                           "FROM STDIN", io.StringIO("".join(lines)))
    return write


# Beyond copies of `seats`: a narrower row (its section and row label kept once per row
# of seats, elsewhere) with only a primary key, filled by INSERT ... SELECT, and the
# primary-key-only copy filled by COPY.
NARROW = ("CREATE TABLE {table} (id serial PRIMARY KEY, event_id integer NOT NULL, row_id integer NOT NULL, "
          "number integer NOT NULL, status varchar(16) NOT NULL DEFAULT 'AVAILABLE', hold_id integer, "
          "booking_id integer)")
NARROW_INSERT = ("INSERT INTO {table} (event_id, row_id, number) SELECT %(event_id)s, r, n "
                 "FROM generate_series(1, %(rows)s) r, generate_series(1, {per_row}) n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--put-ms", help="the benchmark's median PUT times of 5,000 and 50,000 seats, e.g. 44,370")
    args = parser.parse_args()
    os.environ["TEST_DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    from eventbook.seats.service import INSERT_ROWS
    from tests import support

    # INSERT_ROWS's named parameters, in psycopg2's style
    statement = INSERT_ROWS.text
    for name in ("event_id", "types", "sections", "labels", "firsts", "lasts", "positions"):
        statement = statement.replace(f":{name}", f"%({name})s")
    fixed_ms = None
    if args.put_ms:
        small, large = (float(ms) for ms in args.put_ms.split(","))
        fixed_ms = small - SIZES[0] * (large - small) / (SIZES[1] - SIZES[0])
        print(f"PUT {small:g} / {large:g} ms: the request's fixed cost is {fixed_ms:.1f} ms, so 5x takes a seat "
              f"at most {fixed_ms / 6250 * 1000:.2f} us")
    url = support.create_database("postgresql", tempfile.mkdtemp())
    try:
        connection = psycopg2.connect(support._normalized(url).replace("postgresql+psycopg2", "postgresql"))
        cursor = connection.cursor()
        cursor.execute("INSERT INTO users (email, password_hash, name, role, created_at) "
                       "VALUES ('organizer@example.com', 'x', 'Organizer', 'ORGANIZER', now()) RETURNING id")
        organizer_id = cursor.fetchone()[0]
        connection.commit()
        print(f"{'seats table':45} {'5,000':>8} {'50,000':>8}  per seat" + ("  PUT ratio" if fixed_ms else ""))
        variants = [(variant, keep, statement.replace("INSERT INTO seats", f"INSERT INTO seats_variant_{number}"))
                    for number, (variant, keep) in enumerate(VARIANTS.items())]
        variants += [
            ("narrow rows, primary key only", None, lambda cursor, event_id, _type_id, seats: cursor.execute(
                NARROW_INSERT.format(table=f"seats_variant_{len(VARIANTS)}", per_row=PER_ROW),
                {"event_id": event_id, "rows": seats // PER_ROW})),
            ("primary key only, by COPY", (), copy_into(f"seats_variant_{len(VARIANTS) + 1}")),
        ]
        for number, (variant, keep, write) in enumerate(variants):
            table = f"seats_variant_{number}"
            if keep is None:
                cursor.execute(NARROW.format(table=table))
            else:
                make_table(cursor, table, keep)
            connection.commit()
            small, large = measure(connection, organizer_id, write, args.rounds)
            per_seat = (large - small) / (SIZES[1] - SIZES[0])
            line = f"{variant:45} {small:6.1f}ms {large:6.1f}ms  {per_seat * 1000:5.2f} us"
            if fixed_ms:
                line += f"  {(fixed_ms + SIZES[1] * per_seat) / (fixed_ms + SIZES[0] * per_seat):5.2f}x"
            print(line, flush=True)
            cursor.execute(f"DROP TABLE {table}")
            connection.commit()
        connection.close()
    finally:
        support.drop_database(url)


if __name__ == "__main__":
    main()
