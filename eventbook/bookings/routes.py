from flask import current_app, jsonify, url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.bookings import service
from eventbook.bookings.schemas import BookingCreateSchema, BookingSchema, IdempotencyHeader
from eventbook.extensions import limiter
from eventbook.models import Booking as BookingModel, Role
from eventbook.pagination import HEADERS_DOC, paginate
from eventbook.schemas import PageArgs

blp = Blueprint("bookings", __name__, url_prefix="/api/bookings", description="Buying and cancelling tickets")

BOOKING_ID = "<int(max=2147483647):booking_id>"
BOOKING = BookingSchema()  # for the stored Idempotency-Key response


def _per_user():
    return f"user:{current_user.id}"


@blp.route("")
class Bookings(MethodView):
    @blp.auth(Role.CUSTOMER)
    @limiter.limit(lambda: current_app.config["RATELIMIT_BOOKING"], key_func=_per_user)
    @blp.arguments(IdempotencyHeader(), location="headers")
    @blp.arguments(BookingCreateSchema())
    @blp.response(201, BookingSchema, headers={"Location": {"description": "the new booking", "schema": {"type": "string"}}})
    @blp.alt_response(404, description="not_found: no such event")
    @blp.alt_response(409, description="not_enough_tickets, sold_out, already_booked, event_closed, idempotency_key_reused")
    @blp.alt_response(429, description="rate_limited")
    def post(self, headers, data):
        """Book tickets"""
        booking, replay = service.book(
            current_user, data["event_id"], data["tickets_count"], headers.get("idempotency_key"), BOOKING.dump
        )
        if replay:
            status, body = replay
            response = jsonify(body)
            response.status_code = status
            response.headers["Location"] = url_for("bookings.Booking", booking_id=body["id"])
            response.headers["Idempotent-Replayed"] = "true"
            return response
        return booking, {"Location": url_for("bookings.Booking", booking_id=booking.id)}


@blp.route("/my-bookings")
@blp.auth()
@blp.arguments(PageArgs(), location="query")
@blp.response(200, BookingSchema(many=True), headers=HEADERS_DOC)
def my_bookings(args):
    """The caller's bookings, newest first"""
    return paginate(service.mine(current_user), args, BookingModel)


@blp.route(f"/{BOOKING_ID}")
class Booking(MethodView):
    @blp.auth()
    @blp.response(200, BookingSchema)
    @blp.alt_response(404, description="not_found (also when the caller may not see it)")
    def get(self, booking_id):
        """One booking (its customer, the event's organizer, or an admin)"""
        return service.visible(booking_id, current_user)


@blp.route(f"/{BOOKING_ID}/cancel", methods=["POST"])
@blp.auth()
@blp.response(200, BookingSchema)
@blp.alt_response(404, description="not_found")
@blp.alt_response(409, description="event_closed")
def cancel(booking_id):
    """Cancel a booking and return its tickets (again: no change)"""
    return service.cancel(booking_id, current_user)
