"""GET /api/events: order, the default view, filters and paging."""

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support import days_from_now, iso, titles


def links(response):
    """rel -> the query of that link, from the `Link` header."""
    found = re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("Link", ""))
    return {rel: parse_qs(urlsplit(url).query) for url, rel in found}


def cancel_event(client, organizer, customer, event_id):
    """Book it (so that DELETE cancels rather than removes), then delete it."""
    response = client.post("/api/bookings", json={"eventId": event_id, "ticketsCount": 1}, headers=customer.headers)
    assert response.status_code == 201
    assert client.delete(f"/api/events/{event_id}", headers=organizer.headers).status_code == 204


def test_sorted_by_date(client, make_event):
    for title, days in [("middle", 10), ("first", 5), ("last", 20)]:
        make_event(title=title, date=iso(days_from_now(days)))
    assert titles(client.get("/api/events")) == ["first", "middle", "last"]


def test_default_hides_cancelled_and_past_events(client, organizer, customer, make_event, set_event_date):
    make_event(title="upcoming")
    cancelled = make_event(title="cancelled")
    past = make_event(title="past")
    cancel_event(client, organizer, customer, cancelled["id"])
    set_event_date(past["id"], datetime.now(timezone.utc) - timedelta(hours=1))
    assert titles(client.get("/api/events")) == ["upcoming"]
    assert client.get("/api/events").headers["X-Total-Count"] == "1"


def test_status_cancelled_lists_only_cancelled(client, organizer, customer, make_event):
    make_event(title="upcoming")
    cancelled = make_event(title="cancelled")
    cancel_event(client, organizer, customer, cancelled["id"])
    response = client.get("/api/events?status=CANCELLED")
    assert titles(response) == ["cancelled"]
    assert response.get_json()[0]["status"] == "CANCELLED"


def test_unknown_status_is_422(client):
    response = client.get("/api/events?status=POSTPONED")
    assert response.status_code == 422
    assert "status" in response.get_json()["errors"]


@pytest.mark.parametrize("q, expected", [
    ("JAZZ", ["Jazz night"]),
    ("rooftop", ["Open air"]),
    ("harbour", ["Boat party"]),
    ("100%", ["100% fun"]),
    ("%", []),  # words only (issue 19): punctuation alone finds nothing
    ("a_b", ["a_b meetup"]),
    ("nothing like this", []),
])
def test_q_searches_title_description_location(client, make_event, q, expected):
    make_event(title="Jazz night", description="Live music", location="Blue Note", date=iso(days_from_now(1)))
    make_event(title="Open air", description="On the ROOFTOP", location="Town hall", date=iso(days_from_now(2)))
    make_event(title="Boat party", description="On the water", location="Old Harbour", date=iso(days_from_now(3)))
    make_event(title="100% fun", description="Games", location="Arcade", date=iso(days_from_now(4)))
    make_event(title="a_b meetup", description="Testing", location="Lab", date=iso(days_from_now(5)))
    make_event(title="axb meetup", description="Testing", location="Lab", date=iso(days_from_now(6)))
    assert titles(client.get("/api/events", query_string={"q": q})) == expected


def test_from_and_to_bound_the_dates(client, make_event):
    for days in (5, 10, 20):
        make_event(title=f"day {days}", date=iso(days_from_now(days)))
    window = {"from": iso(days_from_now(7)), "to": iso(days_from_now(15))}
    assert titles(client.get("/api/events", query_string={"from": window["from"]})) == ["day 10", "day 20"]
    assert titles(client.get("/api/events", query_string={"to": window["to"]})) == ["day 5", "day 10"]
    assert titles(client.get("/api/events", query_string=window)) == ["day 10"]


def test_from_in_the_past_shows_past_scheduled_events_but_not_cancelled_ones(
    client, organizer, customer, make_event, set_event_date
):
    past = make_event(title="past")
    cancelled = make_event(title="cancelled")
    make_event(title="upcoming")
    set_event_date(past["id"], datetime.now(timezone.utc) - timedelta(days=2))
    cancel_event(client, organizer, customer, cancelled["id"])
    response = client.get("/api/events", query_string={"from": iso(days_from_now(-7))})
    assert titles(response) == ["past", "upcoming"]


