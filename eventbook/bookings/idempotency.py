"""`Idempotency-Key`: the first success under a key is kept with its booking. The sale
that makes the booking writes the key's row in its own transaction (`eventbook.sales`),
so a failed attempt keeps nothing and may be tried again with the same key.

A repeat of the key by the same customer with the same request is answered with the
same status and the same booking (rendered as it is now); with another request, a 409.
Two first uses at the same moment: the key's primary key (or the one-booking-per-
customer index) lets one commit, and the other replays it.
"""

import hashlib
import json

from flask import current_app
from sqlalchemy import delete, select

from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import IdempotencyKey
from eventbook.sales import Key


def key_of(key, request_path, body, now):
    """The Key to record with a sale, or None without a key."""
    if key is None:
        return None
    digest = hashlib.sha256(json.dumps([request_path, body], sort_keys=True, default=str).encode()).hexdigest()
    return Key(key=key, digest=digest, expires_at=now + current_app.config["IDEMPOTENCY_TTL"])


def replay(customer_id, key, now):
    """(booking id, status) of the first success under `key`, or None if there is none
    (an expired key is forgotten); a 409 when the key came with another request."""
    if key is None:
        return None
    stored = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == customer_id, IdempotencyKey.key == key.key))
    if stored is None:
        return None
    if stored.expires_at <= now:
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == customer_id,
                                                        IdempotencyKey.key == key.key))
        db.session.commit()
        return None
    if stored.request_hash != key.digest:
        db.session.rollback()
        error(409, "idempotency_key_reused", "This Idempotency-Key was used with another request")
    return stored.booking_id, stored.response_status
