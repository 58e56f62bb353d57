import hashlib
import json
from itertools import chain

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.models import Role
from eventbook.seats import service
from eventbook.seats.schemas import SeatCountSchema, SeatListHeaders, SeatMapSchema, SeatQueryArgs, SeatSchema

blp = Blueprint("seats", __name__, url_prefix="/api/events", description="Seat maps of RESERVED events")

EVENT_ID = "<int:event_id>"
# A seat picker polls: it may keep the list, but must ask (If-None-Match) before using it again.
CACHING = {"Cache-Control": "no-cache"}
LIST_HEADERS = {
    "ETag": {"description": "weak; changes whenever a seat changes: send it back as If-None-Match",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "no-cache (other answers of the API: no-store): the list may be kept, "
                                     "and is asked for again with If-None-Match before it is used",
                      "schema": {"type": "string", "enum": ["no-cache"]}},
}


@blp.route(f"/{EVENT_ID}/seats")
class Seats(MethodView):
    @blp.arguments(SeatListHeaders(), location="headers")  # documented; the view reads request.if_none_match
    @blp.arguments(SeatQueryArgs(), location="query")
    @blp.response(200, SeatSchema(many=True), headers=LIST_HEADERS)
    @blp.alt_response(304, description="If-None-Match holds the current ETag: no seat has changed", headers=LIST_HEADERS)
    @blp.alt_response(404, description="not_found")
    def get(self, _headers, args, event_id):
        """Every seat of an event and its status, in map order

        Public, with no personal data: sections in the order the map was put, rows in the
        order given, numbers ascending. The ETag changes whenever any seat does: a seat
        picker polls with If-None-Match and gets a 304 while nothing changed.
        """
        section = args.get("section")
        tag = etag(event_id, service.version(event_id), section)
        if request.if_none_match.contains_weak(tag):
            response = Response(status=304, headers=CACHING)
        else:
            pages = service.pages(event_id, section)
            first = next(pages, None)  # read before the status is sent: a failure is still an error response
            response = Response(stream_with_context(render(first, pages)), mimetype="application/json",
                                headers=CACHING)
        # Weak: the pages are read one after the other, so a seat that changed meanwhile
        # may already show in the body (never an older state than the tag's version).
        response.set_etag(tag, weak=True)
        return response

    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.arguments(SeatMapSchema())
    @blp.response(200, SeatCountSchema)
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="seats_in_use (a seat is held or booked), event_closed")
    def put(self, data, event_id):
        """Replace a RESERVED event's seat map

        Sections in order, each on a ticket type of the event (its seats' price), each a
        list of rows of numbered seats. The event's capacity and each type's quantity
        become their seat counts (0 for a type without seats). 422 on a GENERAL event
        (`seating`), a type of another event, overlapping or empty ranges, or more than
        50,000 seats.
        """
        return {"seats": service.replace(event_id, current_user, data["sections"])}


def etag(event_id, version, section):
    """The seat list's ETag: the event (its id and creation), the map's version, and which
    section was asked for."""
    seats_version, created_at = version
    tag = f"seats-{event_id}-{created_at:%Y%m%d%H%M%S%f}-{seats_version}"
    if section is not None:
        tag += "-" + hashlib.sha256(section.encode()).hexdigest()[:16]
    return tag


def render(first, pages):
    """The JSON array of seats, written a page at a time."""
    yield "["
    for index, rows in enumerate(chain([first], pages) if first else ()):
        page = [{"id": id_, "section": section, "row": row, "number": number, "ticketTypeId": type_id, "status": status}
                for id_, section, row, number, type_id, status in rows]
        yield ("," if index else "") + json.dumps(page, separators=(",", ":"))[1:-1]
    yield "]"
