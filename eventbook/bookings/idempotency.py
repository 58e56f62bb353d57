"""`Idempotency-Key`: the first answer under a key is kept, and a repeat gets it again.

A success is kept with its booking: the sale that makes the booking writes the key's
row in its own transaction (`eventbook.sales`); a confirm of a hold confirmed before
(200, its booking) is kept once it has found that booking. A refusal by the sale's
rules (a 409 such as `sold_out` or `hold_expired`) is kept with its envelope, written
once the sale has taken nothing. What never reached those rules keeps nothing and may
be sent again with the same key: an unknown event, type or hold (404), an invalid body
(422), a rate limit (429), an unreachable database (503), and tickets taken by rivals
each time this order tried (`taken_meanwhile`).

A repeat of the key by the same customer with the same request is answered with the
same status and the same booking (rendered as it is now), or the same refusal; with
another request, a 409. Two first uses at the same moment: the key's primary key (or
the one-booking-per-customer index) lets one commit, and the other replays it.
"""

import hashlib
import json

from flask import current_app
from sqlalchemy import delete, exc, select

from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import IdempotencyKey
from eventbook.sales import Key

REPLAYED_HEADER = {"Idempotent-Replayed": "true"}  # on every answer that is a replay


def key_of(key, request_path, body, now):
    """The Key to record with a sale, or None without a key."""
    if key is None:
        return None
    digest = hashlib.sha256(json.dumps([request_path, body], sort_keys=True, default=str).encode()).hexdigest()
    return Key(key=key, digest=digest, expires_at=now + current_app.config["IDEMPOTENCY_TTL"])


def replay(customer_id, key, now):
    """The first answer under `key`: (booking id, status) of a success, or its refusal
    raised again; None if there is none (an expired key is forgotten); a 409 when the
    key came with another request."""
    if key is None:
        return None
    stored = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == customer_id, IdempotencyKey.key == key.key))
    if stored is None:
        return None
    if stored.expires_at <= now:
        # only the expired row: a request that read it too may have written a new one since
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == customer_id,
                                                        IdempotencyKey.key == key.key, IdempotencyKey.expires_at <= now))
        db.session.commit()
        return None
    if stored.request_hash != key.digest:
        db.session.rollback()
        error(409, "idempotency_key_reused", "This Idempotency-Key was used with another request")
    if stored.booking_id is None:
        db.session.rollback()
        refusal = current_app.json.loads(stored.refusal)
        error(stored.response_status, refusal.pop("code"), refusal.pop("message"), refusal.pop("errors", None),
              headers=REPLAYED_HEADER, **refusal)
    return stored.booking_id, stored.response_status


def keep_refusal(customer_id, key, refused, now):
    """Keep the sale's refusal `refused` (an HTTPException) as the first answer under
    `key`, and raise it; a 409 only: anything else is raised as it is. If a first use
    of the key at the same moment was kept first, that is the answer: (booking id,
    status) to replay, or its refusal raised."""
    if key is None or refused.code != 409 or not getattr(refused, "data", None):
        raise refused
    facts = {name: value for name, value in refused.data.items() if name not in ("headers", "exc")}
    replayed = _keep(customer_id, key, now, response_status=409, refusal=current_app.json.dumps(facts))
    if replayed:
        return replayed
    raise refused


def keep_booking(customer_id, key, booking_id, now):
    """Keep a success that no sale wrote (a hold confirmed before: its booking, 200) as
    the first answer under `key`: None once kept (or without a key); if a first use of
    the key at the same moment was kept first, that is the answer: (booking id, status)
    to replay, or its refusal raised."""
    if key is None:
        return None
    return _keep(customer_id, key, now, response_status=200, booking_id=booking_id)


def _keep(customer_id, key, now, **answer):
    """Write `answer` as the first under `key`, in a transaction of its own: None, or
    the answer of a first use that was kept first (`replay`)."""
    db.session.rollback()
    db.session.add(IdempotencyKey(user_id=customer_id, key=key.key, request_hash=key.digest,
                                  expires_at=key.expires_at, **answer))
    try:
        db.session.commit()
    except exc.IntegrityError:
        db.session.rollback()
        return replay(customer_id, key, now)
    return None
