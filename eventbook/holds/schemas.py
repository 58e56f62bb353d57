from marshmallow import fields

from eventbook.bookings.schemas import ItemSchema, OrderSchema, SeatRefSchema
from eventbook.models import HoldStatus
from eventbook.schemas import Schema, Total, UTCDateTime


class HoldSchema(Schema):
    id = fields.Integer(dump_only=True)
    event_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    items = fields.List(fields.Nested(ItemSchema), dump_only=True)
    seats = fields.List(fields.Nested(SeatRefSchema), dump_only=True,
                        metadata={"description": "the seats it holds now (a confirmed hold's: its booking's); empty "
                                                 "once released or expired, or its booking cancelled"})
    tickets_count = fields.Integer(dump_only=True)
    total_amount = Total()
    currency = fields.Function(lambda hold: hold.event.currency, dump_only=True,
                               metadata={"type": "string", "example": "EUR"})
    status = fields.String(dump_only=True, metadata={"enum": list(HoldStatus.ALL)})
    expires_at = UTCDateTime(dump_only=True)
    booking_id = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "once confirmed"})
    created_at = UTCDateTime(dump_only=True)


class HoldCreateSchema(OrderSchema):
    """What a hold takes: as a booking (`items`, `ticketsCount` + `ticketTypeId`, or `seatIds`)."""
