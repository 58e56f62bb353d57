from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.bookings.routes import LOCATION, REPLAYED_DOC, booking_response
from eventbook.bookings.schemas import BookingSchema, IdempotencyHeader
from eventbook.holds import service
from eventbook.holds.schemas import HoldCreateSchema, HoldSchema
from eventbook.models import Role
from eventbook.ratelimits import per_account

blp = Blueprint("holds", __name__, url_prefix="/api/holds",
                description="Take tickets now, confirm them within minutes")

HOLD_ID = "<int:hold_id>"


@blp.route("", methods=["POST"])
@blp.auth(Role.CUSTOMER)
@per_account("RATELIMIT_BOOKING", scope="sales")  # one limit with bookings
@blp.arguments(HoldCreateSchema())
@blp.response(201, HoldSchema, headers={"Location": {"description": "the hold", "schema": {"type": "string"}}})
@blp.alt_response(404, description="not_found: no such event")
@blp.alt_response(409, description="already_holding (with holdId), already_booked, not_enough_tickets, sold_out, "
                                   "event_closed, sales_closed, seats_taken (with unavailableSeatIds)")
@blp.alt_response(429, description="rate_limited (one limit with bookings)")
def create_hold(data):
    """Hold tickets (and seats) until expiresAt"""
    hold = service.hold(current_user, data)
    return hold, {"Location": url_for("holds.Hold", hold_id=hold.id)}


@blp.route(f"/{HOLD_ID}")
class Hold(MethodView):
    @blp.auth()
    @blp.response(200, HoldSchema)
    @blp.alt_response(404, description="not_found (also when the caller may not see it)")
    def get(self, hold_id):
        """One hold (its customer, or an admin)

        A hold past `expiresAt` reads `EXPIRED` even before the sweep: reading it ends it,
        and its tickets come back."""
        return service.current(hold_id, current_user)

    @blp.auth()
    @blp.no_body
    @blp.response(204)
    @blp.alt_response(404, description="not_found")
    def delete(self, hold_id):
        """Release a hold: its tickets and seats come back (no change once it is not HELD)"""
        service.release(hold_id, current_user)


@blp.route(f"/{HOLD_ID}/confirm", methods=["POST"])
@blp.auth(Role.CUSTOMER)
@blp.no_body
@blp.arguments(IdempotencyHeader(), location="headers")
@blp.response(201, BookingSchema, headers=LOCATION)
@blp.alt_response(200, schema=BookingSchema, description="the hold was confirmed before: its booking", headers=LOCATION)
@blp.alt_response(404, description="not_found")
@blp.alt_response(409, description="hold_expired (past expiresAt, or released), event_closed (the event has "
                                   "started), already_booked, idempotency_key_reused; a repeated Idempotency-Key "
                                   "gets its first refusal again", headers=REPLAYED_DOC)
def confirm(headers, hold_id):
    """Turn a hold into a booking"""
    return booking_response(*service.confirm(hold_id, current_user, headers.get("idempotency_key")))
