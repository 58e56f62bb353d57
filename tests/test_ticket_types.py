"""Ticket types and prices: events with several types, items, totals, sales windows,
and the types' own endpoints. Money is a decimal string everywhere."""

import pytest

from tests.support import in_days, ok, refused

TWO_TYPES = [{"name": "Standard", "price": "25.00", "quantity": 60},
             {"name": "VIP", "price": "99.90", "quantity": 20}]


@pytest.fixture
def concert(make_event):
    return make_event(totalTickets=70, currency="USD", ticketTypes=TWO_TYPES)


def test_an_event_without_types_gets_one_free_general_admission_type(make_event):
    event = make_event(totalTickets=40)
    assert event["currency"] == "EUR" and event["seating"] == "GENERAL" and event["setAsideTickets"] == 0
    [only] = event["ticketTypes"]
    assert only == {"id": only["id"], "name": "General admission", "price": "0.00", "quantity": 40,
                    "availableQuantity": 40, "salesStart": None, "salesEnd": None}


@pytest.mark.parametrize("currency", ["JPY", "KWD", "XOF", "CHF"])  # no, three, no and two minor units
def test_any_circulating_iso_4217_currency_with_prices_in_two_decimals(shop, customer, make_event, currency):
    event = make_event(totalTickets=5, currency=currency, ticketTypes=[{"name": "A", "price": "1500.00", "quantity": 5}])
    booking = ok(shop.book(customer, event["id"], 2), 201)
    assert (booking["currency"], booking["totalAmount"]) == (currency, "3000.00")


@pytest.mark.parametrize("currency", ["usd", "XAU", "XTS", "ABC", "EURO", ""])  # lower case, a metal, the test code
def test_other_currency_codes_are_refused(client, organizer, currency):
    body = {"title": "T", "date": in_days(30), "location": "L", "totalTickets": 5, "currency": currency}
    assert "currency" in refused(client.post("/api/events", json=body, headers=organizer.headers), 422,
                                 "validation_error")["errors"]


def test_the_shorthand_books_the_only_type_as_before(shop, customer, make_event):
    event = make_event(totalTickets=5)
    booking = ok(shop.book(customer, event["id"], 2), 201)
    [item] = booking["items"]
    assert item == {"ticketTypeId": event["ticketTypes"][0]["id"], "count": 2, "price": "0.00"}
    assert booking["totalAmount"] == "0.00" and booking["currency"] == "EUR" and booking["seats"] == []
    assert shop.available(event["id"]) == 3
    assert shop.types(event["id"])["General admission"]["availableQuantity"] == 3


def test_items_of_several_types_are_taken_together_at_their_prices(shop, customer, concert):
    standard, vip = (shop.types(concert["id"])[name]["id"] for name in ("Standard", "VIP"))
    booking = ok(shop.book(customer, concert["id"], items=[{"ticketTypeId": standard, "count": 2},
                                                           {"ticketTypeId": vip, "count": 1}]), 201)
    assert booking["ticketsCount"] == 3
    assert booking["totalAmount"] == "149.90" and booking["currency"] == "USD"
    assert sorted((i["ticketTypeId"], i["count"], i["price"]) for i in booking["items"]) == sorted(
        [(standard, 2, "25.00"), (vip, 1, "99.90")])
    types = shop.types(concert["id"])
    assert (types["Standard"]["availableQuantity"], types["VIP"]["availableQuantity"]) == (58, 19)
    assert shop.available(concert["id"]) == 67


def test_the_same_type_listed_twice_is_one_item(shop, customer, concert):
    standard = shop.types(concert["id"])["Standard"]["id"]
    booking = ok(shop.book(customer, concert["id"], items=[{"ticketTypeId": standard, "count": 1},
                                                           {"ticketTypeId": standard, "count": 2}]), 201)
    assert [(i["ticketTypeId"], i["count"]) for i in booking["items"]] == [(standard, 3)]


