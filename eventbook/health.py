from flask import current_app
from marshmallow import fields
from sqlalchemy import text

from eventbook.api import Blueprint
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.schemas import Reply

blp = Blueprint("health", __name__, url_prefix="/api", description="Liveness and job figures")


class JobsSchema(Reply):
    pending = fields.Integer(metadata={"description": "notifications waiting to be sent"})
    failed = fields.Integer(metadata={"description": "notifications that gave up (see `flask notifications retry`)"})
    in_flight = fields.Integer(metadata={"description": "notifications queued or being delivered in this process"})
    workers = fields.Integer(metadata={"description": "delivery threads per process"})
    queue_capacity = fields.Integer(metadata={"description": "notifications this process holds at most"})


class HealthSchema(Reply):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})
    jobs = fields.Nested(JobsSchema)


@blp.route("/health")
@blp.response(200, HealthSchema)
@blp.alt_response(503, description="unavailable: the database cannot be reached")
def health():
    """Is the service up, can it reach its database, how is delivery doing"""
    try:
        db.session.execute(text("SELECT 1"))
        jobs = current_app.extensions["notifications"].stats()
    except Exception:  # noqa: BLE001 - any failure to reach the database is an outage
        db.session.rollback()
        error(503, "unavailable", "The database is unreachable", headers={"Retry-After": "5"},
              database="unreachable")
    return {"status": "ok", "database": "ok", "jobs": jobs}

