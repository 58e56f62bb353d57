"""Seat maps: PUT replaces a RESERVED event's map (and its counts), GET lists it in map
order with an ETag that changes whenever a seat does."""

import pytest

from tests import support
from tests.support import ok, refused
from tests.test_seat_sales import seats_agree_with_sales  # noqa: F401 - autouse: seats agree with the counters

TYPES = [{"name": "Stalls", "price": "50.00", "quantity": 5}, {"name": "Balcony", "price": "30.00", "quantity": 5},
         {"name": "Box", "price": "90.00", "quantity": 5}]


def seat_map(stalls, balcony):
    """Stalls: row B 1-3, then row A 1-2 (rows in the order given); Balcony: row 1, seats 5-6."""
    return {"sections": [
        {"name": "Stalls", "ticketTypeId": stalls, "rows": [{"label": "B", "from": 1, "to": 3},
                                                           {"label": "A", "from": 1, "to": 2}]},
        {"name": "Balcony", "ticketTypeId": balcony, "rows": [{"label": "1", "from": 5, "to": 6}]},
    ]}


@pytest.fixture
def seated(shop, make_event):
    """A RESERVED event with three ticket types and no seat map yet: (event id, {type name: id})."""
    event = make_event(seating="RESERVED", totalTickets=15, ticketTypes=TYPES)
    return event["id"], {name: ticket_type["id"] for name, ticket_type in shop.types(event["id"]).items()}


def put_map(client, actor, event_id, body):
    return client.put(f"/api/events/{event_id}/seats", json=body, headers=actor.headers)


def seats(client, event_id, query=""):
    return ok(client.get(f"/api/events/{event_id}/seats{query}"))


def test_a_seat_map_sets_the_counts_and_lists_in_map_order(client, shop, organizer, seated):
    event_id, types = seated
    assert ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"]))) == {"seats": 7}
    listed = seats(client, event_id)
    assert [(s["section"], s["row"], s["number"]) for s in listed] == [
        ("Stalls", "B", 1), ("Stalls", "B", 2), ("Stalls", "B", 3), ("Stalls", "A", 1), ("Stalls", "A", 2),
        ("Balcony", "1", 5), ("Balcony", "1", 6)]
    assert all(set(s) == {"id", "section", "row", "number", "ticketTypeId", "status"} for s in listed)
    assert [s["ticketTypeId"] for s in listed] == [types["Stalls"]] * 5 + [types["Balcony"]] * 2
    assert {s["status"] for s in listed} == {"AVAILABLE"} and len({s["id"] for s in listed}) == 7
    event = shop.event(event_id)
    assert (event["totalTickets"], event["availableTickets"]) == (7, 7)
    assert {t["name"]: (t["quantity"], t["availableQuantity"]) for t in event["ticketTypes"]} == {
        "Stalls": (5, 5), "Balcony": (2, 2), "Box": (0, 0)}  # a type without seats: none to sell


def test_a_row_in_several_ranges_is_listed_where_it_first_comes_numbers_ascending(client, organizer, seated):
    event_id, types = seated
    aisles = {"sections": [{"name": "Stalls", "ticketTypeId": types["Stalls"], "rows": [
        {"label": "B", "from": 1, "to": 1}, {"label": "A", "from": 5, "to": 6}, {"label": "C", "from": 1, "to": 1},
        {"label": "A", "from": 1, "to": 2}]}]}
    assert ok(put_map(client, organizer, event_id, aisles)) == {"seats": 6}
    assert [(s["row"], s["number"]) for s in seats(client, event_id)] == [
        ("B", 1), ("A", 1), ("A", 2), ("A", 5), ("A", 6), ("C", 1)]


def test_a_new_map_replaces_the_old_one(client, shop, organizer, admin, seated):
    event_id, types = seated
    ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"])))
    old = {s["id"] for s in seats(client, event_id)}
    body = {"sections": [{"name": "Floor", "ticketTypeId": types["Box"],
                          "rows": [{"label": "Z", "from": 10, "to": 12}, {"label": "Z", "from": 1, "to": 2}]}]}
    assert ok(put_map(client, admin, event_id, body)) == {"seats": 5}  # an admin may too
    listed = seats(client, event_id)
    assert [(s["section"], s["row"], s["number"]) for s in listed] == [
        ("Floor", "Z", 1), ("Floor", "Z", 2), ("Floor", "Z", 10), ("Floor", "Z", 11), ("Floor", "Z", 12)]
    assert not old & {s["id"] for s in listed}
    assert {n: t["quantity"] for n, t in shop.types(event_id).items()} == {"Stalls": 0, "Balcony": 0, "Box": 5}
    assert shop.event(event_id)["totalTickets"] == 5