def test_a_short_type_refuses_the_whole_order_and_says_which(shop, make_user, concert):
    standard, vip = (shop.types(concert["id"])[name]["id"] for name in ("Standard", "VIP"))
    ok(shop.book(make_user(), concert["id"], ticketsCount=10, ticketTypeId=vip), 201)
    ok(shop.book(make_user(), concert["id"], ticketsCount=8, ticketTypeId=vip), 201)
    body = refused(shop.book(make_user(), concert["id"], items=[{"ticketTypeId": standard, "count": 2},
                                                                {"ticketTypeId": vip, "count": 3}]),
                   409, "not_enough_tickets")
    assert body["ticketTypeId"] == vip and body["availableTickets"] == 2 and "VIP" in body["message"]
    types = shop.types(concert["id"])
    assert (types["Standard"]["availableQuantity"], types["VIP"]["availableQuantity"]) == (60, 2)  # nothing taken
    assert shop.available(concert["id"]) == 52
    ok(shop.book(make_user(), concert["id"], ticketsCount=2, ticketTypeId=vip), 201)
    body = refused(shop.book(make_user(), concert["id"], ticketsCount=1, ticketTypeId=vip), 409, "sold_out")
    assert body["ticketTypeId"] == vip and body["availableTickets"] == 0


def test_the_event_capacity_caps_the_types_together(shop, make_user, concert):
    standard, vip = (shop.types(concert["id"])[name]["id"] for name in ("Standard", "VIP"))
    for _ in range(6):
        ok(shop.book(make_user(), concert["id"], ticketsCount=10, ticketTypeId=standard), 201)
    ok(shop.book(make_user(), concert["id"], ticketsCount=10, ticketTypeId=vip), 201)
    assert shop.available(concert["id"]) == 0
    body = refused(shop.book(make_user(), concert["id"], ticketsCount=1, ticketTypeId=vip), 409, "sold_out")
    assert (body["ticketTypeId"], body["availableTickets"]) == (vip, 0)  # the event ran short: 0 VIP for anyone
    assert body["message"] == "Sold out: no tickets left"  # a type is named in the message when it is the one short
    assert shop.types(concert["id"])["VIP"]["availableQuantity"] == 10  # its own remainder, not capped


@pytest.mark.parametrize(("body", "field"), [
    ({"ticketsCount": 1}, "ticketTypeId"),  # several types: say which
    ({"ticketsCount": 1, "items": [{"ticketTypeId": 1, "count": 1}]}, "items"),  # and ticketsCount: both named
    ({"items": []}, "items"),
    ({"items": [{"ticketTypeId": 1, "count": 6}, {"ticketTypeId": 2, "count": 5}]}, "items"),
    ({"ticketTypeId": 1}, "ticketsCount"),  # none of the three: the count a one-type client forgot
    ({"seatIds": [1]}, "seatIds"),
])
def test_orders_that_cannot_be_valid_are_422_and_take_nothing(shop, customer, concert, body, field):
    response = shop.book(customer, concert["id"], **body)
    assert refused(response, 422, "validation_error")["errors"].get(field), response.get_json()
    assert shop.available(concert["id"]) == 70


def test_an_order_names_the_fields_it_gives_or_lacks(client, customer, concert):
    def errors(body):
        response = client.post("/api/bookings", json={"eventId": concert["id"], **body}, headers=customer.headers)
        return refused(response, 422, "validation_error")["errors"]

    message = ["Give exactly one of ticketsCount, items or seatIds."]
    assert errors({}) == {"ticketsCount": message}
    assert errors({"ticketsCount": 1, "seatIds": [1]}) == {"ticketsCount": message, "seatIds": message}


def test_a_type_of_another_event_or_none_is_not_found_here(shop, customer, concert, make_event):
    other = make_event(totalTickets=5)
    refused(shop.book(customer, concert["id"], ticketsCount=1, ticketTypeId=other["ticketTypes"][0]["id"]),
            404, "not_found")
    refused(shop.book(customer, concert["id"], items=[{"ticketTypeId": 999999, "count": 1}]), 404, "not_found")
    assert shop.available(other["id"]) == 5 and shop.available(concert["id"]) == 70


def test_sales_windows(client, shop, make_user, organizer, make_event):
    event = make_event(totalTickets=10, ticketTypes=[
        {"name": "Early bird", "price": "10.00", "quantity": 5, "salesEnd": in_days(10)},
        {"name": "Late", "price": "20.00", "quantity": 5, "salesStart": in_days(5)},
    ])
    early, late = (shop.types(event["id"])[name]["id"] for name in ("Early bird", "Late"))
    url = f"/api/events/{event['id']}/ticket-types"
    body = refused(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=late), 409, "sales_closed")
    assert body["ticketTypeId"] == late and body["salesStart"]
    ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=early), 201)
    ok(client.patch(f"{url}/{late}", json={"salesStart": in_days(-1)}, headers=organizer.headers))
    ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=late), 201)
    ok(client.patch(f"{url}/{early}", json={"salesEnd": in_days(-0.01)}, headers=organizer.headers))
    refused(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=early), 409, "sales_closed")
    refused(client.patch(f"{url}/{late}", json={"salesEnd": in_days(-2)}, headers=organizer.headers),
            422, "validation_error")  # before its start


