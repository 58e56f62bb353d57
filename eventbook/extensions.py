"""Extensions, created unbound here and bound to the app in `create_app`."""

import time
from datetime import timedelta

import flask_jwt_extended
import flask_limiter
from flask import current_app
from flask_cors import CORS
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from jwt import ExpiredSignatureError
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from eventbook.api import Api


class Base(DeclarativeBase):
    # Named constraints so that migrations can drop and alter them on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class JWTManager(flask_jwt_extended.JWTManager):
    """flask-jwt-extended's manager, checking each token in one decode, once.

    - Before its checked decode, the library decodes every token twice more without
      checking it (claims, then header), only to pass them to a decode-key loader.
      eventbook has one key and no such loader, and those two passes cost more CPU
      than the checked decode itself: about 7% of a booking (README, Performance).
    - A token that passed the checked decode is remembered (per app, the last
      VERIFIED_TOKENS of them), and the same string is not decoded again: its
      signature and claims cannot have changed. Only its expiry can, so a remembered
      token past `exp` is decoded again, and refused as expired. Revocation is not
      remembered: it is checked in the database on every request.
    - With a loader registered, or for an expired token (whose error carries the
      unchecked header and claims), the library's own path runs."""

    VERIFIED_TOKENS = 1024

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        verified = current_app.extensions.setdefault("eventbook.verified_tokens", {})
        claims = verified.get((encoded_token, csrf_value))
        if claims is not None and (allow_expired or not _expired(claims, jwt_config.leeway)):
            return dict(claims)
        try:
            claims = _decode_jwt(
                algorithms=jwt_config.decode_algorithms,
                allow_expired=allow_expired,
                audience=jwt_config.decode_audience,
                csrf_value=csrf_value,
                encoded_token=encoded_token,
                identity_claim_key=jwt_config.identity_claim_key,
                issuer=jwt_config.decode_issuer,
                leeway=jwt_config.leeway,
                secret=jwt_config.decode_key,
                verify_aud=jwt_config.decode_audience is not None,
                verify_sub=jwt_config.verify_sub,
            )
        except ExpiredSignatureError:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if len(verified) >= self.VERIFIED_TOKENS:
            verified.clear()  # bounded; a token dropped here is simply decoded again
        verified[(encoded_token, csrf_value)] = claims
        return dict(claims)


def _expired(claims, leeway):
    """PyJWT's test: expired once `exp` <= now - leeway."""
    exp = claims.get("exp")
    return exp is not None and int(exp) <= time.time() - _seconds(leeway)


def _seconds(leeway):
    return leeway.total_seconds() if isinstance(leeway, timedelta) else leeway


# Objects keep their values after commit: services return what they wrote without a
# second round trip to reload it.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
jwt = JWTManager()
api = Api()
cors = CORS()
limiter = flask_limiter.Limiter(key_func=get_remote_address, default_limits=[])
