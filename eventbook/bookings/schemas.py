from flask import current_app
from marshmallow import ValidationError, fields, validate, validates

from eventbook.auth.schemas import UserSchema
from eventbook.events.schemas import EventSchema
from eventbook.models import BookingStatus
from eventbook.schemas import Id, Schema, UTCDateTime


class BookingSchema(Schema):
    id = fields.Integer(dump_only=True)
    event_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    tickets_count = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": [BookingStatus.CONFIRMED, BookingStatus.CANCELLED]})
    created_at = UTCDateTime(dump_only=True)
    cancelled_at = UTCDateTime(dump_only=True, allow_none=True)
    event = fields.Nested(EventSchema, dump_only=True)


class AttendeeBookingSchema(BookingSchema):
    """A booking as its event's organizer sees it: with the attendee."""

    user = fields.Nested(UserSchema, dump_only=True)


class BookingCreateSchema(Schema):
    event_id = Id(required=True)
    tickets_count = fields.Integer(
        strict=True, required=True, metadata={"minimum": 1, "maximum": 10, "description": "1 to MAX_TICKETS_PER_BOOKING (10)"}
    )

    @validates("tickets_count")
    def within_limit(self, value, **kwargs):
        limit = current_app.config["MAX_TICKETS_PER_BOOKING"]
        if not 1 <= value <= limit:
            raise ValidationError(f"Must be between 1 and {limit}.")


class IdempotencyHeader(Schema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(1, 255),
        metadata={"description": "repeats by the same user within 24 h replay the first success"},
    )

    def on_bind_field(self, field_name, field_obj):
        pass  # header names are not camelCased

    class Meta(Schema.Meta):
        unknown = "exclude"  # every other header is fine
