from flask import current_app
from marshmallow import ValidationError, fields, validate, validates_schema

from eventbook.auth.schemas import UserSchema
from eventbook.events.schemas import EventSchema
from eventbook.models import BookingStatus
from eventbook.schemas import Headers, Id, Money, PageArgs, Reply, Schema, SeatId, Total, UTCDateTime, within_ticket_limit


class ItemSchema(Reply):
    ticket_type_id = fields.Integer()
    count = fields.Integer()
    price = Money(attribute="unit_price", metadata={"description": "the unit price it was taken at"})


class SeatRefSchema(Reply):
    id = SeatId()
    section = fields.String()
    row = fields.String()
    number = fields.Integer()


class BookingSchema(Schema):
    id = fields.Integer(dump_only=True)
    event_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    tickets_count = fields.Integer(dump_only=True)
    items = fields.List(fields.Nested(ItemSchema), dump_only=True)
    seats = fields.List(fields.Nested(SeatRefSchema), dump_only=True)
    total_amount = Total(metadata={"description": "sum of price x count, fixed when taken"})
    currency = fields.Function(lambda booking: booking.event.currency, dump_only=True,
                               metadata={"type": "string", "example": "EUR"})
    status = fields.String(dump_only=True, metadata={"enum": list(BookingStatus.ALL)})
    created_at = UTCDateTime(dump_only=True)
    cancelled_at = UTCDateTime(dump_only=True, allow_none=True)
    event = fields.Nested(EventSchema, dump_only=True)


class AttendeeBookingSchema(BookingSchema):
    """A booking as its event's organizer sees it: with the attendee."""

    user = fields.Nested(UserSchema, dump_only=True)


class OrderItemSchema(Schema):
    ticket_type_id = Id(required=True)
    count = fields.Integer(strict=True, required=True, validate=within_ticket_limit,
                           metadata={"minimum": 1, "maximum": "MAX_TICKETS_PER_BOOKING"})


def _only(given, *others):
    return {"required": [given], "not": {"anyOf": [{"required": [other]} for other in others]}}


class OrderSchema(Schema):
    """What a booking or a hold takes: `items`, or `ticketsCount` (+ `ticketTypeId`)
    for one type, or `seatIds` on a RESERVED event."""

    # Exactly one way of asking; `ticketTypeId` only with `ticketsCount`.
    OPENAPI_RULES = {"oneOf": [
        _only("ticketsCount", "items", "seatIds"),
        _only("items", "ticketsCount", "seatIds", "ticketTypeId"),
        _only("seatIds", "ticketsCount", "items", "ticketTypeId"),
    ]}

    event_id = Id(required=True)
    tickets_count = fields.Integer(
        strict=True, validate=within_ticket_limit, metadata={"minimum": 1, "maximum": "MAX_TICKETS_PER_BOOKING",
                               "description": "1 to MAX_TICKETS_PER_BOOKING (this server's, 10 by default)"})
    ticket_type_id = Id(metadata={"description": "with ticketsCount: which type (needed when the event has several)"})
    # The lists' limits are MAX_TICKETS_PER_BOOKING's (`one_way`), as this server sets it:
    # the document states its value (eventbook.api.RulesPlugin).
    items = fields.List(fields.Nested(OrderItemSchema), validate=validate.Length(min=1),
                        metadata={"description": "1 to MAX_TICKETS_PER_BOOKING (this server's, 10 by default) tickets "
                                                 "in all: the counts add up to at most x-maxTotalCount",
                                  "x-maxTotalCount": "MAX_TICKETS_PER_BOOKING", "maxItems": "MAX_TICKETS_PER_BOOKING"})
    seat_ids = fields.List(SeatId(), validate=validate.Length(min=1),
                           metadata={"description": "1 to MAX_TICKETS_PER_BOOKING (this server's, 10 by default) "
                                                    "distinct seats of a RESERVED event",
                                     "uniqueItems": True, "maxItems": "MAX_TICKETS_PER_BOOKING"})

    @validates_schema
    def one_way(self, data, **kwargs):
        given = [self.fields[name].data_key for name in ("tickets_count", "items", "seat_ids") if name in data]
        if len(given) != 1:  # under the fields given, or under ticketsCount when none is
            message = ["Give exactly one of ticketsCount, items or seatIds."]
            raise ValidationError({name: message for name in given or ["ticketsCount"]})
        if "ticket_type_id" in data and "tickets_count" not in data:
            raise ValidationError("Only with ticketsCount.", "ticketTypeId")
        limit = current_app.config["MAX_TICKETS_PER_BOOKING"]
        if "items" in data and sum(item["count"] for item in data["items"]) > limit:
            raise ValidationError(f"At most {limit} tickets in all.", "items")
        if "seat_ids" in data:
            if len(set(data["seat_ids"])) != len(data["seat_ids"]):
                raise ValidationError("Seats must be distinct.", "seatIds")
            if len(data["seat_ids"]) > limit:
                raise ValidationError(f"At most {limit} seats.", "seatIds")


class MyBookingsArgs(PageArgs):
    event_id = Id(strict=False, metadata={  # query strings are strings
        "description": "only this event's bookings; the newest is the confirmed one, if any (a customer has one "
                       "confirmed booking of an event at most)"})


class IdempotencyHeader(Headers):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(1, 255),
        metadata={"description": "repeats by the same user within IDEMPOTENCY_TTL_HOURS (24) get the first answer "
                                 "again, a 409 refusal too (with Idempotent-Replayed: true); a 404, 422, 429, 503 "
                                 "or a 409 'taken meanwhile' is not kept"},
    )
