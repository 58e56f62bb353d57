from datetime import datetime

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from eventbook.models import EventStatus, Seating, utcnow
from eventbook.pagination import Cursor
from eventbook.schemas import Id, Money, PageArgs, Schema, Text, Title, UTCDateTime

MAX_TICKETS = 1_000_000
MAX_TYPES = 20
# ISO 4217 codes of the currencies in circulation (not the fund, metal and test codes).
# Prices are written with two decimals in every currency.
CURRENCIES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split()


class TicketTypeSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    price = Money(dump_only=True)
    quantity = fields.Integer(dump_only=True)
    available_quantity = fields.Integer(
        dump_only=True, metadata={"description": "quantity minus what is sold, held and set aside of this type"})
    sales_start = UTCDateTime(dump_only=True, allow_none=True)
    sales_end = UTCDateTime(dump_only=True, allow_none=True)


class EventSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = fields.String(dump_only=True)
    description = fields.String(dump_only=True, allow_none=True)
    date = UTCDateTime(dump_only=True)
    location = fields.String(dump_only=True)
    currency = fields.String(dump_only=True, metadata={"example": "EUR"})
    seating = fields.String(dump_only=True, metadata={"enum": list(Seating.ALL)})
    total_tickets = fields.Integer(dump_only=True)
    available_tickets = fields.Integer(dump_only=True)
    set_aside_tickets = fields.Integer(
        dump_only=True, metadata={"description": "tickets returned while customers wait, kept for the waiting list"})
    status = fields.String(dump_only=True, metadata={"enum": list(EventStatus.ALL)})
    organizer_id = fields.Integer(dump_only=True)
    ticket_types = fields.List(fields.Nested(TicketTypeSchema), dump_only=True)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)


class SalesWindow(Schema):
    """An optional sales window: salesStart before salesEnd."""

    sales_start = UTCDateTime(allow_none=True, metadata={
        "description": "not on sale before this time; before the event's date"})
    sales_end = UTCDateTime(allow_none=True, metadata={
        "description": "not on sale from this time; after salesStart, and in the future on a new type"})

    @validates_schema
    def window(self, data, **kwargs):
        start, end = data.get("sales_start"), data.get("sales_end")
        if start and end and start >= end:
            raise ValidationError("Must be after salesStart.", "sales_end")


class TicketTypeFields(SalesWindow):
    name = Title(100, required=True)
    price = Money(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_TICKETS))


class TicketTypeCreateSchema(TicketTypeFields):
    """A new type, on a new event or added to one."""

    @validates("sales_end")
    def ends_in_the_future(self, value, **kwargs):
        if value is not None and value <= utcnow():
            raise ValidationError("Must be in the future: a new type whose sales have ended could never sell.")


class TicketTypeUpdateSchema(TicketTypeFields):
    """Any subset of the create fields (loaded with partial=True); a change may end the
    type's sales now (a salesEnd that has passed)."""

    quantity = fields.Integer(strict=True, validate=validate.Range(0, MAX_TICKETS), metadata={
        "description": "0 takes the type off sale; never below what is sold and held of it (409 capacity_below_sold)"})


class EventCreateSchema(Schema):
    title = Title(200, required=True)
    description = Text(load_default=None, allow_none=True, validate=validate.Length(max=5000))
    date = UTCDateTime(required=True, metadata={"description": "must be in the future"})
    location = Title(200, required=True)
    total_tickets = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_TICKETS))
    currency = fields.String(
        load_default="EUR", validate=validate.OneOf(CURRENCIES),
        metadata={"description": "ISO 4217 code, fixed at creation", "example": "EUR"})
    seating = fields.String(
        load_default=Seating.GENERAL, validate=validate.OneOf(Seating.ALL),
        metadata={"description": "fixed at creation; RESERVED events sell seats of a seat map (PUT .../seats)"})
    ticket_types = fields.List(
        fields.Nested(TicketTypeCreateSchema), validate=validate.Length(1, MAX_TYPES),
        metadata={"description": "default: one type \"General admission\", price 0.00, quantity totalTickets; "
                                 "names unique within the event in any case"})

    @validates("date")
    def in_the_future(self, value, **kwargs):
        if value <= utcnow():
            raise ValidationError("Must be in the future.")

    @validates_schema
    def sales_start_before_the_event(self, data, **kwargs):
        """At the type's own field, under its index, as every other error of an item."""
        date = data.get("date")
        never = {index: {"salesStart": ["Must be before the event's date: the type could never sell."]}
                 for index, ticket_type in enumerate(data.get("ticket_types") or ())
                 if date and ticket_type.get("sales_start") and ticket_type["sales_start"] >= date}
        if never:
            raise ValidationError(never, "ticket_types")

    @validates("ticket_types")
    def distinct_names(self, value, **kwargs):
        # A type refused for a field of its own may be here without its name: its 422
        # names that field.
        names = [ticket_type["name"].casefold() for ticket_type in value if "name" in ticket_type]
        if len(set(names)) != len(names):
            raise ValidationError("Ticket type names must be unique within the event.")


class EventUpdateSchema(Schema):
    """Any subset of these fields (loaded with partial=True); currency, seating and the
    ticket types are changed elsewhere (or fixed at creation)."""

    title = Title(200, required=True)
    description = Text(allow_none=True, validate=validate.Length(max=5000))
    date = UTCDateTime(required=True, metadata={"description": "must be in the future"})
    location = Title(200, required=True)
    total_tickets = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_TICKETS))

    @validates("date")
    def in_the_future(self, value, **kwargs):
        if value <= utcnow():
            raise ValidationError("Must be in the future.")


class EventQueryArgs(PageArgs):
    q = Text(
        validate=validate.Length(max=200),
        metadata={
            "description": "words (runs of letters and digits; anything else separates them), each the beginning "
            "of a word of the title, description or location (case and accents ignored: conf finds Conférence)"
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
