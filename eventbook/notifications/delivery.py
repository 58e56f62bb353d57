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
from sqlalchemy import and_, or_, select, text, update

from eventbook.extensions import db
from eventbook.models import Notification, NotificationStatus as Status, utcnow
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


CLAIMED = (
    Notification.id, Notification.kind, Notification.recipient, Notification.subject, Notification.body,
    Notification.attempts, Notification.event_id, Notification.created_at,
)


def _bookkeeping():
    """Delivery bookkeeping need not wait for the WAL flush on PostgreSQL: losing its
    last commit in a crash only means the email is sent again, which at-least-once
    delivery allows (the Message-ID is stable for that reason). Bookings keep
    synchronous commit."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit = off"))


def claim_one(notification_id, token):
    """Claim a freshly committed row; its fields (a dict), or None if someone has it."""
    _bookkeeping()
    now = utcnow()
    row = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, _claimable(now))
        .values(claimed_until=_lease(now), claim_token=token, attempts=Notification.attempts + 1)
        .returning(*CLAIMED)
        .execution_options(synchronize_session=False)
    ).mappings().first()
    db.session.commit()
    return dict(row) if row else None


def claim_due(limit, token_for):
    """Claim up to `limit` due rows; return [(id, token)].

    The batch is chosen and locked first (SKIP LOCKED on PostgreSQL, so concurrent
    sweepers take disjoint rows), then claimed with a conditional UPDATE that checks
    again that each row is still claimable (on SQLite that is what keeps two sweepers
    apart). Choosing inside the UPDATE (`WHERE id IN (... LIMIT n FOR UPDATE SKIP
    LOCKED)`) would let PostgreSQL re-run the subquery and claim far more than `limit`."""
    ids = db.session.scalars(
        select(Notification.id)
        .where(_claimable(utcnow()))
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.rollback()
        return []
    _bookkeeping()
    token = token_for()
    now = utcnow()
    claimed = db.session.scalars(
        update(Notification)
        .where(Notification.id.in_(ids), _claimable(now))
        .values(claimed_until=_lease(now), claim_token=token, attempts=Notification.attempts + 1)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return [(notification_id, token) for notification_id in claimed]


def load_claimed(notification_id, token):
    """The fields of a row this process claimed earlier (sweeper batches), or None."""
    row = db.session.execute(
        select(*CLAIMED).where(
            Notification.id == notification_id, Notification.claim_token == token,
            Notification.status == Status.PENDING,
        )
    ).mappings().first()
    db.session.rollback()
    return dict(row) if row else None


def deliver(note, token, stopping):
    """Send one claimed notification (a dict of CLAIMED) and record the outcome; return
    the ids of the rows a fan-out created. Gives the claim back if the pool is stopping."""
    notification_id = note["id"]
    if note["recipient"] is None:
        _bookkeeping()
        ids = outbox.expand(note, token, utcnow())
        db.session.commit()
        return ids

    config = current_app.config
    delay = config["NOTIFY_DELIVERY_DELAY_MS"] / 1000
    if delay and stopping.wait(delay):
        _finish(notification_id, token, claimed_until=None, claim_token=None,
                attempts=Notification.attempts - 1)
        return []
    attempts = note["attempts"]
    try:
        backends.send(config, note)
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
    _bookkeeping()
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
