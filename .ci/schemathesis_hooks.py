"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

An event's `date` must be in the future (API.md; a past date is a 422). JSON Schema
cannot say "after now", so schemathesis would generate mostly past dates and report
their 422 as a valid request refused. This hook teaches the generator the rule: a
generated event body whose `date` is a well-formed date-time in the past gets a date
in the future instead. Every check stays on; malformed dates are left as generated.
"""

from datetime import datetime, timedelta, timezone

import schemathesis


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or not operation.path.startswith("/api/events") or not isinstance(body, dict):
        return body
    value = body.get("date")
    if not isinstance(value, str):
        return body
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return body
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        past = when <= datetime.now(timezone.utc) + timedelta(minutes=5)
    except OverflowError:
        return body
    if past:
        body = {**body, "date": (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()}
    return body
