from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.models import Role
from eventbook.stats import service
from eventbook.stats.schemas import AdminStatsSchema, EventStatsSchema

blp = Blueprint("stats", __name__, url_prefix="/api", description="Figures: an event's, and the whole system's")

EVENT_ID = "<int:event_id>"


@blp.route(f"/events/{EVENT_ID}/stats")
@blp.auth(Role.ORGANIZER, Role.ADMIN)
@blp.response(200, EventStatsSchema)
@blp.alt_response(404, description="not_found")
def event_stats(event_id):
    """An event's figures: capacity, sold, held, available, checked in, revenue; per ticket type"""
    return service.event_stats(event_id, current_user)


@blp.route("/admin/stats")
@blp.auth(Role.ADMIN)
@blp.response(200, AdminStatsSchema)
def admin_stats():
    """The whole system's figures (admins)"""
    return service.admin_stats()
