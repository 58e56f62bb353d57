"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

Two rules of API.md cannot be written in JSON Schema, so schemathesis would generate
requests that break them and report the 422 as "a valid request refused":

- an event's `date` must be in the future ("after now" is not expressible);
- a password is 8 to 72 *bytes* of UTF-8 (JSON Schema's maxLength counts characters).

This hook teaches the generator those rules, right before each request of every phase:
a schema-valid past date becomes a future one, a schema-valid password longer than 72
bytes is cut to 72 bytes on a character boundary. Every check stays on; values that
already break the schema (negative tests) are left as generated, with two exceptions:

- a negative password of fewer than 8 characters can still be 8 bytes or more (the
  CI seed 20261123 generated "Ç" and four characters outside the BMP: 5 characters,
  18 bytes), which the app rightly accepts, and schemathesis reports "schema-violating
  request accepted". Such a password is cut to 7 bytes on a character boundary: still
  under 8 characters, the reason it was generated, and now refused (422);

- a negative password made of surrogate code points (not valid Unicode) can reach the
  server as valid text, because JSON writes a high half followed by a low half as
  "\\udXXX\\udYYY", which is one valid character once decoded. The app then rightly
  accepts it, and schemathesis reports "schema-violating request accepted" (seen in CI,
  seed 20261123). Every surrogate becomes U+D800, so no two of them can pair up: the
  password stays invalid for the reason it was generated, and the app refuses it (422).
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


SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogates_unpaired(body):
    value = body.get("password")
    if isinstance(value, str) and SURROGATE.search(value):
        body = {**body, "password": SURROGATE.sub("\ud800", value)}
    return body


def _short_password_in_bytes(body):
    value = body.get("password")
    # Only negative passwords that are too short in characters: they must stay invalid.
    if not isinstance(value, str) or len(value) >= 8:
        return body
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        return body
    if len(encoded) >= 8:
        body = {**body, "password": encoded[:7].decode("utf-8", errors="ignore")}
    return body


def _password_in_bytes(body):
    value = body.get("password")
    # Only schema-valid passwords (8 to 72 characters, no NUL): cutting a negative case
    # could drop the very character that makes it invalid and turn it into a valid one.
    if not isinstance(value, str) or not 8 <= len(value) <= 72 or "\x00" in value:
        return body
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        return body
    if len(encoded) > 72:
        body = {**body, "password": encoded[:72].decode("utf-8", errors="ignore")}
    return body


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not isinstance(case.body, dict):
        return
    path = case.operation.path
    if path.startswith("/api/events"):
        case.body = _future_date(case.body)
    elif path == "/api/auth/register":
        case.body = _short_password_in_bytes(_password_in_bytes(_surrogates_unpaired(case.body)))