def test_a_new_type_whose_sales_have_ended_is_refused(make_event, client, organizer):
    """It could never sell: refused on a new event and as a new type (a change may still
    end a type's sales now, as above)."""
    create = {"title": "T", "date": in_days(30), "location": "L", "totalTickets": 5,
              "ticketTypes": [{"name": "A", "price": "1.00", "quantity": 5, "salesEnd": in_days(-0.01)}]}
    never = ["Must be in the future: a new type whose sales have ended could never sell."]
    errors = refused(client.post("/api/events", json=create, headers=organizer.headers), 422, "validation_error")["errors"]
    assert errors == {"ticketTypes": {"0": {"salesEnd": never}}}  # at the field, as for a new type
    event = make_event(totalTickets=5)
    response = client.post(f"/api/events/{event['id']}/ticket-types", headers=organizer.headers,
                           json={"name": "Late", "price": "1.00", "quantity": 1, "salesEnd": in_days(-0.01)})
    assert refused(response, 422, "validation_error")["errors"] == {"salesEnd": never}
    assert [kind["name"] for kind in ok(client.get(f"/api/events/{event['id']}"))["ticketTypes"]] == [
        "General admission"]
    assert client.get("/api/events").headers["X-Total-Count"] == "1"


def test_a_window_must_end_after_it_starts(make_event, client, organizer):
    response = client.post("/api/events", headers=organizer.headers, json={
        "title": "T", "date": in_days(30), "location": "L", "totalTickets": 5,
        "ticketTypes": [{"name": "A", "price": "1.00", "quantity": 5, "salesStart": in_days(3), "salesEnd": in_days(2)}]})
    assert refused(response, 422, "validation_error")["errors"]


def test_a_type_sells_before_its_event_starts_or_is_refused(make_event, client, organizer):
    """A salesStart at or after the event's date would make a type that can never sell:
    refused at creation, on a new type, on a type's change, and on the event's date."""
    create = {"title": "T", "date": in_days(30), "location": "L", "totalTickets": 10,
              "ticketTypes": [{"name": "A", "price": "1.00", "quantity": 5},
                              {"name": "B", "price": "1.00", "quantity": 5, "salesStart": in_days(31)}]}
    never = ["Must be before the event's date: the type could never sell."]
    errors = refused(client.post("/api/events", json=create, headers=organizer.headers), 422, "validation_error")["errors"]
    assert errors == {"ticketTypes": {"1": {"salesStart": never}}}  # at the type's field, as for a new type
    event = make_event(date=in_days(30), totalTickets=10, ticketTypes=[
        {"name": "Early", "price": "1.00", "quantity": 5}, {"name": "Late", "price": "1.00", "quantity": 5,
                                                            "salesStart": in_days(20)}])
    url = f"/api/events/{event['id']}/ticket-types"
    late = event["ticketTypes"][1]["id"]
    body = {"name": "After", "price": "1.00", "quantity": 1, "salesStart": in_days(30)}
    assert refused(client.post(url, json=body, headers=organizer.headers), 422,
                   "validation_error")["errors"] == {"salesStart": never}
    assert "salesStart" in refused(client.patch(f"{url}/{late}", json={"salesStart": in_days(40)},
                                                headers=organizer.headers), 422, "validation_error")["errors"]
    moved = refused(client.patch(f"/api/events/{event['id']}", json={"date": in_days(10)}, headers=organizer.headers),
                    422, "validation_error")
    assert "Late" in moved["errors"]["date"][0]
    after = ok(client.get(f"/api/events/{event['id']}"))
    assert after["date"] == event["date"] and after["ticketTypes"] == event["ticketTypes"]
    ok(client.patch(f"{url}/{late}", json={"salesStart": in_days(5)}, headers=organizer.headers))
    assert ok(client.patch(f"/api/events/{event['id']}", json={"date": in_days(10)},
                           headers=organizer.headers))["date"] != event["date"]


