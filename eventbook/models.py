"""The tables. Timestamps are stored in UTC and always come back timezone-aware."""

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eventbook.extensions import db


def utcnow():
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """`timestamptz` on PostgreSQL; on SQLite a naive UTC text that sorts and compares
    correctly. Python code only ever sees aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Role:
    CUSTOMER = "CUSTOMER"
    ORGANIZER = "ORGANIZER"
    ADMIN = "ADMIN"


class EventStatus:
    SCHEDULED = "SCHEDULED"
    CANCELLED = "CANCELLED"


class BookingStatus:
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(sa.String(128))
    name: Mapped[str | None] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint(
            "0 <= available_tickets AND available_tickets <= total_tickets", name="tickets_in_range"
        ),
        sa.CheckConstraint("status IN ('SCHEDULED', 'CANCELLED')", name="status_valid"),
        sa.Index("ix_events_status_date", "status", "date", "id"),
        sa.Index("ix_events_organizer_id_date", "organizer_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    date: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(sa.String(200))
    total_tickets: Mapped[int]
    available_tickets: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default=EventStatus.SCHEDULED)
    organizer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint("tickets_count > 0", name="tickets_positive"),
        sa.CheckConstraint("status IN ('CONFIRMED', 'CANCELLED')", name="status_valid"),
        # One CONFIRMED booking per customer and event; cancelled ones may pile up.
        sa.Index(
            "uq_bookings_one_confirmed",
            "user_id",
            "event_id",
            unique=True,
            sqlite_where=sa.text("status = 'CONFIRMED'"),
            postgresql_where=sa.text("status = 'CONFIRMED'"),
        ),
        sa.Index("ix_bookings_user_id_created_at", "user_id", "created_at"),
        sa.Index("ix_bookings_event_id_status", "event_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    tickets_count: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default=BookingStatus.CONFIRMED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship(lazy="joined", innerjoin=True)
    user: Mapped[User] = relationship(lazy="select")


class RevokedToken(db.Model):
    """Logged-out tokens, checked on every authenticated request until they expire."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class TokenFamily(db.Model):
    """One login's tokens. Refreshing moves `refresh_jti` to the new refresh token, so
    presenting an older one shows it was copied (theft): the family is revoked."""

    __tablename__ = "token_families"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    refresh_jti: Mapped[str] = mapped_column(sa.String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationKind:
    BOOKING_CONFIRMED = "BOOKING_CONFIRMED"
    BOOKING_CANCELLED = "BOOKING_CANCELLED"
    EVENT_UPDATED = "EVENT_UPDATED"
    EVENT_CANCELLED = "EVENT_CANCELLED"


class NotificationStatus:
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class Notification(db.Model):
    """The outbox. A row with a recipient is one email. A row without one (`user_id`
    NULL) is a fan-out: a worker expands it into one row per attendee, so an event
    change costs the request one INSERT whatever the number of attendees."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_due", "status", "next_attempt_at"),
        sa.Index("ix_notifications_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    recipient: Mapped[str | None] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id", ondelete="SET NULL"))
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(sa.String(16), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(db.Model):
    """The first successful response to an `Idempotency-Key`, replayed on repeats."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int]
    response_body: Mapped[str] = mapped_column(sa.Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
