"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

Two rules of the API cannot be written in JSON Schema, so schemathesis would generate
requests that break them and report the 422 as "a valid request refused":

- an event's `date` must be in the future ("after now" is not expressible);
- a string with `x-minBytes` / `x-maxBytes` in the document (a password: 8 to 72 bytes
  of UTF-8) is measured in bytes, where JSON Schema's minLength and maxLength count
  characters. The document gives the character counts those bytes allow (2 to 72) as
  minLength and maxLength, so every value that breaks them breaks the byte rule too, and
  the x- rule says exactly what the server takes.

This hook teaches the generator those rules, right before each request of every phase:
a past date becomes a future one; a string that satisfies its own schema (length,
pattern) is fitted to its byte rule: cut on a character boundary when it is too long,
padded with ASCII when it is too short. A value that breaks its schema (a negative test)
is left as generated: it breaks the byte rule as well, and the server must refuse it.
"""

import re
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
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not text, and no byte count
        return value
    lowest, highest = schema.get("x-minBytes", 0), schema.get("x-maxBytes", len(encoded))
    if len(encoded) > highest:
        return encoded[:highest].decode("utf-8", errors="ignore")
    return value + "x" * (lowest - len(encoded))


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not isinstance(case.body, dict):
        return
    if case.operation.path.startswith("/api/events"):
        case.body = _future_date(case.body)
    for name, schema in _byte_rules(case.operation).items():
        if name in case.body and _satisfies(case.body[name], schema):
            case.body = {**case.body, name: _fit_bytes(case.body[name], schema)}