@pytest.mark.parametrize("price", [25, 25.5, "25.001", "-1.00", "100000.01", "1e3", "NaN", " 1.00", "", "1.00\n"])
def test_prices_are_decimal_strings_with_two_decimals_at_most(client, organizer, price):
    response = client.post("/api/events", headers=organizer.headers, json={
        "title": "T", "date": in_days(30), "location": "L", "totalTickets": 5,
        "ticketTypes": [{"name": "A", "price": price, "quantity": 5}]})
    assert "price" in str(refused(response, 422, "validation_error")["errors"])


@pytest.mark.parametrize(("price", "shown"), [("0", "0.00"), ("7.5", "7.50"), ("100000", "100000.00")])
def test_prices_come_back_with_two_decimals(make_event, price, shown):
    event = make_event(ticketTypes=[{"name": "A", "price": price, "quantity": 5}])
    assert event["ticketTypes"][0]["price"] == shown


@pytest.mark.parametrize("missing", ["name", "price", "quantity"])
def test_a_type_without_a_required_field_is_a_422_naming_it(client, organizer, missing):
    """Also with a sales window of its own (its fields load, the type's name does not)."""
    kind = {"name": "A", "price": "25.00", "quantity": 1, "salesStart": "2000-01-01T00:00:00Z",
            "salesEnd": "2000-01-02T00:00:00+00:00"}
    del kind[missing]
    response = client.post("/api/events", headers=organizer.headers, json={
        "title": "T", "date": in_days(30), "location": "L", "totalTickets": 5, "ticketTypes": [kind, {
            "name": "B", "price": "1.00", "quantity": 1}]})
    assert missing in str(refused(response, 422, "validation_error")["errors"])
    assert client.get("/api/events").headers["X-Total-Count"] == "0"  # nothing was made


def test_type_names_are_unique_and_at_most_twenty(client, organizer, make_event):
    body = {"title": "T", "date": in_days(30), "location": "L", "totalTickets": 5}
    same = [{"name": "A", "price": "1.00", "quantity": 1}, {"name": "a", "price": "2.00", "quantity": 1}]
    refused(client.post("/api/events", json={**body, "ticketTypes": same}, headers=organizer.headers), 422,
            "validation_error")
    many = [{"name": f"T{n}", "price": "1.00", "quantity": 1} for n in range(21)]
    refused(client.post("/api/events", json={**body, "ticketTypes": many}, headers=organizer.headers), 422,
            "validation_error")
    event = make_event(ticketTypes=many[:20])
    response = client.post(f"/api/events/{event['id']}/ticket-types", json={"name": "T21", "price": "1.00",
                                                                           "quantity": 1}, headers=organizer.headers)
    refused(response, 422, "validation_error")
    response = client.post(f"/api/events/{make_event()['id']}/ticket-types",
                           json={"name": "General Admission", "price": "1.00", "quantity": 1}, headers=organizer.headers)
    assert refused(response, 422, "validation_error")["errors"]["name"]


def test_a_name_with_an_accent_sent_as_two_characters_is_the_same_name(client, organizer, make_event):
    """Names are kept in NFC: "E" and a combining acute is "\u00c9", as one letter."""
    body = {"title": "Cafe\u0301 Night", "date": in_days(30), "location": "L", "totalTickets": 5,
            "ticketTypes": [{"name": "\u00c9arly", "price": "1.00", "quantity": 2},
                            {"name": "E\u0301arly", "price": "1.00", "quantity": 3}]}
    assert refused(client.post("/api/events", json=body, headers=organizer.headers), 422,
                   "validation_error")["errors"] == {"ticketTypes": ["Ticket type names must be unique within the event."]}
    event = ok(client.post("/api/events", json={**body, "ticketTypes": body["ticketTypes"][:1]},
                           headers=organizer.headers), 201)
    assert event["title"] == "Caf\u00e9 Night"
    response = client.post(f"/api/events/{event['id']}/ticket-types", headers=organizer.headers,
                           json={"name": "e\u0301arly", "price": "1.00", "quantity": 1})
    assert refused(response, 422, "validation_error")["errors"] == {
        "name": ["A ticket type of this event already has this name."]}