def test_the_section_filter(client, organizer, seated):
    event_id, types = seated
    ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"])))
    assert [s["number"] for s in seats(client, event_id, "?section=Balcony")] == [5, 6]
    assert seats(client, event_id, "?section=Nowhere") == []
    refused(client.get(f"/api/events/{event_id}/seats?section=" + "x" * 51), 422, "validation_error")


def test_the_document_describes_the_seat_list_s_filter_and_its_conditional_header(client):
    operation = client.get("/api/openapi.json").get_json()["paths"]["/api/events/{event_id}/seats"]["get"]
    parameters = {(parameter["in"], parameter["name"]) for parameter in operation["parameters"]}
    assert {("query", "section"), ("header", "If-None-Match")} <= parameters, parameters
    assert {"200", "304", "404"} <= operation["responses"].keys()
    for status in ("200", "304"):  # what the answers below carry
        assert {"ETag", "Cache-Control"} <= operation["responses"][status]["headers"].keys(), status


def test_the_document_gives_seat_ids_as_64_bit_integers(client):
    """Seat ids go past 2**31: a client's generated code must not read them as 32-bit."""
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    described = [schemas["Seat"]["properties"]["id"], schemas["SeatRef"]["properties"]["id"],
                 schemas["Order"]["properties"]["seatIds"]["items"],
                 schemas["Error"]["properties"]["unavailableSeatIds"]["items"]]
    for seat_id in described:
        assert (seat_id["type"], seat_id["format"], seat_id["maximum"]) == ("integer", "int64", 2**53 - 1), seat_id


