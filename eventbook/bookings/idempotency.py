"""`Idempotency-Key` on booking: the first success is stored with the booking, in the
same transaction, and replayed to every repeat of the same key, user and body.

The key row is the first thing the booking transaction writes. A concurrent repeat
blocks on the unique key until the first commits (PostgreSQL), or waits for the
database lock (SQLite), then finds the stored response. A failed attempt rolls its
key row back with everything else, so the key can be tried again.
"""

import hashlib
import json

from flask import current_app
from sqlalchemy import delete, exc, select

from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import IdempotencyKey


def fingerprint(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def reserve(user_id, key, digest, now):
    """Write the key row (not yet committed); or, if the key was used before, the stored
    (status, body) to replay, or a 409 when it came with another body."""
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key, IdempotencyKey.expires_at <= now
        )
    )
    row = IdempotencyKey(
        user_id=user_id, key=key, request_hash=digest, response_status=0, response_body="",
        expires_at=now + current_app.config["IDEMPOTENCY_TTL"],
    )
    db.session.add(row)
    try:
        db.session.flush()
        return row, None
    except exc.IntegrityError:
        db.session.rollback()
    stored = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    db.session.rollback()
    if stored is None:  # expired and removed in between: extremely unlikely, say so
        error(409, "idempotency_key_reused", "This Idempotency-Key is being reused, retry")
    if stored.request_hash != digest:
        error(409, "idempotency_key_reused", "This Idempotency-Key was used with another request body")
    return None, (stored.response_status, json.loads(stored.response_body))


def record(row, status, body):
    row.response_status = status
    row.response_body = json.dumps(body)