def test_adding_changing_and_deleting_types(client, shop, customer, make_user, organizer, make_event):
    event = make_event(totalTickets=50)
    url = f"/api/events/{event['id']}/ticket-types"
    vip = ok(client.post(url, json={"name": "VIP", "price": "80.00", "quantity": 10}, headers=organizer.headers), 201)
    assert vip["availableQuantity"] == 10 and vip["price"] == "80.00"
    assert set(shop.types(event["id"])) == {"General admission", "VIP"}
    changed = ok(client.patch(f"{url}/{vip['id']}", json={"price": "90.00", "name": "Gold"}, headers=organizer.headers))
    assert (changed["name"], changed["price"]) == ("Gold", "90.00")
    booking = ok(shop.book(customer, event["id"], ticketsCount=4, ticketTypeId=vip["id"]), 201)
    assert booking["totalAmount"] == "360.00"
    ok(client.patch(f"{url}/{vip['id']}", json={"price": "10.00"}, headers=organizer.headers))
    assert ok(client.get(f"/api/bookings/{booking['id']}", headers=customer.headers))["totalAmount"] == "360.00"
    # quantity: never below what is sold; moves availability by the same amount
    body = refused(client.patch(f"{url}/{vip['id']}", json={"quantity": 3}, headers=organizer.headers),
                   409, "capacity_below_sold")
    assert body["sold"] == 4
    assert ok(client.patch(f"{url}/{vip['id']}", json={"quantity": 4}, headers=organizer.headers))[
        "availableQuantity"] == 0
    assert ok(client.patch(f"{url}/{vip['id']}", json={"quantity": 14}, headers=organizer.headers))[
        "availableQuantity"] == 10
    refused(client.patch(f"{url}/{vip['id']}", json={"quantity": 0}, headers=organizer.headers),
            409, "capacity_below_sold")
    # a type something was sold of is never deleted; an unused one is
    refused(client.delete(f"{url}/{vip['id']}", headers=organizer.headers), 409, "capacity_below_sold")
    spare = ok(client.post(url, json={"name": "Spare", "price": "1.00", "quantity": 1}, headers=organizer.headers), 201)
    off_sale = ok(client.patch(f"{url}/{spare['id']}", json={"quantity": 0}, headers=organizer.headers))
    assert (off_sale["quantity"], off_sale["availableQuantity"]) == (0, 0)
    refused(shop.book(make_user("CUSTOMER"), event["id"], ticketsCount=1, ticketTypeId=spare["id"]), 409, "sold_out")
    assert client.delete(f"{url}/{spare['id']}", headers=organizer.headers).status_code == 204
    assert set(shop.types(event["id"])) == {"General admission", "Gold"}
    # a deleted type's id is never given to a new one (SQLite would reuse the highest)
    extra = ok(client.post(url, json={"name": "Extra", "price": "2.00", "quantity": 1}, headers=organizer.headers),
               201)
    assert extra["id"] > spare["id"]
    refused(client.patch(f"{url}/{spare['id']}", json={"price": "3.00"}, headers=organizer.headers), 404, "not_found")
    assert {t["name"]: t["price"] for t in ok(client.get(f"/api/events/{event['id']}"))["ticketTypes"]}["Extra"] == "2.00"


def test_a_type_nothing_is_sold_or_held_of_now_is_deleted_and_its_past_bookings_keep_it(
        client, shop, customer, make_user, organizer, make_event):
    """Bookings that were cancelled and holds that were released no longer stop a
    delete: the type leaves the event (its id is a 404 from then on, its name free) and
    the past bookings still show what they took of it, at its price."""
    event = make_event(totalTickets=50, ticketTypes=[{"name": "Standard", "price": "10.00", "quantity": 40},
                                                     {"name": "VIP", "price": "80.00", "quantity": 10}])
    url = f"/api/events/{event['id']}/ticket-types"
    vip = shop.types(event["id"])["VIP"]["id"]
    booking = ok(shop.book(customer, event["id"], ticketsCount=2, ticketTypeId=vip), 201)
    holder = make_user("CUSTOMER")
    hold = ok(shop.hold(holder, event["id"], ticketsCount=1, ticketTypeId=vip), 201)
    refused(client.delete(f"{url}/{vip}", headers=organizer.headers), 409, "capacity_below_sold")
    ok(shop.cancel(customer, booking["id"]))
    refused(client.delete(f"{url}/{vip}", headers=organizer.headers), 409, "capacity_below_sold")  # still held
    assert shop.release(holder, hold["id"]).status_code == 204

    assert client.delete(f"{url}/{vip}", headers=organizer.headers).status_code == 204
    assert set(shop.types(event["id"])) == {"Standard"}
    assert shop.available(event["id"]) == 50
    for response in (client.patch(f"{url}/{vip}", json={"price": "1.00"}, headers=organizer.headers),
                     client.delete(f"{url}/{vip}", headers=organizer.headers)):
        refused(response, 404, "not_found")
    past = ok(client.get(f"/api/bookings/{booking['id']}", headers=customer.headers))
    assert (past["status"], past["items"], past["totalAmount"]) == (
        "CANCELLED", [{"ticketTypeId": vip, "count": 2, "price": "80.00"}], "160.00")
    assert [entry["name"] for entry in ok(client.get(f"/api/events/{event['id']}/stats",
                                                     headers=organizer.headers))["byType"]] == ["Standard"]
    # it is sold no more; with one type left the shorthand needs no ticketTypeId
    refused(shop.book(customer, event["id"], ticketsCount=1, ticketTypeId=vip), 404, "not_found")
    assert ok(shop.book(customer, event["id"], 1), 201)["items"][0]["ticketTypeId"] == shop.types(
        event["id"])["Standard"]["id"]
    # its name may be used again, by a new type with a new id
    again = ok(client.post(url, json={"name": "VIP", "price": "90.00", "quantity": 5}, headers=organizer.headers), 201)
    assert again["id"] > vip and set(shop.types(event["id"])) == {"Standard", "VIP"}


