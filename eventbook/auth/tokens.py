"""flask-jwt-extended, wired to our users, our revocation table and our error envelope."""

from flask import g, request

from eventbook.auth import cookies
from eventbook.auth.service import REUSED, REVOKED, token_owner, was_rotated
from eventbook.errors import envelope
from eventbook.extensions import jwt


@jwt.token_in_blocklist_loader
def token_revoked(_header, payload):
    """Is the token refused (revoked, its family revoked, its user disabled)? Loads its
    user in the same query (one round trip per authenticated request); `load_user`
    below then only hands it over."""
    user, refusal = token_owner(payload)
    g.token_user = user
    g.user_id = user.id if user else None
    g.token_refusal = refusal
    return refusal is not None


@jwt.user_lookup_loader
def load_user(_header, payload):
    return g.pop("token_user", None)


def _unauthorized(message):
    return envelope(401, "unauthorized", message)


@jwt.unauthorized_loader
def missing_token(_reason):
    return _unauthorized("Missing bearer token")


@jwt.invalid_token_loader
def invalid_token(_reason):
    return _unauthorized("Invalid token")


@jwt.expired_token_loader
def expired_token(_header, _payload):
    return _session_over(_unauthorized("Token has expired"))


@jwt.revoked_token_loader
def revoked_token(_header, payload):
    """Revoked; a refresh token that was rotated already is a reuse each time it comes
    back (its family stays revoked)."""
    refusal = g.pop("token_refusal", None) or REVOKED
    if request.endpoint == "auth.refresh" and refusal == REVOKED and was_rotated(payload):
        return _session_over(envelope(401, "refresh_token_reused", REUSED))
    return _session_over(_unauthorized(refusal))


def _session_over(response):
    """A refresh or logout refused for a token that is ours but expired or revoked
    (logged out elsewhere, its login revoked, its user disabled): that session is over,
    and its cookies go too. Only for such tokens: a request without one, or with a bad
    CSRF value, could come from another site, and must not log the browser out."""
    if request.endpoint in ("auth.refresh", "auth.logout"):
        cookies.clear_session(response)
    return response


@jwt.user_lookup_error_loader
def unknown_user(_header, _payload):
    return _unauthorized("Token's user no longer exists")


@jwt.needs_fresh_token_loader
@jwt.token_verification_failed_loader
def failed_verification(_header, _payload):
    return _unauthorized("Invalid token")
