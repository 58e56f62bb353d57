from marshmallow import ValidationError, fields, validate, validates_schema

from eventbook.models import SeatStatus
from eventbook.schemas import Headers, Id, Schema, SeatId, Title

MAX_SEATS = 50_000
MAX_NUMBER = 100_000


class SeatRowSchema(Schema):
    label = Title(20, required=True, metadata={"example": "A"})
    first = fields.Integer(data_key="from", strict=True, required=True, validate=validate.Range(1, MAX_NUMBER),
                           metadata={"description": "the row's first seat number"})
    last = fields.Integer(data_key="to", strict=True, required=True, validate=validate.Range(1, MAX_NUMBER),
                          metadata={"description": "its last seat number (at least `from`)"})

    @validates_schema
    def not_empty(self, data, **kwargs):
        if data["first"] > data["last"]:
            raise ValidationError("Must be at least `from`: the range is empty.", "to")


class SeatSectionSchema(Schema):
    name = Title(50, required=True, metadata={"example": "Stalls"})
    ticket_type_id = Id(required=True, metadata={"description": "a ticket type of this event: its seats' price"})
    rows = fields.List(fields.Nested(SeatRowSchema), required=True, validate=validate.Length(min=1))


class SeatMapSchema(Schema):
    """A whole seat map: its sections in order, each a list of rows of numbered seats."""

    sections = fields.List(fields.Nested(SeatSectionSchema), required=True, validate=validate.Length(min=1),
                           metadata={"description": f"at most {MAX_SEATS:,} seats in all; names unique in any "
                                                    "case; a row may come in several ranges (an aisle), listed "
                                                    "where its label first comes, numbers ascending"})

    @validates_schema
    def one_place_per_seat(self, data, **kwargs):
        names = [section["name"].casefold() for section in data["sections"]]
        if len(set(names)) != len(names):
            raise ValidationError("Section names must be unique (in any case).", "sections")
        count = sum(row["last"] - row["first"] + 1 for section in data["sections"] for row in section["rows"])
        if count > MAX_SEATS:
            raise ValidationError(f"{count} seats: a map has at most {MAX_SEATS}.", "sections")
        for section in data["sections"]:
            ranges, spelt = {}, {}
            for row in section["rows"]:
                label = spelt.setdefault(row["label"].casefold(), row["label"])
                if label != row["label"]:
                    raise ValidationError(f"Section {section['name']!r}: rows {label!r} and {row['label']!r} "
                                          "differ only in case.", "sections")
                ranges.setdefault(row["label"], []).append((row["first"], row["last"]))
            for label, spans in ranges.items():
                spans.sort()
                for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                    if start <= end:
                        raise ValidationError(
                            f"Section {section['name']!r}, row {label!r}: seat {start} is in two ranges.", "sections")


class SeatCountSchema(Schema):
    seats = fields.Integer(dump_only=True, metadata={"description": "the number of seats in the map"})


class SeatSchema(Schema):
    id = SeatId(dump_only=True)
    section = fields.String(dump_only=True)
    row = fields.String(dump_only=True)
    number = fields.Integer(dump_only=True)
    ticket_type_id = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": list(SeatStatus.ALL)})


class SeatQueryArgs(Schema):
    section = Title(50, metadata={"description": "only the seats of this section (its name as the map writes it, case included)"})


class SeatListHeaders(Headers):
    if_none_match = fields.String(data_key="If-None-Match", metadata={
        "description": "the ETag of the list the client has: a 304 while no seat has changed"})