def test_a_matching_etag_is_a_304_for_one_small_read(app, client, organizer, seated):
    event_id, types = seated
    url = f"/api/events/{event_id}/seats"
    ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"])))
    first = client.get(url)
    assert len(ok(first)) == 7 and first.headers["ETag"] and first.headers["Cache-Control"] == "no-cache"
    assert first.headers["ETag"].startswith('W/"')  # pages read one by one: the same seats, not the same bytes
    statements, again = support.statements(app, lambda: client.get(url, headers={"If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]
    assert len(statements) == 1 and "FROM events" in statements[0]  # the seats are neither read nor rendered
    assert client.get(url, headers={"If-None-Match": f'"other", {first.headers["ETag"]}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    section = client.get(f"{url}?section=Stalls")
    assert len(ok(section)) == 5 and section.headers["ETag"] != first.headers["ETag"]  # another list, another tag
    assert client.get(f"{url}?section=Stalls", headers={"If-None-Match": section.headers["ETag"]}).status_code == 304


def test_the_etag_changes_with_every_seat(client, shop, customer, organizer, seated):
    event_id, types = seated
    url = f"/api/events/{event_id}/seats"
    empty = client.get(url)
    assert ok(empty) == []  # no map yet
    tags = [empty.headers["ETag"]]

    def changed():
        response = client.get(url, headers={"If-None-Match": tags[-1]})
        assert response.status_code == 200 and response.headers["ETag"] != tags[-1]
        tags.append(response.headers["ETag"])
        return ok(response)

    ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"])))
    seat = changed()[0]["id"]
    held = ok(shop.hold(customer, event_id, seatIds=[seat]), 201)
    assert changed()[0]["status"] == "HELD"
    shop.release(customer, held["id"])
    assert changed()[0]["status"] == "AVAILABLE"
    held = ok(shop.hold(customer, event_id, seatIds=[seat]), 201)
    changed()
    booking = ok(shop.confirm(customer, held["id"]), 201)
    assert changed()[0]["status"] == "BOOKED"
    ok(shop.cancel(customer, booking["id"]))
    assert changed()[0]["status"] == "AVAILABLE"
    ok(shop.book(customer, event_id, seatIds=[seat]), 201)
    assert changed()[0]["status"] == "BOOKED"
    assert len(set(tags)) == len(tags)


def test_a_type_added_to_a_seated_event_has_no_tickets_until_the_map_gives_it_seats(client, shop, organizer, seated):
    event_id, types = seated
    ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"])))
    added = ok(client.post(f"/api/events/{event_id}/ticket-types", json={"name": "VIP", "price": "99.00", "quantity": 50},
                           headers=organizer.headers), 201)
    assert (added["quantity"], added["availableQuantity"]) == (0, 0)  # its quantity is its seats: none yet
    body = {"sections": [{"name": "Royal box", "ticketTypeId": added["id"], "rows": [{"label": "R", "from": 1, "to": 4}]}]}
    ok(put_map(client, organizer, event_id, body))
    assert shop.types(event_id)["VIP"]["availableQuantity"] == 4


def test_an_etag_never_matches_another_event_that_got_the_same_id(client, organizer, make_event, shop):
    # An SQLite database from before migration 0008 may give a removed event's id to the next one.
    first = make_event(seating="RESERVED", totalTickets=2, ticketTypes=[{"name": "A", "price": "1.00", "quantity": 2}])
    ok(put_map(client, organizer, first["id"], {"sections": [{"name": "S", "ticketTypeId": first["ticketTypes"][0]["id"],
                                                              "rows": [{"label": "1", "from": 1, "to": 2}]}]}))
    tag = client.get(f"/api/events/{first['id']}/seats").headers["ETag"]
    assert client.delete(f"/api/events/{first['id']}", headers=organizer.headers).status_code == 204  # removed
    second = make_event(seating="RESERVED", totalTickets=3, ticketTypes=[{"name": "B", "price": "1.00", "quantity": 3}])
    ok(put_map(client, organizer, second["id"], {"sections": [{"name": "T", "ticketTypeId": second["ticketTypes"][0]["id"],
                                                               "rows": [{"label": "1", "from": 1, "to": 3}]}]}))
    again = client.get(f"/api/events/{second['id']}/seats", headers={"If-None-Match": tag})
    assert len(ok(again)) == 3 and again.headers["ETag"] != tag


def test_who_may_put_a_map(client, make_user, customer, organizer, seated):
    event_id, types = seated
    body = seat_map(types["Stalls"], types["Balcony"])
    refused(client.put(f"/api/events/{event_id}/seats", json=body), 401, "unauthorized")
    refused(put_map(client, customer, event_id, body), 403, "forbidden")
    refused(put_map(client, make_user("ORGANIZER"), event_id, body), 403, "forbidden")
    refused(put_map(client, organizer, 999_999, body), 404, "not_found")
    refused(client.get("/api/events/999999/seats"), 404, "not_found")
    assert seats(client, event_id) == []


BAD_MAPS = {
    "no sections": {"sections": []},
    "no rows": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": []}]},
    "empty range": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": 5, "to": 4}]}]},
    "overlap": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 5},
                                                                       {"label": "B", "from": 1, "to": 5},
                                                                       {"label": "A", "from": 5, "to": 9}]}]},
    "two sections, one name": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 1}]},
                                            {"name": "S", "ticketTypeId": 0, "rows": [{"label": "B", "from": 1, "to": 1}]}]},
    "two sections, one name in two cases": {"sections": [
        {"name": "Stalls", "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 1}]},
        {"name": "STALLS", "ticketTypeId": 0, "rows": [{"label": "B", "from": 1, "to": 1}]}]},
    "one row label in two cases": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [
        {"label": "A", "from": 1, "to": 3}, {"label": "a", "from": 4, "to": 6}]}]},
    "one section name as one letter and as two": {"sections": [
        {"name": "S\u00e9", "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 1}]},
        {"name": "Se\u0301", "ticketTypeId": 0, "rows": [{"label": "B", "from": 1, "to": 1}]}]},
    "one row label as one letter and as two": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [
        {"label": "\u00c5", "from": 1, "to": 3}, {"label": "A\u030a", "from": 2, "to": 6}]}]},
    "50,001 seats": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 50_000},
                                                                            {"label": "B", "from": 7, "to": 7}]}]},
    "number 0": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": 0, "to": 3}]}]},
    "number 100,001": {"sections": [{"name": "S", "ticketTypeId": 0,
                                     "rows": [{"label": "A", "from": 100_000, "to": 100_001}]}]},
    "long section name": {"sections": [{"name": "S" * 51, "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 1}]}]},
    "long row label": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A" * 21, "from": 1, "to": 1}]}]},
    "blank row label": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "  ", "from": 1, "to": 1}]}]},
    "a number as text": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": "1", "to": 1}]}]},
    "unknown field": {"sections": [{"name": "S", "ticketTypeId": 0, "rows": [{"label": "A", "from": 1, "to": 1}],
                                    "price": "1.00"}]},
}


