from marshmallow import fields

from eventbook.models import NotificationKind, NotificationStatus
from eventbook.notifications import templates
from eventbook.schemas import Schema, UTCDateTime


class NotificationSchema(Schema):
    id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"enum": list(NotificationKind.ALL)})
    recipient = fields.String(dump_only=True)
    subject = fields.Function(lambda note: templates.render(note)[0], dump_only=True, metadata={"type": "string"})
    body = fields.Function(lambda note: templates.render(note)[1], dump_only=True, metadata={"type": "string"})
    status = fields.String(dump_only=True, metadata={"enum": list(NotificationStatus.ALL)})
    attempts = fields.Integer(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    sent_at = UTCDateTime(dump_only=True, allow_none=True)
