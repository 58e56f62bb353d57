"""The outbox: notification rows written in the same transaction as the change they
describe, handed to the worker pool once that transaction has committed."""

from string import Formatter

from flask import current_app
from sqlalchemy import String, bindparam, case, cast, func, insert, literal, or_, select, update

from eventbook.extensions import db
from eventbook.models import (
    Booking,
    BookingStatus,
    Notification,
    NotificationKind as Kind,
    NotificationStatus as Status,
    User,
)


def _when(event):
    return event.date.strftime(WHEN)


def _tickets(count):
    return f"{count} ticket{'s' if count != 1 else ''}"


# The two booking emails. Each template is rendered in Python (`_fields`) and, for the
# PostgreSQL booking statement, in SQL (`confirmed_sql`): one text, two renderers.
WHEN = "%A %d %B %Y, %H:%M UTC"
WHEN_SQL = 'FMDay DD FMMonth YYYY, HH24:MI "UTC"'  # WHEN in to_char()'s words
CONFIRMED = ("Booking confirmed: {title}",
             "Your booking #{booking} of {tickets} for {title} on {when} at {location} is confirmed.")
CANCELLED = ("Booking cancelled: {title}",
             "Your booking #{booking} of {tickets} for {title} on {when} at {location} has been cancelled.")


def _fields(booking, event):
    return {"booking": booking.id, "tickets": _tickets(booking.tickets_count), "title": event.title,
            "when": _when(event), "location": event.location}


def booking_confirmed(booking, user, event):
    subject, body = (text.format(**_fields(booking, event)) for text in CONFIRMED)
    return _add(Kind.BOOKING_CONFIRMED, user, booking, event, subject, body)


def booking_cancelled(booking, user, event):
    subject, body = (text.format(**_fields(booking, event)) for text in CANCELLED)
    return _add(Kind.BOOKING_CANCELLED, user, booking, event, subject, body)


def confirmed_sql(booking, event, now):
    """The BOOKING_CONFIRMED row's values as SQL over the columns of a booking and of its
    event (the booking statement's CTEs), for an INSERT ... SELECT; the recipient is the
    bound parameter `email`."""
    count = booking.c.tickets_count
    fields = {
        "booking": cast(booking.c.id, String),
        "tickets": func.concat(cast(count, String), case((count == 1, " ticket"), else_=" tickets")),
        "title": event.c.title,
        "when": func.to_char(func.timezone("UTC", event.c.date), WHEN_SQL),
        "location": event.c.location,
    }
    subject, body = (_sql(text, fields) for text in CONFIRMED)
    return {
        "kind": literal(Kind.BOOKING_CONFIRMED), "user_id": booking.c.user_id, "recipient": bindparam("email", type_=String),
        "subject": subject, "body": body, "event_id": event.c.id, "booking_id": booking.c.id,
        "status": literal(Status.PENDING), "attempts": literal(0), "next_attempt_at": now, "created_at": now,
    }


def _sql(template, fields):
    parts = []
    for text, name, _spec, _conversion in Formatter().parse(template):
        parts += [literal(text)] if text else []
        parts += [fields[name]] if name is not None else []
    return func.concat(*parts)


def event_updated(event, now):
    """One fan-out row; a worker expands it to every attendee (see `expand`)."""
    return _add(
        Kind.EVENT_UPDATED, None, None, event,
        f"Event updated: {event.title}",
        f"{event.title} has changed. It now takes place on {_when(event)} at {event.location}.",
        now,
    )


def event_cancelled(event, now):
    return _add(
        Kind.EVENT_CANCELLED, None, None, event,
        f"Event cancelled: {event.title}",
        f"{event.title}, planned on {_when(event)} at {event.location}, has been cancelled "
        "by its organizer.",
        now,
    )


def _add(kind, user, booking, event, subject, body, now=None):
    """Insert one outbox row in the current transaction; its id."""
    values = {
        "kind": kind,
        "user_id": user.id if user else None,
        "recipient": user.email if user else None,
        "subject": subject,
        "body": body,
        "event_id": event.id,
        "booking_id": booking.id if booking else None,
        "status": Status.PENDING,
        "attempts": 0,
    }
    if now is not None:
        values["created_at"] = values["next_attempt_at"] = now
    return db.session.execute(INSERT_NOTIFICATION, values).scalar_one()


INSERT_NOTIFICATION = insert(Notification.__table__).returning(Notification.__table__.c.id)


def commit(*ids):
    """Commit the change and its notifications together, then hand their ids to the pool.
    Without a session (a booking whose one statement committed itself) there is nothing
    to commit, and none is made for it."""
    if db.session.registry.has():
        db.session.commit()
    current_app.extensions["notifications"].submit(list(ids))


def of_user(user_id):
    """A user's notifications, newest first (GET /api/notifications)."""
    return select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc())


def expand(parent, token, now):
    """Insert one notification per attendee of a fan-out row (a dict of its fields), in
    one statement, and mark the fan-out row done; return the new ids.

    EVENT_UPDATED reaches the bookings CONFIRMED when the change was made;
    EVENT_CANCELLED reaches the bookings that the cancellation itself cancelled."""
    done = db.session.execute(
        update(Notification)
        .where(Notification.id == parent["id"], Notification.claim_token == token,
               Notification.status == Status.PENDING)
        .values(status=Status.SENT, sent_at=now, claimed_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:  # our claim ran out and another process has it
        return []
    changed_at = parent["created_at"]
    if parent["kind"] == Kind.EVENT_UPDATED:  # confirmed at the time of the change
        audience = (
            Booking.created_at <= changed_at,
            or_(Booking.status == BookingStatus.CONFIRMED, Booking.cancelled_at > changed_at),
        )
    else:
        audience = (Booking.status == BookingStatus.CANCELLED, Booking.cancelled_at >= changed_at)
    rows = (
        select(
            literal(parent["kind"]),
            User.id,
            User.email,
            literal(parent["subject"]),
            literal(parent["body"] + " Your booking: ")
            + cast(Booking.tickets_count, String)
            + literal(" ticket(s)."),
            Booking.event_id,
            Booking.id,
            literal(Status.PENDING),
            literal(0),
            literal(now, Notification.next_attempt_at.type),
            literal(now, Notification.created_at.type),
        )
        .join(User, User.id == Booking.user_id)
        .where(Booking.event_id == parent["event_id"], *audience)
    )
    columns = ["kind", "user_id", "recipient", "subject", "body", "event_id", "booking_id",
               "status", "attempts", "next_attempt_at", "created_at"]
    return list(db.session.scalars(insert(Notification).from_select(columns, rows).returning(Notification.id)))