def test_deleting_a_type_lapses_its_waiting_list_and_keeps_a_type_with_seats(
        client, shop, customer, make_user, organizer, make_event):
    event = make_event(totalTickets=4, ticketTypes=[{"name": "Standard", "price": "10.00", "quantity": 4},
                                                    {"name": "Late", "price": "5.00", "quantity": 1}])
    url = f"/api/events/{event['id']}/ticket-types"
    late = shop.types(event["id"])["Late"]["id"]
    ok(shop.book(customer, event["id"], ticketsCount=4, ticketTypeId=shop.types(event["id"])["Standard"]["id"]), 201)
    waiting = make_user("CUSTOMER")
    ok(client.post(f"/api/events/{event['id']}/waitlist", json={"ticketsCount": 1, "ticketTypeId": late},
                   headers=waiting.headers), 201)
    assert client.delete(f"{url}/{late}", headers=organizer.headers).status_code == 204
    assert ok(client.get(f"/api/events/{event['id']}/waitlist/me", headers=waiting.headers))["status"] == "LAPSED"
    assert ok(client.get(f"/api/events/{event['id']}/stats", headers=organizer.headers))["waiting"] == 0

    seated = make_event(totalTickets=2, seating="RESERVED", ticketTypes=[{"name": "Stalls", "price": "30.00",
                                                                         "quantity": 2},
                                                                        {"name": "Box", "price": "60.00", "quantity": 1}])
    stalls, box = (shop.types(seated["id"])[name]["id"] for name in ("Stalls", "Box"))
    ok(client.put(f"/api/events/{seated['id']}/seats", json={"sections": [
        {"name": "Stalls", "ticketTypeId": stalls, "rows": [{"label": "A", "from": 1, "to": 2}]},
        {"name": "Box", "ticketTypeId": box, "rows": [{"label": "B", "from": 1, "to": 1}]}]}, headers=organizer.headers))
    refused(client.delete(f"/api/events/{seated['id']}/ticket-types/{box}", headers=organizer.headers),
            409, "capacity_below_sold")


def test_only_the_owner_or_an_admin_manages_types(client, make_user, admin, make_event):
    event = make_event()
    url = f"/api/events/{event['id']}/ticket-types"
    body = {"name": "X", "price": "1.00", "quantity": 1}
    refused(client.post(url, json=body, headers=make_user("ORGANIZER").headers), 403, "forbidden")
    refused(client.post(url, json=body, headers=make_user("CUSTOMER").headers), 403, "forbidden")
    refused(client.post(url, json=body), 401, "unauthorized")
    ok(client.post(url, json=body, headers=admin.headers), 201)
    type_id = event["ticketTypes"][0]["id"]
    refused(client.patch(f"/api/events/{event['id']}/ticket-types/999999", json={"price": "2.00"},
                         headers=admin.headers), 404, "not_found")
    other = make_event()
    refused(client.patch(f"/api/events/{other['id']}/ticket-types/{type_id}", json={"price": "2.00"},
                         headers=admin.headers), 404, "not_found")


def test_money_is_never_a_float_in_json(client, shop, customer, concert):
    vip = shop.types(concert["id"])["VIP"]["id"]
    response = shop.book(customer, concert["id"], ticketsCount=3, ticketTypeId=vip)
    text = response.get_data(as_text=True)
    assert '"totalAmount":"299.70"' in text.replace(" ", "") and '"price":"99.90"' in text.replace(" ", "")
