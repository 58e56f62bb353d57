"""The request examples of the OpenAPI document: one place, keyed by operation.

Postman's import sends them as they are (its "Parameter generation: Example", the
default), Swagger UI fills "Try it out" with them, schemathesis sends them in its
examples phase, and CI's Postman run (.ci/postman.sh) sends every operation of the
document, with them, to a live server as each role: each must be a request the API
accepts (that run fails on any 422, any 5xx, and any operation it did not send).

How to add one, for an operation as the document spells it ("METHOD /api/path/{name}"):

    "POST /api/events/{event_id}/waiting-list": {
        "body": {"ticketsCount": 2},                 # the JSON body, camelCase as on the wire
        "query": {"status": "WAITING"},              # query parameters, by name
        "header": {"Idempotency-Key": "..."},        # header parameters, by name
    },

- An operation that takes a body needs an entry (tests/test_cli.py checks the document).
- A path parameter takes its value from PARAMETERS, by name: the ids there are the
  resources .ci/postman.sh creates before its run (add a new kind of id in both places).
- A query parameter without an example of its operation takes PARAMETERS[name] if there
  is one, else Postman makes one up from its schema, which may not suit the API.
- Dates must stay in the future: use IN_A_YEAR, computed when the document is built.
"""

from datetime import datetime, timedelta, timezone

from apispec import BasePlugin

IN_A_YEAR = (datetime.now(timezone.utc) + timedelta(days=365)).strftime("%Y-%m-%dT18:00:00Z")
PASSWORD = "ada-lovelace-1815"

# By name, for every operation that has the parameter.
PARAMETERS = {
    "event_id": 1,
    "booking_id": 1,
    "type_id": 1,  # the event's first ticket type
    "hold_id": 1,  # the customer's hold, on a second event
    "user_id": 2,  # the customer
    "ticket_id": 1,  # the first ticket of the booking
    "page": 1,
    "perPage": 20,
}

# The seat map's operations name the seed's third event, a RESERVED one, and its type.
SEATED = {"event_id": 3, "type_id": 3}

EXAMPLES = {
    "POST /api/auth/register": {
        "body": {"email": "ada@example.com", "password": PASSWORD, "role": "CUSTOMER", "name": "Ada Lovelace"},
    },
    "POST /api/auth/login": {"body": {"email": "ada@example.com", "password": PASSWORD}},
    "POST /api/auth/password": {"body": {"currentPassword": PASSWORD, "newPassword": "ada-lovelace-1852"}},
    "POST /api/auth/password/reset": {"body": {"email": "ada@example.com"}},
    # The code of a password reset email (this one is refused: a real one is made as its email is sent).
    "POST /api/auth/password/reset/confirm": {
        "body": {"code": "1.1796627257.s24J_AZ1amvPWkStMEeITeUE4u3kBMpiaY-JKZh8Rzk", "newPassword": "ada-lovelace-1852"},
    },
    # An empty body revokes the token sent; {"refreshToken": ...} would revoke that one too.
    "POST /api/auth/logout": {"body": {}},
    "GET /api/events": {"query": {"q": "conf", "status": "SCHEDULED", "from": "2026-01-01T00:00:00Z", "to": IN_A_YEAR}},
    "POST /api/events": {
        "body": {"title": "Tech Conf", "description": "Annual tech meetup", "date": IN_A_YEAR,
                 "location": "Convention Center", "totalTickets": 100},
    },
    "PUT /api/events/{event_id}": {"body": {"location": "Convention Center, Hall B", "totalTickets": 150}},
    "PATCH /api/events/{event_id}": {"body": {"description": "Annual tech meetup, second edition"}},
    "POST /api/bookings": {
        "header": {"Idempotency-Key": "6f1c0f36-first-try"},
        "body": {"eventId": PARAMETERS["event_id"], "ticketsCount": 2},
    },
    "POST /api/events/{event_id}/ticket-types": {"body": {"name": "VIP", "price": "80.00", "quantity": 10}},
    "PATCH /api/events/{event_id}/ticket-types/{type_id}": {"body": {"price": "30.00"}},
    "POST /api/holds": {"body": {"eventId": PARAMETERS["event_id"], "ticketsCount": 2}},
    "POST /api/holds/{hold_id}/confirm": {"header": {"Idempotency-Key": "payment-7c1e"}},
    "POST /api/events/{event_id}/waitlist": {"body": {"ticketsCount": 2}},
    "PATCH /api/admin/users/{user_id}": {"body": {"disabled": False}},
    "GET /api/events/{event_id}/seats": {"path": {"event_id": SEATED["event_id"]}},
    "PUT /api/events/{event_id}/seats": {
        "path": {"event_id": SEATED["event_id"]},
        "body": {"sections": [{"name": "Stalls", "ticketTypeId": SEATED["type_id"],
                               "rows": [{"label": "A", "from": 1, "to": 12}, {"label": "B", "from": 1, "to": 14}]}]},
    },
    # a code as the gate read it (this one is not a ticket's: 404)
    "POST /api/events/{event_id}/check-ins": {"body": {"code": "kx3Q9vT2mLw8ZpR4cN7yHa", "nonce": "gate-3-0001"}},
}


class ExamplesPlugin(BasePlugin):
    """Writes EXAMPLES and PARAMETERS into the document (apispec's plugin hooks)."""

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        for parameter in parameters or []:  # the path's own parameters: its ids
            if isinstance(parameter, dict) and parameter.get("name") in PARAMETERS:
                parameter.setdefault("example", PARAMETERS[parameter["name"]])

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            example = EXAMPLES.get(f"{method.upper()} {path}", {})
            for parameter in operation.get("parameters", []):
                if not isinstance(parameter, dict) or "name" not in parameter:
                    continue
                given = example.get(parameter["in"], {})
                if parameter["name"] in given:
                    parameter["example"] = given[parameter["name"]]
                elif parameter["name"] in PARAMETERS:
                    parameter.setdefault("example", PARAMETERS[parameter["name"]])
            if "body" in example:
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    media["example"] = example["body"]