@pytest.mark.parametrize("case", BAD_MAPS)
def test_a_bad_map_is_a_422_and_changes_nothing(client, shop, organizer, seated, case):
    event_id, types = seated
    ok(put_map(client, organizer, event_id, seat_map(types["Stalls"], types["Balcony"])))
    before, event = seats(client, event_id), shop.event(event_id)
    body = BAD_MAPS[case]
    for section in body["sections"]:
        section["ticketTypeId"] = types["Stalls"]
    refused(put_map(client, organizer, event_id, body), 422, "validation_error")
    assert seats(client, event_id) == before and shop.event(event_id) == event


def test_a_map_of_50000_seats_is_put_and_streamed_whole(client, shop, organizer, seated):
    event_id, types = seated
    rows = [{"label": f"R{n}", "from": 1, "to": 100} for n in range(500)]
    body = {"sections": [{"name": "Arena", "ticketTypeId": types["Box"], "rows": rows}]}
    assert ok(put_map(client, organizer, event_id, body)) == {"seats": 50_000}
    listed = seats(client, event_id)
    assert len(listed) == 50_000 and len({s["id"] for s in listed}) == 50_000
    assert [(s["row"], s["number"]) for s in listed] == [(f"R{n}", m) for n in range(500) for m in range(1, 101)]
    assert shop.types(event_id)["Box"]["quantity"] == shop.event(event_id)["totalTickets"] == 50_000


def test_a_map_only_for_a_reserved_event_of_its_own_types(client, shop, organizer, make_event, seated):
    event_id, types = seated
    general = make_event(totalTickets=5)
    body = seat_map(types["Stalls"], types["Balcony"])
    assert refused(put_map(client, organizer, general["id"], body), 422, "validation_error")["errors"].keys() == {"seating"}
    assert seats(client, general["id"]) == []
    other = shop.types(general["id"])["General admission"]["id"]
    body = seat_map(types["Stalls"], other)
    assert str(other) in refused(put_map(client, organizer, event_id, body), 422,
                                 "validation_error")["errors"]["sections"][0]
    assert seats(client, event_id) == [] and shop.event(event_id)["totalTickets"] == 15
    for event in (event_id, general["id"]):  # seating is fixed at creation
        refused(client.patch(f"/api/events/{event}", json={"seating": "GENERAL"}, headers=organizer.headers),
                422, "validation_error")
    assert shop.event(event_id)["seating"] == "RESERVED" and shop.event(general["id"])["seating"] == "GENERAL"


def test_a_map_in_use_is_not_replaced(client, shop, customer, make_user, organizer, seated):
    event_id, types = seated
    body = seat_map(types["Stalls"], types["Balcony"])
    ok(put_map(client, organizer, event_id, body))
    first, second = (s["id"] for s in seats(client, event_id)[:2])
    held = ok(shop.hold(customer, event_id, seatIds=[first]), 201)
    refused(put_map(client, organizer, event_id, body), 409, "seats_in_use")
    shop.release(customer, held["id"])
    buyer = make_user()
    booked = ok(shop.book(buyer, event_id, seatIds=[second]), 201)
    refused(put_map(client, organizer, event_id, body), 409, "seats_in_use")
    assert [s["status"] for s in seats(client, event_id)[:2]] == ["AVAILABLE", "BOOKED"]
    assert shop.event(event_id)["availableTickets"] == 6
    ok(shop.cancel(buyer, booked["id"]))
    assert ok(put_map(client, organizer, event_id, body)) == {"seats": 7}
    assert shop.event(event_id)["availableTickets"] == 7


def test_a_cancelled_event_keeps_its_map(client, shop, customer, make_user, organizer, seated):
    event_id, types = seated
    body = seat_map(types["Stalls"], types["Balcony"])
    ok(put_map(client, organizer, event_id, body))
    first, second = (seat["id"] for seat in seats(client, event_id)[:2])
    ok(shop.book(make_user(), event_id, seatIds=[first]), 201)  # booked once: a delete cancels, not removes
    ok(shop.hold(customer, event_id, seatIds=[second]), 201)
    assert client.delete(f"/api/events/{event_id}", headers=organizer.headers).status_code == 204
    refused(put_map(client, organizer, event_id, body), 409, "event_closed")
    listed = seats(client, event_id)
    assert len(listed) == 7 and {seat["status"] for seat in listed} == {"AVAILABLE"}  # the cancel freed its seats
