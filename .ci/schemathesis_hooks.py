"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

Two rules of API.md cannot be written in JSON Schema, so schemathesis would generate
requests that break them and report the 422 as "a valid request refused":

- an event's `date` must be in the future ("after now" is not expressible);
- a password is 8 to 72 *bytes* of UTF-8 (JSON Schema's maxLength counts characters).

This hook teaches the generator those rules, right before each request of every phase:
a schema-valid past date becomes a future one, a schema-valid password longer than 72
bytes is cut to 72 bytes on a character boundary. Every check stays on; values that
already break the schema (negative tests) are left as generated.
"""

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
        case.body = _password_in_bytes(case.body)
