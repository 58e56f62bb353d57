"""`Idempotency-Key` on booking: the first success is stored with the booking, in the
same transaction, and replayed to every repeat of the same key, user and body.

On PostgreSQL the booking statement itself writes the key row (`written`, a part of
`service.BOOK_KEYED`), and only when the customer has no row for the key yet. The row
keeps the event's and the booking's rows as the statement wrote them (JSON), and a
repeat renders the first response again from them, with the same schema. Two first
uses of one key at once both pass the "no row yet" check; the key's primary key (or
the one-booking-per-customer index) lets one of them commit, and the other fails as a
whole and replays it.

On SQLite the key row is the first thing the booking transaction writes (`reserve`),
and the rendered response goes into it before the commit (`record`); a concurrent
repeat waits for the database lock, then finds it.

Either way a failed attempt writes no key row, so the key can be tried again.
"""

import hashlib
import json
from datetime import datetime, timezone
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import String, Text, bindparam, cast, exists, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as upsert

from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import Booking, Event, IdempotencyKey, UTCDateTime

RETRY = object()  # `replay`: the key had expired and is gone; book again


def values(key, body, now):
    """The statement values of a key: the key, its request's fingerprint, its expiry."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {"key": key, "digest": digest, "expires_at": now + current_app.config["IDEMPOTENCY_TTL"]}


def unused():
    """SQL: the customer has no row for this key (for the booking statement's UPDATE)."""
    return ~exists().where(_keys.c.user_id == bindparam("user_id"), _keys.c.key == bindparam("key", type_=String))


def written(taken, booked):
    """SQL: INSERT the key row of the booking statement's booking, keeping the event's
    and the booking's rows as written (`taken` and `booked`, CTEs with every column of
    their tables), from which a repeat renders the first response again (`_stored`)."""
    rows = func.json_build_object(
        "event", func.row_to_json(taken.table_valued()), "booking", func.row_to_json(booked.table_valued())
    )
    return insert(_keys).from_select(
        ["user_id", "key", "request_hash", "response_status", "response_body", "expires_at"],
        select(booked.c.user_id, bindparam("key", type_=String), bindparam("digest", type_=String), 201,
               cast(func.json_build_object("rows", rows), Text),
               bindparam("expires_at", type_=_keys.c.expires_at.type))
        .select_from(booked.join(taken, taken.c.id == booked.c.event_id)),
    ).returning(_keys.c.user_id)


def replay(user_id, values, now, dump):
    """After a booking statement that wrote nothing for a key: the stored (status, body)
    to replay; a 409 when the key came with another body; None when the customer has no
    row for the key; RETRY when it had expired (it is deleted)."""
    stored = _row(user_id, values["key"])
    if stored is None:
        return None
    if stored.expires_at <= now:
        db.session.delete(stored)
        db.session.commit()
        return RETRY
    return _stored(stored, values, dump)


def reserve(connection, user_id, values, now, dump):
    """SQLite: write the key row (not yet committed) on the session's `connection`: None;
    or, if the key was used before, the stored (status, body) to replay, or a 409 when it
    came with another body. A key that has expired is taken over as if it were new."""
    if connection.execute(RESERVE, {**values, "user_id": user_id, "now": now}).first():
        return None
    db.session.rollback()
    stored = _row(user_id, values["key"])
    if stored is None:  # expired and removed in between: extremely unlikely, say so
        db.session.rollback()
        error(409, "idempotency_key_reused", "This Idempotency-Key is being reused, retry")
    return _stored(stored, values, dump)


def _row(user_id, key):
    return db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))


def _stored(stored, values, dump):
    """The (status, body) of a key's row, or a 409 when the key came with another body."""
    if stored.request_hash != values["digest"]:
        db.session.rollback()
        error(409, "idempotency_key_reused", "This Idempotency-Key was used with another request body")
    status, body = stored.response_status, json.loads(stored.response_body)
    if list(body) == ["rows"]:  # PostgreSQL's: the rows the booking statement wrote
        rows = body["rows"]
        event = SimpleNamespace(**_typed(_events, rows["event"]))
        body = dump(SimpleNamespace(**_typed(_bookings, rows["booking"]), event=event))
    db.session.rollback()
    return status, body


def _typed(table, row):
    """A row of `table` from PostgreSQL's row_to_json, with its times as datetimes again
    (row_to_json writes them in ISO 8601, to the microsecond, with an offset)."""
    return {
        column.name: datetime.fromisoformat(row[column.name]).astimezone(timezone.utc)
        if isinstance(column.type, UTCDateTime) and row[column.name] is not None
        else row[column.name]
        for column in table.c
    }


def record(connection, user_id, key, status, body):
    """SQLite: store the response to replay, in the transaction that reserved the key."""
    connection.execute(RECORD, {"owner": user_id, "name": key, "status": status, "body": json.dumps(body)})


def _reserve_statement():
    """SQLite: INSERT the key row; if the key is there already, take it over only when
    it has expired. A row comes back when the key is ours."""
    statement = upsert(_keys).values(
        user_id=bindparam("user_id"), key=bindparam("key"), request_hash=bindparam("digest"),
        response_status=0, response_body="", expires_at=bindparam("expires_at"),
    )
    return statement.on_conflict_do_update(
        index_elements=[_keys.c.user_id, _keys.c.key],
        set_={"request_hash": statement.excluded.request_hash, "response_status": 0, "response_body": "",
              "expires_at": statement.excluded.expires_at},
        where=_keys.c.expires_at <= bindparam("now", type_=_keys.c.expires_at.type),
    ).returning(_keys.c.user_id)


_keys, _events, _bookings = IdempotencyKey.__table__, Event.__table__, Booking.__table__
RESERVE = _reserve_statement()
RECORD = (
    update(_keys)
    .where(_keys.c.user_id == bindparam("owner"), _keys.c.key == bindparam("name"))  # not a column's name
    .values(response_status=bindparam("status"), response_body=bindparam("body"))
)
