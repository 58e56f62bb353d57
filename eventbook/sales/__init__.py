"""Selling tickets: take what an order asks for and write what it becomes, all or
nothing, in one transaction.

- `book(order)`: take the tickets (and seats), write the CONFIRMED booking, its items,
  one ticket per unit or seat, its BOOKING_CONFIRMED notification and its
  Idempotency-Key row.
- `hold(order, expires_at)`: take them and write a HELD hold and its items.
- `confirm(hold_id, customer, ...)`: turn a HELD hold that has not expired into a
  booking, as `book` writes one.
- `expire(batch, now)`: the hold sweeper's batch (PostgreSQL).
- `one_order_at_a_time(customer_id, event_id)`: in a transaction of the session, wait
  for the customer's booking, hold or confirm of the event being made (a join, a leave,
  a release; an offer only tries).

`book`, `hold` and `confirm` return a `Sold`, or raise `NotTaken` when nothing was
written; the caller then explains why (`eventbook.sales.refusal`). `expire` returns
(events, more) or None; `one_order_at_a_time` whether the turn was taken. Taking is
always `eventbook.inventory`'s conditional UPDATEs, on the event, on each ticket type,
on the seats.

How a strategy runs them depends on the database, chosen once per app (`init_app`):
PostgreSQL runs each as one auto-committed statement (`sales.postgresql`): the rows
it locks are held only while the server runs it and commits; SQLite as a short
transaction (`sales.sqlite`).
"""

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app


class NotTaken(Exception):
    """The order could not be taken whole; nothing was written."""


@dataclass(frozen=True)
class Sold:
    """What a sale wrote: the booking's (or hold's) id, the notifications to hand to the
    delivery pool, and, when the strategy has it, the booking (or hold) as a response
    shows it, built from what the sale wrote, without reading it back."""

    id: int
    notes: list
    written: object = None


@dataclass(frozen=True)
class Key:
    """An Idempotency-Key to record with the booking."""

    key: str
    digest: str
    expires_at: datetime


@dataclass(frozen=True)
class Order:
    """What a customer asks for. `items` are (ticket_type_id, count) pairs, one per
    type; a type of None means "the event's only type" (the `ticketsCount` shorthand).
    A seated order has `seat_ids` instead, and its types come from its seats."""

    event_id: int
    customer_id: int
    email: str
    items: tuple = ()
    seat_ids: tuple = ()
    key: Key | None = None
    now: datetime = field(default=None)

    @property
    def tickets(self):
        return len(self.seat_ids) if self.seat_ids else sum(count for _, count in self.items)


def codes(count):
    """Ticket codes: URL-safe, 23 characters, at least 128 random bits each. None starts
    with "-", which a spreadsheet would read as a formula (the attendee export)."""
    return [_code() for _ in range(count)]


def _code():
    while True:
        code = secrets.token_urlsafe(17)  # 136 bits; refusing a leading "-" leaves more than 135
        if not code.startswith("-"):
            return code


def strategy():
    return current_app.extensions["eventbook.sales"]


def init_app(app, dialect_name):
    if dialect_name == "postgresql":
        from eventbook.sales import postgresql as chosen
    else:
        from eventbook.sales import sqlite as chosen
    app.extensions["eventbook.sales"] = chosen


def book(order):
    return strategy().book(order)


def hold(order, expires_at):
    return strategy().hold(order, expires_at)


def confirm(hold_id, customer_id, email, key, now):
    return strategy().confirm(hold_id, customer_id, email, key, now)


def expire(batch, now):
    """Expire up to `batch` HELD holds past their expiry, skipping those another process
    is expiring, and give their tickets and seats back: (the events whose tickets came
    back, whether there may be more). None where the strategy has no statement for it
    (SQLite): the caller then ends them in a transaction, as a release does."""
    return strategy().expire(batch, now)


def one_order_at_a_time(customer_id, event_id, wait=True):
    """Take the customer's turn for the event until the session's transaction ends,
    waiting until no booking, hold or confirm of theirs for it is being made (`book`,
    `hold` and `confirm` take the same turn): whatever runs after it sees what they wrote. Without `wait`,
    whether the turn was free: a writer already holding the event's row (a waiting-list
    offer) must not wait for an order that waits for that row."""
    return strategy().one_order_at_a_time(customer_id, event_id, wait)
