"""The only code that writes `events.available_tickets`.

Every change is a single conditional UPDATE whose WHERE clause states the rule, so the
database decides, row-locked, whether it holds: nothing is read first and written
after. Callers check the returned row (or row count) and roll back when it is None.
"""

from sqlalchemy import Integer, bindparam, select, update

from eventbook.extensions import db
from eventbook.models import Event, EventStatus


def take(event_id, count, now):
    """Sell `count` tickets of a scheduled, future event that has them: the event's row
    as it is after the sale (a plain row, not an ORM object: this is the hot path), or None."""
    return db.session.execute(TAKE, {"event_id": event_id, "count": count, "now": now}).one_or_none()


_events = Event.__table__
TAKE = (  # built once, run for every booking
    update(_events)
    .where(
        _events.c.id == bindparam("event_id"),
        _events.c.available_tickets >= bindparam("count", type_=Integer),
        _events.c.status == EventStatus.SCHEDULED,
        _events.c.date > bindparam("now", type_=_events.c.date.type),
    )
    .values(available_tickets=_events.c.available_tickets - bindparam("count", type_=Integer))
    .returning(*_events.c)
)


def give_back(event_id, count):
    """Return the tickets of one cancelled booking."""
    db.session.execute(
        update(Event)
        .where(Event.id == event_id)
        .values(available_tickets=Event.available_tickets + count)
        .execution_options(synchronize_session=False)
    )


def resize(event_id, total, now):
    """Set the capacity, moving availability by the same amount; None when fewer
    tickets than already sold are asked for."""
    return db.session.execute(
        update(Event)
        .where(Event.id == event_id, Event.total_tickets - Event.available_tickets <= total)
        .values(
            total_tickets=total,
            available_tickets=Event.available_tickets + (total - Event.total_tickets),
            updated_at=now,
        )
        .returning(Event)
        .execution_options(populate_existing=True, synchronize_session=False)
    ).scalar_one_or_none()


def close(event_id, now):
    """Cancel the event and put every ticket back (its bookings are cancelled with it)."""
    return db.session.execute(
        update(Event)
        .where(Event.id == event_id, Event.status == EventStatus.SCHEDULED)
        .values(status=EventStatus.CANCELLED, available_tickets=Event.total_tickets, updated_at=now)
        .returning(Event)
        .execution_options(populate_existing=True, synchronize_session=False)
    ).scalar_one_or_none()


def lock(event_id):
    """Hold the event's row until commit, for changes that span several rows.

    Every multi-row change locks the event first (booking takes its row with the
    UPDATE above), so writers of one event queue up in the same order and cannot
    deadlock. On SQLite the whole database is the lock: BEGIN IMMEDIATE."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    return db.session.execute(
        select(Event)
        .where(Event.id == event_id)
        .with_for_update(of=Event)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
