"""Claiming and delivering outbox rows. Runs in the pool's threads, inside an app
context, and works from ids only.

A claim is a lease: `claimed_until` in the future and a `claim_token` naming the
claimant. Claims are conditional UPDATEs, so two threads, processes or machines never
hold the same row; a lease whose holder died simply runs out and the row is taken
again. A live holder renews the leases of the emails it is still sending (`renew`), so
a slow mail server never has an email sent twice. A row whose lease ran out on its last
attempt ends FAILED instead of being taken once more.
"""

import logging
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from eventbook.auth import resets
from eventbook.database import UNAVAILABLE
from eventbook.extensions import db
from eventbook.models import Notification, NotificationKind as Kind, NotificationStatus as Status, utcnow
from eventbook.notifications import backends, outbox

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600  # a retry waits at most an hour, however many attempts are allowed

NOTES = Notification.__table__  # plain Core statements, built once: the pool runs them for every batch
CLAIMED = tuple(
    NOTES.c[name]
    for name in ("id", "kind", "user_id", "recipient", "params", "subject", "body", "booking_id", "attempts",
                 "event_id", "created_at", "claimed_until")
)
_NOW = bindparam("now", type_=NOTES.c.claimed_until.type)
_IDS = bindparam("ids", expanding=True)


def _claimable(rows):
    return and_(
        rows.c.status == Status.PENDING,
        rows.c.next_attempt_at <= _NOW,
        or_(rows.c.claimed_until.is_(None), rows.c.claimed_until < _NOW),
    )


_CLAIMABLE = _claimable(NOTES)
# A claim finds its rows by id alone and checks them once they are locked: asked of the
# table, the same conditions would let PostgreSQL read them from the due index, which
# holds an entry for every row delivered since the table's last vacuum.
_LOCKED = (
    select(NOTES.c.id, NOTES.c.status, NOTES.c.next_attempt_at, NOTES.c.claimed_until)
    .where(NOTES.c.id.in_(_IDS)).order_by(NOTES.c.id).with_for_update()
    .cte("locked").prefix_with("MATERIALIZED", dialect="postgresql")
)
_CLAIM = (
    update(NOTES)
    .where(NOTES.c.id == _LOCKED.c.id, _claimable(_LOCKED))
    .values(claimed_until=bindparam("until", type_=NOTES.c.claimed_until.type), claim_token=bindparam("token"),
            attempts=NOTES.c.attempts + 1)
)
_CLAIM_FRESH = _CLAIM.returning(*CLAIMED)
_CLAIM_SWEPT = _CLAIM.returning(NOTES.c.id)
_RENEW = (
    update(NOTES)
    .where(NOTES.c.claim_token.in_(bindparam("tokens", expanding=True)), NOTES.c.status == Status.PENDING,
           NOTES.c.claimed_until.is_not(None))
    .values(claimed_until=bindparam("until", type_=NOTES.c.claimed_until.type))
)
_MARK_SENT = (
    update(NOTES)
    .where(NOTES.c.id.in_(_IDS), NOTES.c.claim_token == bindparam("token"))
    .values(status=Status.SENT, sent_at=_NOW, claimed_until=None, last_error=None)
)
_NO_WAL_WAIT = text("SET LOCAL synchronous_commit = off")


def _lease(now):
    return {"now": now, "until": now + timedelta(seconds=current_app.config["NOTIFY_CLAIM_TIMEOUT_SECONDS"])}