def test_invalid_from_is_422(client):
    response = client.get("/api/events?from=yesterday")
    assert response.status_code == 422
    assert "from" in response.get_json()["errors"]


def test_organizer_id_filter(client, make_user, make_event):
    other = make_user("ORGANIZER")
    make_event(title="mine")
    make_event(owner=other, title="theirs")
    assert titles(client.get(f"/api/events?organizerId={other.id}")) == ["theirs"]
    assert titles(client.get("/api/events?organizerId=999999")) == []


def test_unknown_query_parameter_is_ignored(client, make_event):
    make_event(title="only")
    assert titles(client.get("/api/events?color=blue")) == ["only"]


def test_paging_headers_and_links(client, make_event):
    for n in range(5):
        make_event(title=f"event {n}", date=iso(days_from_now(n + 1)))

    first = client.get("/api/events?perPage=2")
    assert titles(first) == ["event 0", "event 1"]
    assert first.headers["X-Total-Count"] == "5"
    assert links(first)["next"]["page"] == ["2"]
    assert links(first)["next"]["perPage"] == ["2"]
    assert "prev" not in links(first)

    middle = client.get("/api/events?page=2&perPage=2")
    assert titles(middle) == ["event 2", "event 3"]
    assert links(middle)["prev"]["page"] == ["1"]
    assert links(middle)["next"]["page"] == ["3"]

    last = client.get("/api/events?page=3&perPage=2")
    assert titles(last) == ["event 4"]
    assert links(last)["prev"]["page"] == ["2"]
    assert "next" not in links(last)

    beyond = client.get("/api/events?page=9&perPage=2")
    assert titles(beyond) == []
    assert beyond.headers["X-Total-Count"] == "5"
    assert "next" not in links(beyond)


def test_single_page_has_no_prev_or_next(client, make_event):
    make_event()
    response = client.get("/api/events")
    assert response.headers["X-Total-Count"] == "1"
    assert "next" not in links(response) and "prev" not in links(response)


def test_per_page_above_100_is_capped(client, organizer):
    date = iso(days_from_now(3))
    for n in range(101):
        body = {"title": f"event {n}", "date": date, "location": "Hall", "totalTickets": 1}
        assert client.post("/api/events", json=body, headers=organizer.headers).status_code == 201
    response = client.get("/api/events?perPage=500")
    assert len(titles(response)) == 100
    assert response.headers["X-Total-Count"] == "101"
    assert links(response)["next"]["page"] == ["2"]
    assert {rel: link["perPage"] for rel, link in links(response).items()} == {
        "first": ["100"], "last": ["100"], "next": ["100"]}  # the pages as served
    assert len(titles(client.get("/api/events?perPage=100&page=2"))) == 1


def test_last_possible_page_is_empty_not_an_error(client, make_event):
    make_event()
    response = client.get("/api/events?page=2147483647&perPage=100")
    assert titles(response) == []
    assert response.headers["X-Total-Count"] == "1"


@pytest.mark.parametrize("query", ["page=2147483648", "q=%00", "from=0001-01-01T00:00:00%2B01:00"])
def test_out_of_range_query_values_are_422(client, query):
    response = client.get(f"/api/events?{query}")
    assert response.status_code == 422
    assert query.split("=")[0] in response.get_json()["errors"]


@pytest.mark.parametrize("query", ["perPage=0", "perPage=-1", "perPage=abc", "page=0", "page=abc",
                                   # int() would read these as 10, 5, 1 and 1; only ASCII digits are numbers here
                                   "page=1_0", "perPage=%2B5", "page=%201", "organizerId=1_0", "perPage=%D9%A1"])
def test_invalid_paging_is_422(client, query):
    response = client.get(f"/api/events?{query}")
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    assert query.split("=")[0] in response.get_json()["errors"]
