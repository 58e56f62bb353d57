"""Rate limits, counted by `limits` in fixed windows in the storage of
RATELIMIT_STORAGE_URI: memory, or Redis shared by every worker and instance.

- `by_address(setting)`: a view's limit per client address (login, registration);
- `per_account(setting, scope)`: a view's limit per signed-in account (bookings and holds
  share one, anti-scalping; check-ins have theirs);
- `hit`, `test`, `window`, `clear`: the counts themselves, for the login throttle
  (`eventbook.auth.throttle`).

A limit counts in the view's decorator, so a request that no limit applies to costs
nothing here. When the storage cannot be reached, or does not answer within
STORE_TIMEOUT_SECONDS, the counts go to this process's memory instead, and the storage
is tried again every RETRY_SECONDS until it answers: every limited request is still
answered, and limited, without waiting on a store that hangs.
"""

import logging
import math
import threading
import time
from functools import cache, wraps

from flask import after_this_request, current_app, g, request
from flask_jwt_extended import current_user
from limits import parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from eventbook.errors import error

log = logging.getLogger(__name__)

EXTENSION = "eventbook.ratelimits"
# Far longer than a Redis round trip on a working network: a store this slow is one that
# hangs (a URL's own socket_timeout / socket_connect_timeout win over these).
STORE_TIMEOUT_SECONDS = 0.5
RETRY_SECONDS = 5.0  # while the store is down, how often one request tries it again


class Counts:
    """An app's counts: in its storage (a Redis client connects on first use), or in
    this process's memory while the storage fails to answer (`down`), trying it again
    once `retry_at` (time.monotonic()) has passed."""

    def __init__(self, storage_uri):
        options = {} if storage_uri.startswith("memory:") else {
            "socket_timeout": STORE_TIMEOUT_SECONDS, "socket_connect_timeout": STORE_TIMEOUT_SECONDS}
        self.stored = FixedWindowRateLimiter(storage_from_string(storage_uri, **options))
        self.in_memory = FixedWindowRateLimiter(MemoryStorage())
        self.down = threading.Event()
        self.retry_at = 0.0


def init_app(app):
    app.extensions[EXTENSION] = Counts(app.config["RATELIMIT_STORAGE_URI"])


def enabled():
    return current_app.config["RATELIMIT_ENABLED"]


@cache
def limits_of(value):
    """The limits a setting's value names ("5 per minute; 20 per hour"), parsed once."""
    return tuple(parse_many(value))


def by_address(setting):
    """A view decorator: the limits of `current_app.config[setting]` per client address."""
    return _limited(setting, lambda: ("address", setting, request.remote_addr or "-"))


def per_account(setting, scope):
    """A view decorator: each call counts against the limits of `current_app.config[setting]`
    (for instance "60 per minute") for the signed-in account, one count per `scope`
    (views that give the same scope share it)."""
    return _limited(setting, lambda: (scope, str(current_user.id)))


def _limited(setting, keys_of):
    """Past a limit, 429 with Retry-After. With RATELIMIT_HEADERS_ENABLED, every answer
    says where the client stands (X-RateLimit-*)."""

    def decorate(view):
        @wraps(view)
        def limited(*args, **kwargs):
            if enabled():
                keys = keys_of()
                for item in limits_of(current_app.config[setting]):
                    allowed = hit(item, *keys)
                    if current_app.config["RATELIMIT_HEADERS_ENABLED"]:
                        _tell(item, keys)  # the 429 too
                    if not allowed:
                        refuse(item, keys, "Too many requests, try again later")
            return view(*args, **kwargs)

        return limited

    return decorate


def hit(item, *keys):
    """Count one for `keys` against `item`: False once past it."""
    return _counted(lambda strategy: strategy.hit(item, *keys))


def test(item, *keys):
    """Would one more count for `keys` still be within `item`?"""
    return _counted(lambda strategy: strategy.test(item, *keys))


def window(item, *keys):
    """(reset_time, remaining) of `item`'s current window for `keys`."""
    return _counted(lambda strategy: strategy.get_window_stats(item, *keys))


def clear(item, *keys):
    _counted(lambda strategy: strategy.clear(item, *keys))


def _counted(operation):
    counts = current_app.extensions[EXTENSION]
    if counts.down.is_set():
        if time.monotonic() < counts.retry_at:
            return operation(counts.in_memory)
        counts.retry_at = time.monotonic() + RETRY_SECONDS  # this request tries the store; the others meanwhile don't
    try:
        result = operation(counts.stored)
    except Exception:  # noqa: BLE001 - any error of the storage's client: count in memory meanwhile
        counts.retry_at = time.monotonic() + RETRY_SECONDS
        if not counts.down.is_set():
            counts.down.set()
            log.warning("rate limit storage unreachable: counting rate limits in this process's memory")
        return operation(counts.in_memory)
    if counts.down.is_set():
        counts.down.clear()
        log.info("rate limit storage reachable again")
    return result


def refuse(item, keys, message):
    """429 in the envelope, with Retry-After: the seconds until `item`'s window for `keys`
    lets a request through again."""
    reset = window(item, *keys).reset_time
    error(429, "rate_limited", message, headers={"Retry-After": str(max(1, math.ceil(reset - time.time())))})


def _tell(item, keys):
    """X-RateLimit-Limit, -Remaining and -Reset of the limit with the least left."""
    stats = window(item, *keys)
    told = g.setdefault("rate_limit_told", {})
    if told and int(told["X-RateLimit-Remaining"]) <= stats.remaining:
        return
    if not told:

        @after_this_request
        def send(response):
            response.headers.extend(told)
            return response

    told.update({"X-RateLimit-Limit": str(item.amount), "X-RateLimit-Remaining": str(stats.remaining),
                 "X-RateLimit-Reset": str(int(stats.reset_time))})
