"""Rows that only matter until they expire: idempotency keys (replayed for
IDEMPOTENCY_TTL) and revoked tokens (checked until the token would have expired anyway).
The notification sweeper calls `purge_expired` every PURGE_EXPIRED_SECONDS, so neither
table grows with traffic."""

from sqlalchemy import delete

from eventbook.extensions import db
from eventbook.models import IdempotencyKey, RevokedToken, utcnow


def purge_expired():
    """Delete expired idempotency keys and revoked tokens; how many of each."""
    now = utcnow()
    keys = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)).rowcount
    tokens = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now)).rowcount
    db.session.commit()
    return keys, tokens
