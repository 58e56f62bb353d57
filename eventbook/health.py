import logging

from flask import current_app
from marshmallow import fields
from sqlalchemy import text

from eventbook.api import Blueprint
from eventbook.errors import busy, error
from eventbook.extensions import db
from eventbook.schemas import Reply

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="/api", description="Liveness and job figures")


class JobsSchema(Reply):
    pending = fields.Integer(allow_none=True, metadata={
        "description": "notifications waiting to be sent (null when `database` is `busy`)"})
    failed = fields.Integer(allow_none=True, metadata={
        "description": "notifications that gave up, see `flask notifications retry` (null when `database` is `busy`)"})
    in_flight = fields.Integer(metadata={"description": "notifications queued or being delivered in this process"})
    workers = fields.Integer(metadata={"description": "delivery threads per process"})
    queue_capacity = fields.Integer(metadata={"description": "notifications this process holds at most"})


class HealthSchema(Reply):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={
        "example": "ok", "description": "`ok`, or `busy`: reached, but counting notifications waited a "
                                        "second for a lock (`pending` and `failed` are then null)"})
    jobs = fields.Nested(JobsSchema)


# The probe's round trip; on PostgreSQL it also shortens this transaction's wait for a
# lock to a second, so that a locked table is told as "busy" within a platform's check.
PROBE = {"postgresql": text("SELECT set_config('lock_timeout', '1s', true)"), "sqlite": text("SELECT 1")}


@blp.route("/health")
@blp.response(200, HealthSchema)
@blp.alt_response(503, description="unavailable: the database cannot be reached")
def health():
    """Is the service up, can it reach its database, how is delivery doing"""
    pool = current_app.extensions["notifications"]
    try:
        db.session.execute(PROBE[db.engine.dialect.name])
        jobs = pool.stats()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is an outage
        db.session.rollback()
        if busy(exc):  # the notifications table locked (a VACUUM FULL, a migration): up, busy
            log.warning("health: counting notifications was stopped (a lock not granted within a second, "
                        "or DB_STATEMENT_TIMEOUT_SECONDS)")
            return {"status": "ok", "database": "busy", "jobs": pool.stats(counted=False)}
        error(503, "unavailable", "The database is unreachable", headers={"Retry-After": "5"},
              database="unreachable")
    return {"status": "ok", "database": "ok", "jobs": jobs}

