"""The outbox: notification rows (a kind and its template's parameters) written in the
same transaction as the change they tell about, handed to the worker pool once that
transaction has committed. A booking's own confirmation is written by its sale
(`eventbook.sales`)."""

from flask import current_app
from sqlalchemy import insert, or_, select, update

from eventbook.extensions import db
from eventbook.models import (
    Booking,
    BookingStatus,
    Notification,
    NotificationKind as Kind,
    NotificationStatus as Status,
    User,
)
from eventbook.notifications import templates

# SQL: the row is an email. A fan-out row (no recipient) only stands for a large
# audience until a worker writes its attendees' own rows; counts of emails leave it out.
EMAILS = Notification.recipient.is_not(None)


def booking_cancelled(booking, user, event, now):
    return _add(Kind.BOOKING_CANCELLED, user, event, templates.of_booking(booking, event), now, booking_id=booking.id)


def waitlist_offer(hold, user, event, now):
    return _add(Kind.WAITLIST_OFFER, user, event, templates.of_offer(hold, event), now)


def password_changed(user, now, reset=False):
    """The email telling `user` that their password was changed (or `reset`), in case
    it was not them."""
    return _add(Kind.PASSWORD_CHANGED, user, None,
                {"email": user.email, "date": now.isoformat(), "how": "reset" if reset else "changed"}, now)


def password_reset(user, minutes, now):
    """The email with a code that sets `user`'s password, good for `minutes`: the code
    itself is made as it is sent (`eventbook.auth.resets`), never stored."""
    return _add(Kind.PASSWORD_RESET, user, None, {"email": user.email, "minutes": minutes}, now)


# An event's change or cancellation writes its attendees' rows itself up to this many
# attendees; for more it writes one fan-out row, which a worker expands (`expand`), so
# that the organizer's request does not grow with the audience.
WRITTEN_AT_ONCE = 100
EXPAND_CHUNK = 1000  # attendees a worker reads and writes at a time when it expands a fan-out row


def event_updated(event, now, was=None):
    """The ids of the rows telling the event's attendees about a change (`_tell`);
    `was`, its title before the change when the change renamed it."""
    return _tell(Kind.EVENT_UPDATED, event, now, was)


def event_cancelled(event, now):
    """The ids of the rows telling the attendees whose bookings the cancellation (already
    written in this transaction) cancelled."""
    return _tell(Kind.EVENT_CANCELLED, event, now)


def _tell(kind, event, now, was=None):
    """One row per attendee, in the current transaction, when there are at most
    WRITTEN_AT_ONCE; else one fan-out row. The ids written."""
    parent = {"kind": kind, "event_id": event.id, "params": templates.of_event(event, was), "created_at": now}
    # In no order: only whether there are more than WRITTEN_AT_ONCE matters, and the
    # query stops at the first row past them however large the audience is.
    attendees = db.session.execute(_audience(parent).order_by(None).limit(WRITTEN_AT_ONCE + 1)).all()
    if len(attendees) <= WRITTEN_AT_ONCE:
        return _copies(parent, attendees, now)
    return [_add(kind, None, event, parent["params"], now)]


def _add(kind, user, event, params, now, booking_id=None):
    """Insert one outbox row in the current transaction; its id."""
    return db.session.scalar(insert(Notification).values(
        kind=kind, user_id=user.id if user else None, recipient=user.email if user else None, params=params,
        event_id=event.id if event else None, booking_id=booking_id, status=Status.PENDING, attempts=0, next_attempt_at=now,
        created_at=now,
    ).returning(Notification.id))


def commit(*ids):
    """Commit the change and its notifications together, then hand their ids to the pool."""
    db.session.commit()
    submit(ids)


def submit(ids):
    """Hand committed notifications to this process's pool (the sweeper takes any it
    cannot hold)."""
    current_app.extensions["notifications"].submit([note_id for note_id in ids if note_id is not None])


def of_user(user_id):
    """A user's notifications, newest first (GET /api/notifications), but for the
    account's security emails (`Kind.UNLISTED`): a stolen access token must not read a
    reset's code."""
    return select(Notification).where(Notification.user_id == user_id, Notification.kind.not_in(Kind.UNLISTED)) \
        .order_by(Notification.id.desc())


def expand(parent, token, now):
    """Insert one notification per attendee of a fan-out row (a dict of its fields), and
    mark the fan-out row done, in one transaction; return the new ids. The attendees are
    read and written EXPAND_CHUNK at a time, so an event of 100,000 attendees never has
    them all in memory at once."""
    done = db.session.execute(
        update(Notification)
        .where(Notification.id == parent["id"], Notification.claim_token == token,
               Notification.status == Status.PENDING)
        .values(status=Status.SENT, sent_at=now, claimed_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:  # our claim ran out and another process has it
        return []
    attendees = db.session.execute(_audience(parent).execution_options(yield_per=EXPAND_CHUNK))
    return [note_id for chunk in attendees.partitions() for note_id in _copies(parent, chunk, now)]


def _audience(parent):
    """(user id, email, booking id, tickets) of the attendees a fan-out row (a dict of its
    fields) tells. EVENT_UPDATED reaches the bookings CONFIRMED when the change was
    made; EVENT_CANCELLED the bookings that the cancellation itself cancelled."""
    changed_at = parent["created_at"]
    if parent["kind"] == Kind.EVENT_UPDATED:  # confirmed at the time of the change
        audience = (
            Booking.created_at <= changed_at,
            or_(Booking.status == BookingStatus.CONFIRMED, Booking.cancelled_at > changed_at),
        )
    else:
        audience = (Booking.status == BookingStatus.CANCELLED, Booking.cancelled_at >= changed_at)
    return (
        select(User.id, User.email, Booking.id, Booking.tickets_count)
        .join(User, User.id == Booking.user_id)
        .where(Booking.event_id == parent["event_id"], *audience)
        .order_by(Booking.id)
    )


def _copies(parent, attendees, now):
    """Insert one row per attendee with the parent's parameters and its booking's ticket
    count; their ids. A parent written before templates (no parameters) gives each its
    own subject and body instead."""
    if not attendees:
        return []
    if parent["params"] is None:
        told = [{"subject": parent["subject"], "body": parent["body"]}] * len(attendees)
    else:
        told = [{"params": {**parent["params"], "tickets": tickets}} for *_, tickets in attendees]
    rows = [{"kind": parent["kind"], "user_id": user_id, "recipient": email, "booking_id": booking_id,
             "event_id": parent["event_id"], "status": Status.PENDING, "attempts": 0, "next_attempt_at": now,
             "created_at": now, **text}
            for (user_id, email, booking_id, _), text in zip(attendees, told, strict=True)]
    return list(db.session.scalars(insert(Notification).returning(Notification.id, sort_by_parameter_order=True),
                                   rows))
