"""Failed logins, throttled without letting anyone lock an account's owner out (OWASP
Authentication Cheat Sheet: count per account and address, not per account alone).

- An address that fails RATELIMIT_LOGIN_FAILURES times on one account is refused for
  that account (429), even with the right password, until its window passes.
- An account that fails RATELIMIT_LOGIN_ACCOUNT times, from any addresses, is being
  guessed at: while it is, an address that has failed on it within the first limit's
  windows is refused at once, so a guess spread over many addresses gets one try per
  address and window. An address that has not failed on it (its owner's, usually) is
  served as always: the right password logs in.

Per-address limits on every login attempt are the view's (`ratelimits.by_address`).
These counts live in the same storage (memory, or Redis to share them between
processes), through `eventbook.ratelimits`. The email is hashed into the key, so the
storage holds no addresses of accounts.
"""

import hashlib

from flask import current_app, request

from eventbook import ratelimits
from eventbook.auth.schemas import as_stored


def check(email):
    """Refuse (429) a login for `email` from this address when it is throttled; else
    count the attempt as a failure of this address until it succeeds (`succeeded`
    forgets it): counted as it starts, not once its password is found wrong, so that
    guesses sent at once are held to the limit as guesses sent one by one are."""
    if not ratelimits.enabled():
        return
    account, pair = _keys(email)
    per_pair = ratelimits.limits_of(current_app.config["RATELIMIT_LOGIN_FAILURES"])
    if any(not ratelimits.test(item, *account)
           for item in ratelimits.limits_of(current_app.config["RATELIMIT_LOGIN_ACCOUNT"])):
        for item in per_pair:
            if ratelimits.window(item, *pair).remaining < item.amount:  # this address has failed on it
                _refuse(item, pair)
    for item in per_pair:
        if not ratelimits.hit(item, *pair):
            _refuse(item, pair)


def failed(email):
    """Count a failed login for `email` against the account (its address's failure was
    counted by `check`)."""
    if not ratelimits.enabled():
        return
    account, _pair = _keys(email)
    for item in ratelimits.limits_of(current_app.config["RATELIMIT_LOGIN_ACCOUNT"]):
        ratelimits.hit(item, *account)


def succeeded(email):
    """The right password from this address: its failures on `email` are forgotten."""
    if not ratelimits.enabled():
        return
    _account, pair = _keys(email)
    for item in ratelimits.limits_of(current_app.config["RATELIMIT_LOGIN_FAILURES"]):
        ratelimits.clear(item, *pair)


def account_digest(email):
    """The account an address names, as a count's key: hashed, so that the storage holds
    no addresses; by the address as accounts are stored, so that every spelling of it
    (upper-case, fullwidth) shares the count."""
    return hashlib.sha256(as_stored(email).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _keys(email):
    digest = account_digest(email)
    return ("login-account", digest), ("login-failures", digest, request.remote_addr or "-")


def _refuse(item, pair):
    # Attempts under way count as failures until they succeed (two at once cannot both slip by).
    ratelimits.refuse(item, pair, "Too many login attempts for this account, try again later")
