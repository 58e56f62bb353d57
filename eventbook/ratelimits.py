"""Rate limits per signed-in account: bookings and holds share one (RATELIMIT_BOOKING,
anti-scalping), check-ins have theirs (RATELIMIT_CHECKIN).

flask-limiter (`eventbook.extensions.limiter`) keeps the per-address limits of the
anonymous views, login and registration, with its decorator (given through `by_address`).
Every other request skips its evaluation (`exempt_unless_by_address`, a request filter),
and the limits below count once a request, in the view's decorator, through the
`limits` strategy flask-limiter is configured with: the same storage (memory, or Redis
shared by every worker), the same fixed windows. When that storage cannot be reached
they count in this process's memory instead, as flask-limiter does, until it answers
again.
"""

import logging
import math
import threading
import time
from functools import wraps

from flask import after_this_request, current_app, g, request
from flask_jwt_extended import current_user
from limits import parse_many
from limits.storage import MemoryStorage

from eventbook.errors import error
from eventbook.extensions import limiter

log = logging.getLogger(__name__)

BY_ADDRESS = "eventbook_limited_by_address"  # the mark of a view limited by `by_address`

_storage_down = threading.Event()  # set while the storage fails to answer
_in_memory = {}  # strategy class -> that strategy, counting in this process's memory


@limiter.request_filter
def exempt_unless_by_address():
    """flask-limiter evaluates only the requests of views limited by `by_address` (their
    mark is copied onto every wrapper by functools.wraps, as each decorator here uses)."""
    return not getattr(current_app.view_functions.get(request.endpoint), BY_ADDRESS, False)


def by_address(setting):
    """A view decorator: flask-limiter's limit of `current_app.config[setting]` per
    client address; the only views whose requests flask-limiter evaluates."""

    def decorate(view):
        limited = limiter.limit(lambda: current_app.config[setting])(view)
        setattr(limited, BY_ADDRESS, True)
        return limited

    return decorate


def per_account(setting, scope):
    """A view decorator: each call counts against the limits of `current_app.config[setting]`
    (for instance "60 per minute") for the signed-in account, one count per `scope`
    (views that give the same scope share it); past one, 429 with Retry-After. With
    RATELIMIT_HEADERS_ENABLED, the answer says where the account stands (X-RateLimit-*)."""

    def decorate(view):
        @wraps(view)
        def limited(*args, **kwargs):
            if current_app.config["RATELIMIT_ENABLED"] and limiter.enabled:
                keys = (scope, str(current_user.id))
                for item in parse_many(current_app.config[setting]):
                    strategy = _hit(item, keys)
                    if current_app.config["RATELIMIT_HEADERS_ENABLED"]:
                        _tell(strategy, item, keys)
            return view(*args, **kwargs)

        return limited

    return decorate


def _hit(item, keys):
    strategy = limiter.limiter
    try:
        allowed = strategy.hit(item, *keys)
        if _storage_down.is_set():
            _storage_down.clear()
            log.info("rate limit storage reachable again")
    except Exception:  # noqa: BLE001 - any error of the storage's client: count in memory meanwhile
        if not _storage_down.is_set():
            _storage_down.set()
            log.warning("rate limit storage unreachable: counting per-account limits in this process's memory")
        strategy = _in_memory.setdefault(type(strategy), type(strategy)(MemoryStorage()))
        allowed = strategy.hit(item, *keys)
    if not allowed:
        refuse(strategy, item, keys, "Too many requests, try again later")
    return strategy


def refuse(strategy, item, keys, message):
    """429 in the envelope, with Retry-After: the seconds until `item`'s window for `keys`
    lets a request through again."""
    reset = strategy.get_window_stats(item, *keys).reset_time
    error(429, "rate_limited", message, headers={"Retry-After": str(max(1, math.ceil(reset - time.time())))})


def _tell(strategy, item, keys):
    """X-RateLimit-Limit, -Remaining and -Reset of the limit with the least left, as
    flask-limiter sends them for the views it limits."""
    stats = strategy.get_window_stats(item, *keys)
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
