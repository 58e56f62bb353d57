from marshmallow import fields

from eventbook.auth.schemas import UserSchema
from eventbook.models import EntryStatus
from eventbook.schemas import Id, Schema, UTCDateTime, within_ticket_limit


class EntrySchema(Schema):
    id = fields.Integer(dump_only=True)
    event_id = fields.Integer(dump_only=True)
    ticket_type_id = fields.Integer(dump_only=True)
    tickets_count = fields.Integer(dump_only=True)
    position = fields.Integer(dump_only=True, allow_none=True,
                              metadata={"description": "1 for the first in line; null unless WAITING"})
    status = fields.String(dump_only=True, metadata={"enum": list(EntryStatus.ALL)})
    hold_id = fields.Integer(dump_only=True, allow_none=True,
                             metadata={"description": "the hold offered (confirm it before its expiresAt)"})
    created_at = UTCDateTime(dump_only=True)


class QueuedEntrySchema(EntrySchema):
    user = fields.Nested(UserSchema, dump_only=True)


class JoinSchema(Schema):
    tickets_count = fields.Integer(strict=True, required=True, validate=within_ticket_limit,
                                   metadata={"minimum": 1, "maximum": "MAX_TICKETS_PER_BOOKING"})
    ticket_type_id = Id(metadata={"description": "needed when the event has several ticket types"})
