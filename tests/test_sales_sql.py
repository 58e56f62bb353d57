"""The PostgreSQL sales statements, printed as the SQL the server runs (run with
`pytest -s tests/test_sales_sql.py` to read them; docs/booking.md shows them too).

The rules a reader should find in them are asserted here, so that the statements
cannot drift from what the docs say."""

import re

import pytest
from sqlalchemy.dialects import postgresql

from eventbook.sales import postgresql as strategy


def sql(prepared):
    return str(prepared.statement.compile(dialect=postgresql.dialect()))


def plain(statement):
    """The SQL without the driver's casts of its parameters (`%(now)s::TIMESTAMP ...`)."""
    return re.sub(r"::(?:INTEGER|VARCHAR|TEXT|TIMESTAMP WITH TIME ZONE|NUMERIC(?:\(\d+, \d+\))?|JSON)(?:\[\])?", "",
                  sql(statement))


@pytest.mark.parametrize("name", ["BOOK", "HOLD", "CONFIRM", "EXPIRE"])
def test_print_the_statement(name):
    text = sql(getattr(strategy, name))
    print(f"\n-- {name}\n{text}\n")
    assert text.startswith("WITH ")


def test_book_takes_with_conditional_updates_and_is_all_or_nothing():
    text = plain(strategy.BOOK)
    assert ("UPDATE events SET available_tickets=(events.available_tickets - %(tickets)s)" in text
            and "events.available_tickets >= %(tickets)s" in text and "events.status = %(status_1)s" in text
            and "events.date > %(now)s" in text and "events.seating = CASE WHEN" in text)
    assert "UPDATE ticket_types SET available_quantity=(ticket_types.available_quantity - wanted.count)" in text
    assert "ticket_types.available_quantity >= wanted.count" in text
    compiled = strategy.BOOK.statement.compile(dialect=postgresql.dialect())
    [seat_status] = re.findall(r"seats\.status = %\((\w+)\)s", text)  # only AVAILABLE seats are taken
    assert compiled.params[seat_status] == "AVAILABLE"
    for table in ("bookings", "items", "tickets", "notifications", "idempotency_keys"):
        assert f"INSERT INTO {table}" in text
    assert "eventbook_all_or_nothing(" in text


def test_hold_writes_a_hold_and_no_tickets():
    text = plain(strategy.HOLD)
    assert "INSERT INTO holds" in text and "INSERT INTO items" in text
    assert "INSERT INTO tickets" not in text and "INSERT INTO notifications" not in text
    assert "eventbook_all_or_nothing(" in text


def test_confirm_moves_no_counter():
    text = plain(strategy.CONFIRM)
    assert "holds.status = %(status_1)s AND holds.expires_at > %(now)s" in text
    assert "events.id = holds.event_id AND events.status = %(status_2)s AND events.date > %(now)s" in text
    assert "available_tickets -" not in text and "available_quantity -" not in text


def test_expire_decides_by_the_holds_status_and_locks_events_in_order():
    text = plain(strategy.EXPIRE)
    assert "FOR UPDATE SKIP LOCKED" in text and "due AS MATERIALIZED" in text
    assert re.search(r"UPDATE holds SET status=.* WHERE holds.id IN \(SELECT due.id\s+FROM due\) AND holds.status = ", text)
    assert "ORDER BY events.id FOR NO KEY UPDATE" in text
    order = [text.index(f"{name} AS") for name in ("ended", "locked", "given_events", "given_types", "freed_seats", "lapsed")]
    assert order == sorted(order)
    assert "FROM given_events) >= " in text and "FROM given_types) >= " in text and "FROM freed_seats) >= " in text


@pytest.mark.parametrize(("name", "values"), [
    ("BOOK", ["customer", "tickets", "shorthand", "event", "type_ids", "counts", "seat_ids", "now", "seat_changes",
              "codes", "idempotency_key", "digest", "key_expires_at", "seat_count", "email"]),
    ("HOLD", ["customer", "tickets", "shorthand", "event", "type_ids", "counts", "seat_ids", "now", "seat_changes",
              "hold_expires_at", "seat_count"]),
    ("CONFIRM", ["now", "hold", "customer", "codes", "idempotency_key", "digest", "key_expires_at", "email"]),
    ("EXPIRE", ["now", "batch"]),
])
def test_only_the_requests_values_are_parameters_of_the_prepared_statements(name, values):
    """PostgreSQL may run a prepared statement with one generic plan for all values: that
    plan sees the statement's constants only if they are written in its SQL (a partial
    index `WHERE status = 'CONFIRMED'` matches `status = 'CONFIRMED'`, not `status = $7`)."""
    prepared = getattr(strategy, name)
    assert [key for key, _ in prepared.parameters] == values
    assert len(re.findall(r"\$\d+(?!\d)", prepared.sql)) >= len(values)
    assert not re.search(rf"\${len(values) + 1}(?!\d)", prepared.sql)
    assert prepared.prepare.startswith(f"PREPARE {prepared.name} (") and prepared.prepare.endswith(prepared.sql)


def test_a_hold_asks_for_the_customers_confirmed_booking_as_the_partial_index_says():
    """The one-CONFIRMED-booking-per-customer index is partial (`uq_bookings_one_confirmed`):
    the hold's check names its status as a constant, so every plan can use that index
    instead of reading every booking of the event."""
    assert "bookings.status = 'CONFIRMED'" in strategy.HOLD.sql
