"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

Some rules of the API cannot be written in JSON Schema, so schemathesis would generate
requests that break them and report the 422 as "a valid request refused". Besides a
sales window's end after its start, a type's sales starting before its event, a new
type's sales not already over, an event's ticket types with distinct names, ticket counts that add up to at most 10
(`x-maxTotalCount`) and a seat map's rows and sections that do not overlap (each fitted
below), there are these two:

- an event's `date` must be in the future ("after now" is not expressible);
- a string with `x-minBytes` / `x-maxBytes` in the document (a password: 8 to 72 bytes
  of UTF-8, in its `x-unicodeNormalization` form, NFKC) is measured in bytes, where JSON
  Schema's minLength and maxLength count characters. The document gives the character
  counts those bytes allow (2 to 72) as minLength and maxLength, so every value that
  breaks them breaks the byte rule too, and the x- rules say exactly what the server takes.

This hook teaches the generator those rules, right before each request of every phase:
a past date becomes a future one; a string that satisfies its own schema (length,
pattern) is put in its normalization form and fitted to its byte rule: cut on a
character boundary when it is too long, padded with ASCII when it is too short. A value that breaks its schema (a negative test)
is left as generated: it breaks the byte rule as well, and the server must refuse it.
"""

import re
import unicodedata
from datetime import datetime, timedelta, timezone

import schemathesis


def _future_date(body):
    value = body.get("date")
    if not isinstance(value, str):
        return body
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        past = when <= datetime.now(timezone.utc) + timedelta(minutes=5)
    except (ValueError, OverflowError):
        return body
    if past:
        body = {**body, "date": (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()}
    return body


def _resolve(document, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema if isinstance(schema, dict) else {}


def _byte_rules(operation):
    """{property: its schema} for the JSON body's properties that have a byte rule."""
    document = operation.schema.raw_schema
    definition = document["paths"][operation.path][operation.method.lower()]
    content = definition.get("requestBody", {}).get("content", {}).get("application/json", {})
    properties = _resolve(document, content.get("schema")).get("properties", {})
    rules = {}
    for name, schema in properties.items():
        schema = _resolve(document, schema)
        if "x-minBytes" in schema or "x-maxBytes" in schema:
            rules[name] = schema
    return rules


def _satisfies(value, schema):
    return (
        isinstance(value, str)
        and schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
        and ("pattern" not in schema or re.search(schema["pattern"], value) is not None)
    )


def _fit_bytes(value, schema):
    if "x-unicodeNormalization" in schema:
        value = unicodedata.normalize(schema["x-unicodeNormalization"], value)
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not text, and no byte count
        return value
    lowest, highest = schema.get("x-minBytes", 0), schema.get("x-maxBytes", len(encoded))
    if len(encoded) > highest:
        return encoded[:highest].decode("utf-8", errors="ignore")
    return value + "x" * (lowest - len(encoded))


def _is_time(value):
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True
    except (AttributeError, TypeError, ValueError):
        return False


def _window_in_order(ticket_type):
    """A sales window whose end is not after its start gets them swapped (apart by a day
    when equal): `salesEnd` after `salesStart` is a rule between two fields."""
    start, end = ticket_type.get("salesStart"), ticket_type.get("salesEnd")
    if not (_is_time(start) and _is_time(end)):
        return ticket_type
    first, last = sorted([start, end], key=lambda value: datetime.fromisoformat(value.replace("Z", "+00:00")))
    if first == last:
        last = (datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(days=1)).isoformat()
    return {**ticket_type, "salesStart": first, "salesEnd": last}


def _sells_before(ticket_type, date):
    """A type whose sales would start at or after its event's `date` could never sell:
    its `salesStart` is left out (the type is on sale from now), a rule between the type
    and the event."""
    start = ticket_type.get("salesStart")
    if not (_is_time(start) and _is_time(date)):
        return ticket_type
    if _when(start) >= _when(date):
        return {key: value for key, value in ticket_type.items() if key != "salesStart"}
    return ticket_type


def _ends_ahead(ticket_type):
    """A new type whose `salesEnd` has passed could never sell: its `salesEnd` is left out
    (on sale until the event), a rule between the type and the clock."""
    end = ticket_type.get("salesEnd")
    if _is_time(end) and _when(end) <= datetime.now(timezone.utc) + timedelta(minutes=5):
        return {key: value for key, value in ticket_type.items() if key != "salesEnd"}
    return ticket_type


def _when(value):
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _distinct_names(ticket_types):
    """Ticket types of one event with the same name (any case) get a suffix: names are
    unique within the event, a rule over the list's items."""
    seen, fitted = set(), []
    for index, kind in enumerate(ticket_types):
        name = kind.get("name") if isinstance(kind, dict) else None
        if isinstance(name, str) and name.casefold() in seen:
            kind = {**kind, "name": f"{name[:90]} {index}"}
        if isinstance(kind, dict) and isinstance(kind.get("name"), str):
            seen.add(kind["name"].casefold())
        fitted.append(kind)
    return fitted


def _within_total(body):
    """Schema-valid `items` whose counts add up to more than `x-maxTotalCount` (10) ask for
    one ticket each instead: a rule over the items together."""
    items = body.get("items")
    valid = isinstance(items, list) and 1 <= len(items) <= 10 and all(
        isinstance(item, dict) and isinstance(item.get("count"), int) and not isinstance(item.get("count"), bool)
        and 1 <= item["count"] <= 100 for item in items)
    if valid and sum(item["count"] for item in items) > 10:
        body = {**body, "items": [{**item, "count": 1} for item in items]}
    return body


def _map_in_order(body):
    """A seat map's rows with `from` after `to` get them swapped, and labels and section
    names repeated where their ranges would overlap get a suffix: rules over several
    rows and sections at once."""
    sections = body.get("sections")
    if not isinstance(sections, list) or not all(isinstance(section, dict) for section in sections):
        return body
    fitted, names = [], set()
    for index, section in enumerate(sections):
        name = section.get("name")
        if isinstance(name, str):
            if name in names:
                section = {**section, "name": f"{name[:45]} {index}"}
            names.add(section["name"])
        rows = section.get("rows")
        if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
            labelled = []
            for number, row in enumerate(rows):
                low, high = row.get("from"), row.get("to")
                if isinstance(low, int) and isinstance(high, int) and low > high:
                    row = {**row, "from": high, "to": low}
                if isinstance(row.get("label"), str):
                    row = {**row, "label": f"{row['label'][:15]} {number}"}
                labelled.append(row)
            section = {**section, "rows": labelled}
        fitted.append(section)
    return {**body, "sections": fitted}


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not isinstance(case.body, dict):
        return
    if case.operation.path.startswith("/api/events"):
        case.body = _future_date(case.body)
    if isinstance(case.body.get("ticketTypes"), list):
        date = case.body.get("date")
        case.body = {**case.body, "ticketTypes": _distinct_names(
            [_ends_ahead(_sells_before(_window_in_order(kind), date)) if isinstance(kind, dict) else kind
             for kind in case.body["ticketTypes"]])}
    if case.operation.path.endswith("/ticket-types"):
        case.body = _window_in_order(case.body)
        if case.operation.method.upper() == "POST":
            case.body = _ends_ahead(case.body)
    if "items" in case.body:
        case.body = _within_total(case.body)
    if case.operation.path.endswith("/seats") and case.operation.method.upper() == "PUT":
        case.body = _map_in_order(case.body)
    for name, schema in _byte_rules(case.operation).items():
        if name in case.body and _satisfies(case.body[name], schema):
            case.body = {**case.body, name: _fit_bytes(case.body[name], schema)}
