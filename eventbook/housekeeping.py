"""Rows that only matter until they expire: idempotency keys (replayed for
IDEMPOTENCY_TTL), revoked tokens (checked until the token would have expired anyway) and
token families (until their last refresh token expires); and waiting-list entries of
events that have started, which no offer can serve any more (what those events set aside
for them goes back to the public).
The notification sweeper calls `purge_expired` every PURGE_EXPIRED_SECONDS, so none of
these tables grows with traffic."""

from sqlalchemy import delete

from eventbook.extensions import db
from eventbook.models import IdempotencyKey, RevokedToken, TokenFamily, utcnow
from eventbook.waitlist import service as waitlist


def purge_expired():
    """Delete expired idempotency keys and revoked tokens (with token families); then
    the waiting lists of events that have started lapse, and what those events set aside
    for them goes back to the public: how many of each."""
    now = utcnow()
    keys = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)).rowcount
    tokens = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now)).rowcount
    tokens += db.session.execute(delete(TokenFamily).where(TokenFamily.expires_at <= now)).rowcount
    db.session.commit()
    return keys, tokens, waitlist.close_started(now)
