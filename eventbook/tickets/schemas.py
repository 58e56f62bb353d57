from marshmallow import fields, validate

from eventbook.bookings.schemas import SeatRefSchema
from eventbook.schemas import Schema, Text, UTCDateTime

CODE_LENGTH = 64  # tickets.code


class TicketSchema(Schema):
    id = fields.Integer(dump_only=True)
    booking_id = fields.Integer(dump_only=True)
    ticket_type_id = fields.Integer(dump_only=True)
    seat = fields.Nested(SeatRefSchema, dump_only=True, allow_none=True,
                         metadata={"description": "null on general-admission events"})
    code = fields.String(dump_only=True, metadata={
        "description": "what the QR code holds: at least 128 random bits, URL-safe"})
    checked_in_at = UTCDateTime(dump_only=True, allow_none=True)


class ScanSchema(Schema):
    code = Text(required=True, validate=validate.Length(1, CODE_LENGTH),
                metadata={"description": "the ticket's code, as read from its QR code"})
    nonce = Text(load_default=None, allow_none=True, validate=validate.Length(1, 100),
                 metadata={"description": "the gate's id for this scan: a retry with the same nonce gets the "
                                          "first answer again, even after an undo of that check-in"})


class CheckInSchema(Schema):
    ticket = fields.Nested(TicketSchema, dump_only=True)
    checked_in_at = UTCDateTime(dump_only=True)
