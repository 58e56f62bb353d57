"""Rows that only matter until they expire: idempotency keys (replayed for
IDEMPOTENCY_TTL), revoked tokens (checked until the token would have expired anyway) and
token families (until their last refresh token expires).
The notification sweeper calls `purge_expired` every PURGE_EXPIRED_SECONDS, so none of
these tables grows with traffic."""

from sqlalchemy import delete

from eventbook.extensions import db
from eventbook.models import IdempotencyKey, RevokedToken, TokenFamily, utcnow


def purge_expired():
    """Delete expired idempotency keys and revoked tokens (with token families); how many of each."""
    now = utcnow()
    keys = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)).rowcount
    tokens = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now)).rowcount
    tokens += db.session.execute(delete(TokenFamily).where(TokenFamily.expires_at <= now)).rowcount
    db.session.commit()
    return keys, tokens
