from datetime import datetime

from marshmallow import ValidationError, fields, validate, validates

from eventbook.models import EventStatus, utcnow
from eventbook.pagination import Cursor
from eventbook.schemas import Id, PageArgs, Schema, Text, Title, UTCDateTime

MAX_TICKETS = 1_000_000


class EventSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = fields.String(dump_only=True)
    description = fields.String(dump_only=True, allow_none=True)
    date = UTCDateTime(dump_only=True)
    location = fields.String(dump_only=True)
    total_tickets = fields.Integer(dump_only=True)
    available_tickets = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": [EventStatus.SCHEDULED, EventStatus.CANCELLED]})
    organizer_id = fields.Integer(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)


class EventCreateSchema(Schema):
    title = Title(200, required=True)
    description = Text(load_default=None, allow_none=True, validate=validate.Length(max=5000))
    date = UTCDateTime(required=True, metadata={"description": "must be in the future"})
    location = Title(200, required=True)
    total_tickets = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_TICKETS))

    @validates("date")
    def in_the_future(self, value, **kwargs):
        if value <= utcnow():
            raise ValidationError("Must be in the future.")


class EventUpdateSchema(EventCreateSchema):
    """Any subset of the create fields (loaded with partial=True)."""

    description = Text(allow_none=True, validate=validate.Length(max=5000))


class EventQueryArgs(PageArgs):
    q = Text(
        validate=validate.Length(max=200),
        metadata={
            "description": "words, each the beginning of a word of the title, description or location "
            "(case and accents ignored: conf finds Conférence)"
        },
    )
    date_from = UTCDateTime(data_key="from", metadata={"description": "events on or after this time"})
    date_to = UTCDateTime(data_key="to", metadata={"description": "events on or before this time"})
    organizer_id = Id(strict=False)  # query strings are strings
    status = fields.String(
        validate=validate.OneOf([EventStatus.SCHEDULED, EventStatus.CANCELLED]),
        metadata={"description": "default: upcoming SCHEDULED events"},
    )
    after = Cursor(datetime, int)  # the keyset of eventbook.events.search.ORDER: date, id
