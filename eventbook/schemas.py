"""Building blocks shared by every resource's schemas: camelCase on the wire, unknown
fields refused, strings a database can store, timestamps in UTC."""

import re
import unicodedata
from datetime import timezone
from decimal import Decimal

import marshmallow as ma
from flask import current_app
from marshmallow import ValidationError, fields, validate

MAX_INT = 2**31 - 1  # the database's integer
MAX_SEAT_ID = 2**53 - 1  # seat ids are the database's big integers, and JavaScript's largest exact one


def within_ticket_limit(count):
    """A validator: 1 to MAX_TICKETS_PER_BOOKING tickets (an order's, a waiting-list entry's)."""
    limit = current_app.config["MAX_TICKETS_PER_BOOKING"]
    if not 1 <= count <= limit:
        raise ValidationError(f"Must be between 1 and {limit}.")


def camelcase(name):
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Schema(ma.Schema):
    """camelCase keys on the wire; unknown fields raise (marshmallow's default)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    def on_bind_field(self, field_name, field_obj):
        field_obj.data_key = camelcase(field_obj.data_key or field_name)


class Headers(Schema):
    """Request headers a view reads (webargs' "headers" location): named as sent, and
    every other header is fine."""

    class Meta(Schema.Meta):
        unknown = ma.EXCLUDE

    def on_bind_field(self, field_name, field_obj):
        pass  # header names are not camelCased


class Reply(Schema):
    """A schema of responses only: every field is read-only, which the document marks as
    always sent (`eventbook.api.RulesPlugin`)."""

    def on_bind_field(self, field_name, field_obj):
        super().on_bind_field(field_name, field_obj)
        field_obj.dump_only = True


class Text(fields.String):
    """A string PostgreSQL can store: no NUL character, no lone surrogate."""

    def __init__(self, **kwargs):
        metadata = {"pattern": "^[^\\u0000]*$", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("Must be valid Unicode text.") from exc
        return value


# What `\s` matches in the OpenAPI document's patterns (ECMAScript): the whitespace a
# title may not consist of, and that is stripped around it (Python's own str.strip()
# differs: it strips U+001C-U+001F and U+0085 too, and not U+FEFF).
SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"

# What a single line of text never holds: control characters (CR and LF among them, which
# would split an email header), the line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates that make text display in another order than it is
# stored. The marks U+200E, U+200F and U+061C stay allowed: right-to-left text needs them.
NOT_ONE_LINE = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069"  # a regex class
ONE_LINE_BREAKER = re.compile(f"[{NOT_ONE_LINE}]")

# Characters that show nothing of their own (a soft hyphen, zero-width spaces and
# joiners, the direction marks, word joiners, Hangul fillers, variation selectors, the
# blank Braille pattern, interlinear annotation marks): a title may hold them, but not
# consist of them and spaces alone. Only those of the Basic Multilingual Plane, which
# the document's pattern (ECMAScript, without the u flag) can name.
UNSEEN = (r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2060-\u2064\u2800\u3164"
          r"\ufe00-\ufe0f\uffa0\ufff9-\ufffb")  # a regex class
SHOWS_SOMETHING = re.compile(f"[^{re.escape(SPACE)}{NOT_ONE_LINE}{UNSEEN}]")  # SPACE: what the document's \s matches


class Title(Text):
    """A required single-line name: no control or bidirectional-override character,
    surrounding spaces removed, never blank; in Unicode's NFC form, so that a letter and
    its accent sent as one character or as two ("e" and U+0301) are the same name."""

    def __init__(self, max_length, **kwargs):
        pattern = f"^[^{NOT_ONE_LINE}]*[^\\s{NOT_ONE_LINE}{UNSEEN}][^{NOT_ONE_LINE}]*$"
        kwargs["metadata"] = {"pattern": pattern, **kwargs.get("metadata", {})}
        self.max_length = max_length
        super().__init__(validate=validate.Length(min=1, max=max_length), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if ONE_LINE_BREAKER.search(value):
            raise ValidationError("Must be one line of text, without control or bidirectional-override characters.")
        if len(value) > self.max_length:  # as sent: stripping must not make a long value fit
            raise ValidationError(f"Longer than maximum length {self.max_length}.")
        value = value.strip(SPACE)
        if not SHOWS_SOMETHING.search(value):
            raise ValidationError("Must not be blank.")
        return unicodedata.normalize("NFC", value)


# RFC 3339's date-time ("t" and "z" in either case, a space for the "T"), and, as a
# client may well send: a time without seconds, an offset without its colon or minutes
# (+0200, +02: strftime's %z), no offset (UTC), a date alone (midnight UTC). Not the
# other forms of ISO 8601 that Python's parser also reads (week dates, compact digits, a
# comma before the fraction, an hour alone, an offset in seconds).
DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
                       r"([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?")


class UTCDateTime(fields.AwareDateTime):
    """RFC 3339 (`DATE_TIME`); a time without an offset is taken as UTC; always stored
    as UTC."""

    # null where a date is needed (what the page sends for an empty date field); one
    # message for text that is not a date-time, whether its shape or its values are wrong
    default_error_messages = {"null": "A date and time is required.",
                              "invalid": "Not a valid date-time: RFC 3339, such as 2030-06-01T10:00:00Z."}

    TAKEN = ("RFC 3339, such as 2030-06-01T10:00:00Z or 2030-06-01T12:00:00+02:00; also taken: no seconds, "
             "an offset without its colon or minutes (+0200, +02), no offset (read as UTC), a date alone "
             "(midnight UTC); always returned in UTC with Z")

    def __init__(self, **kwargs):
        if not kwargs.get("dump_only"):  # what a client may send, in the document
            metadata = kwargs.pop("metadata", {})
            own = metadata.get("description")
            kwargs["metadata"] = {**metadata, "description": f"{own}; {self.TAKEN}" if own else self.TAKEN}
        super().__init__(format="iso", default_timezone=timezone.utc, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if not DATE_TIME.fullmatch(value):
                raise self.make_error("invalid")
            value = value.upper()  # RFC 3339 allows "t" and "z"; no other letter is valid anyway
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return value.astimezone(timezone.utc)
        except OverflowError as exc:
            raise ValidationError("Date is out of range.") from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return utc_text(value)


def utc_text(when):
    """A time as the API writes it, in a body, an error's facts or a CSV cell: ISO 8601 in
    UTC with Z (None stays None)."""
    return None if when is None else when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


AMOUNT = re.compile(r"^(100000(\.0{1,2})?|[0-9]{1,5}(\.[0-9]{1,2})?)$")  # ASCII digits: \d is any script's


class Money(fields.Decimal):
    """An amount of money: a decimal string with two decimals ("25.00"), never a float,
    from 0.00 to 100000.00."""

    def __init__(self, **kwargs):
        metadata = {"type": "string", "pattern": AMOUNT.pattern, "example": "25.00",
                    **kwargs.pop("metadata", {})}
        super().__init__(places=2, as_string=True, metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not AMOUNT.fullmatch(value):
            raise ValidationError('Must be a decimal string from "0.00" to "100000.00", at most two decimals.')
        return Decimal(value).quantize(Decimal("0.01"))


class Total(fields.Decimal):
    """A sum of money (a booking's total, a revenue): a decimal string with two decimals,
    never a float, and not capped as a price is."""

    def __init__(self, **kwargs):
        metadata = {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$", "example": "50.00", **kwargs.pop("metadata", {})}
        super().__init__(places=2, as_string=True, dump_only=True, metadata=metadata, **kwargs)


class Integer(fields.Integer):
    """An integer; written as a string (a query string's), ASCII digits only: Python's
    int() also reads other scripts' digits ("١" would be 1), a sign, spaces around and
    underscores between ("1_0" would be 10)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not (value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Id(Integer):
    def __init__(self, maximum=MAX_INT, **kwargs):
        kwargs.setdefault("strict", True)
        super().__init__(validate=validate.Range(min=1, max=maximum), **kwargs)


class SeatId(Id):
    """A seat's id: past MAX_INT (`models.SeatRange`), within what a JSON number holds
    exactly in every client."""

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"format": "int64", **kwargs.get("metadata", {})}  # for clients' generated code
        super().__init__(maximum=MAX_SEAT_ID, **kwargs)


class PageArgs(Schema):
    """`?page=1&perPage=20`; perPage above 100 is capped to 100."""

    page = Integer(load_default=1, validate=validate.Range(min=1, max=MAX_INT))
    per_page = Integer(load_default=20, validate=validate.Range(min=1),
                       metadata={"description": "items a page, 1 to 100 (a larger value is read as 100)"})

    @ma.post_load
    def cap(self, data, **kwargs):
        data["per_page"] = min(data["per_page"], 100)
        return data
