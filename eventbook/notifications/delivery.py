"""Claiming and delivering outbox rows. Runs in the pool's threads, inside an app
context, and works from ids only.

A claim is a lease: `claimed_until` in the future and a `claim_token` naming the
claimant. Claims are conditional UPDATEs, so two threads, processes or machines never
hold the same row; a lease whose holder died simply runs out and the row is taken
again.
"""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from eventbook.extensions import db
from eventbook.models import Notification, utcnow
from eventbook.models import NotificationStatus as Status
from eventbook.notifications import backends, outbox

log = logging.getLogger(__name__)


def _claimable(now):
    return and_(
        Notification.status == Status.PENDING,
        Notification.next_attempt_at <= now,
        or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
    )


def _lease(now):
    return now + timedelta(seconds=current_app.config["NOTIFY_CLAIM_TIMEOUT_SECONDS"])


def claim_one(notification_id, token):
    now = utcnow()
    claimed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, _claimable(now))
        .values(claimed_until=_lease(now), claim_token=token, attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def claim_due(limit, token_for):
    """Claim up to `limit` due rows (SKIP LOCKED on PostgreSQL); return [(id, token)]."""
    now = utcnow()
    due = (
        select(Notification.id)
        .where(_claimable(now))
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    token = token_for()
    ids = db.session.scalars(
        update(Notification)
        .where(Notification.id.in_(due), _claimable(now))
        .values(claimed_until=_lease(now), claim_token=token, attempts=Notification.attempts + 1)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return [(notification_id, token) for notification_id in ids]


def deliver(notification_id, token, stopping):
    """Send one claimed notification and record the outcome; return the ids of the
    rows a fan-out created. Gives the claim back if the pool is stopping."""
    note = db.session.execute(
        select(Notification).where(Notification.id == notification_id, Notification.claim_token == token)
    ).scalar_one_or_none()
    if note is None or note.status != Status.PENDING:
        db.session.rollback()
        return []
    now = utcnow()
    if note.recipient is None:
        ids = outbox.expand(note, now)
        db.session.commit()
        return ids
    message = {key: getattr(note, key) for key in ("id", "kind", "recipient", "subject", "body")}
    attempts = note.attempts
    db.session.rollback()  # hold no connection while talking to the mail server

    config = current_app.config
    delay = config["NOTIFY_DELIVERY_DELAY_MS"] / 1000
    if delay and stopping.wait(delay):
        _finish(notification_id, token, claimed_until=None, claim_token=None,
                attempts=Notification.attempts - 1)
        return []
    try:
        backends.send(config, message)
    except Exception as exc:  # noqa: BLE001 - any delivery failure is retried, then recorded
        last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if attempts >= config["NOTIFY_MAX_ATTEMPTS"]:
            log.error("notification %s failed for good after %s attempts: %s", notification_id, attempts,
                      last_error, extra={"notification_id": notification_id})
            _finish(notification_id, token, status=Status.FAILED, last_error=last_error,
                    claimed_until=None)
        else:
            backoff = config["NOTIFY_BACKOFF_SECONDS"] * 2 ** (attempts - 1)
            log.warning("notification %s attempt %s failed, retrying in %.1fs: %s", notification_id,
                        attempts, backoff, last_error, extra={"notification_id": notification_id})
            _finish(notification_id, token, last_error=last_error, claimed_until=None,
                    next_attempt_at=utcnow() + timedelta(seconds=backoff))
        return []
    _finish(notification_id, token, status=Status.SENT, sent_at=utcnow(), claimed_until=None,
            last_error=None)
    return []


def _finish(notification_id, token, **values):
    db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.claim_token == token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def release(ids, token_prefix):
    """Give back claims that a stopping pool never started, so the next start takes them
    at once instead of after the lease."""
    db.session.execute(
        update(Notification)
        .where(
            Notification.id.in_(ids),
            Notification.status == Status.PENDING,
            Notification.claim_token.startswith(token_prefix),
        )
        .values(claimed_until=None, claim_token=None, attempts=Notification.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def retry_failed():
    """Put every FAILED notification back in the queue; return how many."""
    count = db.session.execute(
        update(Notification)
        .where(Notification.status == Status.FAILED)
        .values(status=Status.PENDING, attempts=0, next_attempt_at=utcnow(), claimed_until=None,
                claim_token=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return count