def _bookkeeping():
    """Delivery bookkeeping need not wait for the WAL flush on PostgreSQL: losing its
    last commit in a crash only means the email is sent again, which at-least-once
    delivery allows (the Message-ID is stable for that reason). Bookings keep
    synchronous commit."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_NO_WAL_WAIT)


def claim(ids, token):
    """Claim freshly committed rows in one UPDATE; the fields (dicts) of those that
    nobody else has, in id order."""
    _bookkeeping()
    rows = db.session.execute(_CLAIM_FRESH, {"ids": ids, "token": token, **_lease(utcnow())}).mappings().all()
    db.session.commit()
    return sorted((dict(row) for row in rows), key=lambda row: row["id"])


def claim_due(limit, token_for):
    """Claim up to `limit` due rows; return [(id, token)].

    The batch is chosen and locked first (SKIP LOCKED on PostgreSQL, so concurrent
    sweepers take disjoint rows), then claimed with a conditional UPDATE that checks
    again that each row is still claimable (on SQLite that is what keeps two sweepers
    apart). Choosing inside the UPDATE (`WHERE id IN (... LIMIT n FOR UPDATE SKIP
    LOCKED)`) would let PostgreSQL re-run the subquery and claim far more than `limit`."""
    due = db.session.execute(
        select(NOTES.c.id, NOTES.c.attempts).where(_CLAIMABLE).order_by(NOTES.c.id).limit(limit)
        .with_for_update(skip_locked=True),
        {"now": utcnow()},
    ).all()
    if not due:
        db.session.rollback()
        return []
    _bookkeeping()
    most = current_app.config["NOTIFY_MAX_ATTEMPTS"]
    exhausted = [notification_id for notification_id, attempts in due if attempts >= most]
    if exhausted:  # the last attempt was claimed and never finished: its claimant died
        log.error("notifications %s failed for good: their last attempt's claim ran out", exhausted)
        db.session.execute(update(NOTES).where(NOTES.c.id.in_(exhausted)).values(
            status=Status.FAILED, claimed_until=None, last_error="The last attempt's claim ran out unfinished"))
    ids = [notification_id for notification_id, attempts in due if attempts < most]
    if not ids:
        db.session.commit()
        return []
    token = token_for()
    claimed = db.session.scalars(_CLAIM_SWEPT, {"ids": ids, "token": token, **_lease(utcnow())}).all()
    db.session.commit()
    return [(notification_id, token) for notification_id in claimed]


def renew(tokens):
    """Extend the leases that these claims still hold (emails not yet sent), from now."""
    _bookkeeping()
    db.session.execute(_RENEW, {"tokens": tokens, "until": _lease(utcnow())["until"]})
    db.session.commit()


def load_claimed(ids, token):
    """The fields of rows this process claimed earlier (sweeper batches), in id order."""
    rows = db.session.execute(
        select(*CLAIMED)
        .where(NOTES.c.id.in_(ids), NOTES.c.claim_token == token, NOTES.c.status == Status.PENDING)
        .order_by(NOTES.c.id)
    ).mappings().all()
    db.session.rollback()
    return [dict(row) for row in rows]


def deliver(notes, token, stopping):
    """Send claimed notifications (dicts of CLAIMED) one after the other and record the
    outcomes; return the ids of the rows that fan-outs created.

    The SENT marks of a batch are written in one UPDATE at its end (after every email
    when sending can take long: SMTP, or an artificial delay). A note is only started
    while a third of its lease is left; the claims of the notes not started (that, or
    the pool is stopping) are given back, so another round takes them at once."""
    config = current_app.config
    delay = config["NOTIFY_DELIVERY_DELAY_MS"] / 1000
    record_each = bool(delay) or config["EMAIL_BACKEND"] != "log"
    margin = timedelta(seconds=config["NOTIFY_CLAIM_TIMEOUT_SECONDS"] / 3)
    sent, created, started = [], [], 0
    for note in notes:
        if stopping.is_set() or note["claimed_until"] - utcnow() < margin:
            break
        if note["recipient"] is None:
            started += 1
            _mark_sent(sent, token, stopping)  # the emails sent so far are recorded, whatever the expansion does
            sent = []
            created += _expand(config, note, token)
            continue
        if delay and stopping.wait(delay):
            break
        started += 1
        if _send(config, note, token):
            sent.append(note["id"])
            if record_each:
                _mark_sent(sent, token, stopping)
                sent = []
    _mark_sent(sent, token, stopping)
    if started < len(notes):
        _give_back([note["id"] for note in notes[started:]], token)
    return created


def _expand(config, note, token):
    """The attendees' rows of a fan-out row (their ids). A row that cannot be expanded
    (other than by the database failing) is recorded as a failed attempt, as an email
    that cannot be sent is, and the batch goes on."""
    try:
        _bookkeeping()
        created = outbox.expand(note, token, utcnow())
        db.session.commit()
        return created
    except SQLAlchemyError:
        db.session.rollback()
        raise
    except Exception as exc:  # noqa: BLE001 - a row this code cannot read: its attempts run out
        db.session.rollback()
        _failed(config, note, token, exc)
        return []


def _send(config, note, token):
    """Send one email; on failure record the retry (with backoff) or the final failure
    (the last attempt, or a refusal that a retry would not change: `backends.permanent`)."""
    note = with_secrets(config, note)  # reads the database: its failure ends the round, as elsewhere
    try:
        backends.send(config, note)
        return True
    except Exception as exc:  # noqa: BLE001 - any delivery failure is retried, then recorded
        _failed(config, note, token, exc)
        return False


def with_secrets(config, note):
    """The note as it is sent: a password reset's with its code, and the page's link to
    it under PUBLIC_URL (in the URL's fragment, which browsers never send to a server),
    made now and never stored."""
    if note["kind"] != Kind.PASSWORD_RESET:
        return note
    code = resets.code_for(note["user_id"], note["created_at"])
    link = f"{config['PUBLIC_URL']}/#/reset-password?code={code}" if config["PUBLIC_URL"] else None
    return {**note, "params": {**note["params"], "code": code, "link": link}}


def _failed(config, note, token, exc):
    notification_id, attempts = note["id"], note["attempts"]
    last_error, final = f"{exc.__class__.__name__}: {exc}"[:2000], backends.permanent(exc)
    if final or attempts >= config["NOTIFY_MAX_ATTEMPTS"]:
        log.error("notification %s failed for good after %s attempt(s): %s", notification_id, attempts,
                  last_error, extra={"notification_id": notification_id})
        _finish([notification_id], token, status=Status.FAILED, last_error=last_error, claimed_until=None)
    else:
        backoff = min(config["NOTIFY_BACKOFF_SECONDS"] * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
        log.warning("notification %s attempt %s failed, retrying in %.1fs: %s", notification_id,
                    attempts, backoff, last_error, extra={"notification_id": notification_id})
        _finish([notification_id], token, last_error=last_error, claimed_until=None,
                next_attempt_at=utcnow() + timedelta(seconds=backoff))


def _mark_sent(ids, token, stopping):
    """Record emails as SENT. They have gone out: while the database cannot be reached
    the mark is tried again every second for as long as a claim lasts
    (NOTIFY_CLAIM_TIMEOUT_SECONDS), so that a short outage does not have them sent
    again once their lease runs out; unless the pool is stopping."""
    deadline = time.monotonic() + current_app.config["NOTIFY_CLAIM_TIMEOUT_SECONDS"]
    while ids:
        try:
            _bookkeeping()
            db.session.execute(_MARK_SENT, {"ids": ids, "token": token, "now": utcnow()})
            db.session.commit()
            return
        except UNAVAILABLE:
            db.session.rollback()
            if time.monotonic() >= deadline or stopping.wait(1):
                raise


def _give_back(ids, token):
    _finish(ids, token, claimed_until=None, claim_token=None, attempts=NOTES.c.attempts - 1)


def _finish(ids, token, **values):
    _bookkeeping()
    db.session.execute(update(NOTES).where(NOTES.c.id.in_(ids), NOTES.c.claim_token == token).values(**values))
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
