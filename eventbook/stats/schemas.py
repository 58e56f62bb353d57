from marshmallow import fields

from eventbook.schemas import Reply, Total


def amount(description):
    return Total(metadata={"example": "1250.00", "description": description})


def counts(description):
    return fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": description})


class TypeStatsSchema(Reply):
    ticket_type_id = fields.Integer()
    name = fields.String()
    sold = fields.Integer(metadata={"description": "tickets of CONFIRMED bookings"})
    held = fields.Integer(metadata={"description": "tickets of HELD holds"})
    available = fields.Integer(metadata={"description": "the type's own remainder (availableQuantity)"})
    checked_in = fields.Integer()
    revenue = amount("of CONFIRMED bookings")


class EventStatsSchema(Reply):
    capacity = fields.Integer(metadata={"description": "totalTickets"})
    sold = fields.Integer(metadata={"description": "tickets of CONFIRMED bookings"})
    held = fields.Integer(metadata={"description": "tickets of HELD holds"})
    available = fields.Integer(metadata={"description": "availableTickets"})
    set_aside = fields.Integer(metadata={"description": "returned tickets kept for the waiting list"})
    checked_in = fields.Integer(metadata={"description": "tickets of CONFIRMED bookings checked in"})
    revenue = amount("sum of totalAmount of CONFIRMED bookings")
    currency = fields.String(metadata={"example": "EUR"})
    by_type = fields.List(fields.Nested(TypeStatsSchema))
    waiting = fields.Integer(metadata={"description": "WAITING entries of the waiting list"})


class AdminStatsSchema(Reply):
    users_by_role = counts("role -> users")
    events_by_status = counts("status -> events")
    bookings = fields.Integer(metadata={"description": "CONFIRMED bookings"})
    tickets_sold = fields.Integer(metadata={"description": "tickets of CONFIRMED bookings"})
    revenue_by_currency = fields.Dict(
        keys=fields.String(), values=Total(),
        metadata={"description": "currency -> sum of totalAmount of CONFIRMED bookings (decimal string)"})
    active_holds = fields.Integer(metadata={"description": "HELD holds not yet expired"})
    waiting_entries = fields.Integer(metadata={"description": "WAITING entries of all waiting lists"})
    notifications_by_status = counts("status -> notifications")
