from marshmallow import fields

from eventbook.models import NotificationKind, NotificationStatus
from eventbook.schemas import Schema, UTCDateTime


class NotificationSchema(Schema):
    id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"enum": [
        NotificationKind.BOOKING_CONFIRMED, NotificationKind.BOOKING_CANCELLED,
        NotificationKind.EVENT_UPDATED, NotificationKind.EVENT_CANCELLED]})
    recipient = fields.String(dump_only=True)
    subject = fields.String(dump_only=True)
    body = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": [
        NotificationStatus.PENDING, NotificationStatus.SENT, NotificationStatus.FAILED]})
    attempts = fields.Integer(dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    sent_at = UTCDateTime(dump_only=True, allow_none=True)
