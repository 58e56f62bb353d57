"""Administration of accounts: the users list (paged, searched, filtered by role), role
changes and disabling. Who may call these at all is in tests/test_authz_matrix.py."""


import pytest

from tests import support
from tests.support import PASSWORD, ok

USERS = "/api/admin/users"


def assert_error(response, status, code):
    body = response.get_json()
    assert response.status_code == status, body
    assert (body["status"], body["code"]) == (status, code)
    return body


def change(client, admin, user_id, **fields):
    return client.patch(f"{USERS}/{user_id}", json=fields, headers=admin.headers)


def while_a_disable_is_written(app, backend, database_url, user, send):
    """The answer to `send(client)`, sent from another thread while `user`'s disable is
    written (as `admin.service.change` writes it) and not yet committed; the disable
    commits once the request waits for it."""
    return support.while_written(app, backend, database_url, [
        ("UPDATE users SET disabled = TRUE WHERE id = :id", {"id": user.id}),
        ("UPDATE token_families SET revoked_at = CURRENT_TIMESTAMP WHERE user_id = :id AND revoked_at IS NULL",
         {"id": user.id}),
    ], send)


def test_the_list_is_paged_and_shows_disabled(client, admin, make_user):
    made = [make_user("CUSTOMER") for _ in range(3)]
    response = client.get(f"{USERS}?perPage=2&page=2", headers=admin.headers)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "4"  # the admin too
    assert 'rel="prev"' in response.headers["Link"] and 'rel="next"' not in response.headers["Link"]
    page = response.get_json()
    assert [user["id"] for user in page] == [made[1].id, made[2].id]
    assert set(page[0]) == {"id", "email", "name", "role", "createdAt", "disabled"}
    assert page[0]["disabled"] is False


def test_search_matches_email_or_name_in_any_case(client, admin, make_user):
    olga = make_user("ORGANIZER", email="olga@venues.example", name="Olga Petrova")
    mark = make_user("CUSTOMER", email="mark@example.com", name="Mark PETROV")
    make_user("CUSTOMER", email="zoe@example.com", name="Zoe")

    def ids(query):
        response = client.get(USERS, query_string=query, headers=admin.headers)
        assert response.status_code == 200, response.get_json()
        return [user["id"] for user in response.get_json()]

    assert ids({"q": "petrov"}) == [olga.id, mark.id]
    assert ids({"q": "VENUES"}) == [olga.id]
    assert ids({"q": "petrov", "role": "CUSTOMER"}) == [mark.id]
    assert ids({"role": "ADMIN"}) == [admin.id]
    assert ids({"q": "%"}) == []  # a wildcard is a character like any other
    # any case in every alphabet, on SQLite too (whose own lower() knows only ASCII)
    zoe = make_user("CUSTOMER", email="zoë@bücher.example", name="Zoë Ñandú ΣΊΣΥΦΟΣ")
    for query in ("ZOË", "ñANDÚ", "σίσυφ", "BÜCHER"):
        assert ids({"q": query}) == [zoe.id], query
    # a name typed as it is stored always finds it: a final sigma, a dotted capital I
    # (Python lower-cases them otherwise than PostgreSQL does)
    street = make_user("CUSTOMER", name="ΟΔΟΣ Ερμού")
    city = make_user("CUSTOMER", name="İSTANBUL Şehir")
    for query, found in (("ΟΔΟΣ", street), ("οδος", street), ("İSTANBUL", city), ("a_b", None), ("50/50", None)):
        assert ids({"q": query}) == ([found.id] if found else []), query


def test_search_takes_wildcards_and_the_escape_literally_in_longer_text(client, admin, make_user):
    """Text of three characters or more (what PostgreSQL's trigram indexes answer) finds
    what it says, in any case, and nothing that a LIKE wildcard would let through."""
    underscore = make_user("CUSTOMER", name="Ann_Lee Σ_ΟΔΟΣ")
    make_user("CUSTOMER", name="AnnXLee ΣxΟΔΟΣ")
    percent = make_user("CUSTOMER", email="half@example.com", name="50% off")
    make_user("CUSTOMER", name="500 off")
    slash = make_user("CUSTOMER", name="Path/to/it")
    make_user("CUSTOMER", name="Pathto it")

    def ids(query):
        return [user["id"] for user in client.get(USERS, query_string={"q": query}, headers=admin.headers).get_json()]

    for query, found in (("ANN_LEE", underscore), ("σ_οδος", underscore), ("50% O", percent), ("h/to/", slash),
                         ("HALF@EXAMPLE", percent)):
        assert ids(query) == [found.id], query
    for query in ("ann%lee", "nn__ee", "0%%o", "path//to", "σ%οδ"):
        assert ids(query) == [], query


@pytest.mark.postgresql_only("a PostgreSQL plan")
def test_the_search_reads_the_trigram_indexes(app):
    """On PostgreSQL the search's two comparisons are answered by trigram indexes of the
    very expressions it compares (migration 0015), not by reading every account."""
    from eventbook.admin import service
    from eventbook.extensions import db
    from eventbook.pagination import Explain

    with app.app_context():
        connection = db.session.connection()
        for scan in ("seqscan", "indexscan"):  # what is left: the trigram indexes, if they answer it
            connection.exec_driver_sql(f"SET LOCAL enable_{scan} = off")
        plan = connection.execute(Explain(service.users({"q": "Petrov"}))).scalar()[0]["Plan"]
        db.session.rollback()

    def indexes(node):
        yield node.get("Index Name")
        for child in node.get("Plans", ()):
            yield from indexes(child)

    assert {"ix_users_email_trigrams", "ix_users_name_trigrams"} <= set(indexes(plan)), plan


@pytest.mark.parametrize("query", [{"role": "admin"}, {"role": "ROOT"}, {"page": "0"}, {"perPage": "x"},
                                   {"q": "x" * 255}])
def test_bad_list_arguments_are_422(client, admin, query):
    assert_error(client.get(USERS, query_string=query, headers=admin.headers), 422, "validation_error")


def test_a_role_change_applies_to_the_next_request(client, admin, customer):
    event = {"title": "Promoted", "date": "2031-01-01T10:00:00Z", "location": "Hall", "totalTickets": 5}
    assert client.post("/api/events", json=event, headers=customer.headers).status_code == 403
    response = change(client, admin, customer.id, role="ORGANIZER")
    assert response.status_code == 200
    assert (response.get_json()["id"], response.get_json()["role"]) == (customer.id, "ORGANIZER")
    assert client.post("/api/events", json=event, headers=customer.headers).status_code == 201
    assert client.get("/api/auth/me", headers=customer.headers).get_json()["role"] == "ORGANIZER"


def test_a_disabled_user_is_out_at_once_and_back_when_enabled(client, admin, customer, login):
    response = change(client, admin, customer.id, disabled=True)
    assert response.status_code == 200 and response.get_json()["disabled"] is True
    assert_error(client.get("/api/auth/me", headers=customer.headers), 401, "unauthorized")
    assert_error(client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {customer.refresh_token}"}),
                 401, "unauthorized")
    # login: the very answer of a wrong password
    refused = client.post("/api/auth/login", json={"email": customer.email, "password": PASSWORD})
    wrong = client.post("/api/auth/login", json={"email": customer.email, "password": "wrong-password"})
    assert_error(refused, 401, "unauthorized")
    assert refused.get_json() == wrong.get_json()
    assert change(client, admin, customer.id, disabled=False).get_json()["disabled"] is False
    # old sessions stay revoked; a new login works
    assert_error(client.get("/api/auth/me", headers=customer.headers), 401, "unauthorized")
    assert client.get("/api/auth/me", headers=login(customer.email).headers).status_code == 200


@pytest.mark.parametrize("account, undone", [({"disabled": True}, {"disabled": False}),
                                             ({"role": "ORGANIZER"}, {"role": "CUSTOMER"})],
                         ids=["disabled", "organizer"])
def test_disabling_a_customer_or_making_them_an_organizer_gives_back_what_they_kept_from_others(
        client, shop, admin, organizer, make_user, make_event, account, undone):
    """Neither can confirm a hold nor leave a list any more: their holds and places would
    keep tickets from others until they expire."""
    mallory, next_in_line, buyer = make_user(), make_user(), make_user()

    def join(actor, event):
        return ok(client.post(f"/api/events/{event['id']}/waitlist", json={"ticketsCount": 1},
                              headers=actor.headers), 201)

    def entry(actor, event):
        return client.get(f"/api/events/{event['id']}/waitlist/me", headers=actor.headers).get_json()

    def offered(actor, event):
        return support.wait_until(lambda: entry(actor, event)["status"] == "OFFERED", 10,
                                  message=f"an offer to {actor.email}")

    def hold_status(hold_id):
        return ok(client.get(f"/api/holds/{hold_id}", headers=admin.headers))["status"]

    # a hold of general admission
    general = make_event(totalTickets=5)
    held = ok(shop.hold(mallory, general["id"], 3), 201)
    # a hold of seats
    seated = make_event(seating="RESERVED", totalTickets=2,
                        ticketTypes=[{"name": "Stalls", "price": "10.00", "quantity": 2}])
    [stalls] = shop.types(seated["id"]).values()
    ok(client.put(f"/api/events/{seated['id']}/seats", headers=organizer.headers, json={"sections": [
        {"name": "Stalls", "ticketTypeId": stalls["id"], "rows": [{"label": "A", "from": 1, "to": 2}]}]}))
    seats = [seat["id"] for seat in ok(client.get(f"/api/events/{seated['id']}/seats"))]
    seats_held = ok(shop.hold(mallory, seated["id"], seatIds=seats), 201)
    # an offer made to them, someone waiting behind them
    offered_event = make_event(totalTickets=1)
    bought = ok(shop.book(buyer, offered_event["id"]), 201)
    join(mallory, offered_event)
    join(next_in_line, offered_event)
    ok(shop.cancel(buyer, bought["id"]))
    offered(mallory, offered_event)
    offer = entry(mallory, offered_event)
    # a place in line, waiting
    full = make_event(totalTickets=1)
    ok(shop.book(buyer, full["id"]), 201)
    join(mallory, full)
    # and a booking of their own, which is theirs to keep
    kept = ok(shop.book(mallory, make_event()["id"]), 201)

    ok(change(client, admin, mallory.id, **account))

    assert hold_status(held["id"]) == "RELEASED" and shop.available(general["id"]) == 5
    assert hold_status(seats_held["id"]) == "RELEASED" and shop.available(seated["id"]) == 2
    assert [seat["status"] for seat in ok(client.get(f"/api/events/{seated['id']}/seats"))] == ["AVAILABLE"] * 2
    assert hold_status(offer["holdId"]) == "RELEASED"
    offered(next_in_line, offered_event)
    for event in (offered_event, full):
        queue = ok(client.get(f"/api/events/{event['id']}/waitlist", headers=organizer.headers))
        assert [e["status"] for e in queue if e["user"]["id"] == mallory.id] == ["LEFT"]
    assert ok(client.get(f"/api/bookings/{kept['id']}", headers=admin.headers))["status"] == "CONFIRMED"
    # undoing the change gives nothing back; changing again changes nothing
    ok(change(client, admin, mallory.id, **undone))
    ok(change(client, admin, mallory.id, **account))
    assert shop.available(general["id"]) == 5 and hold_status(offer["holdId"]) == "RELEASED"


@pytest.mark.parametrize("config_overrides", [{"HOLD_SWEEP_SECONDS": 3600}], ids=["no-sweep"])
def test_a_disable_ends_a_hold_past_its_expiry_as_expired(app, client, shop, admin, make_user, make_event,
                                                         expire_hold):
    """No sweep runs meanwhile: the disable is what ends it, as any hold past its expiry
    ends (EXPIRED, not RELEASED), and its tickets come back."""
    from eventbook.extensions import db
    from eventbook.models import Hold

    customer, event = make_user(), make_event(totalTickets=5)
    stale = ok(shop.hold(customer, event["id"], 2), 201)
    expire_hold(stale["id"])
    ok(change(client, admin, customer.id, disabled=True))
    with app.app_context():
        assert db.session.get(Hold, stale["id"]).status == "EXPIRED"
    assert shop.available(event["id"]) == 5


def test_an_admin_cannot_demote_or_disable_themself(client, admin, make_user):
    for fields in ({"role": "ORGANIZER"}, {"disabled": True}, {"role": "CUSTOMER", "disabled": False}):
        assert_error(change(client, admin, admin.id, **fields), 403, "forbidden")
    me = change(client, admin, admin.id).get_json()  # an empty change: the account as administration sees it
    assert (me["role"], me["disabled"]) == ("ADMIN", False)
    # changing nothing is fine; another admin may be demoted
    assert change(client, admin, admin.id, disabled=False).status_code == 200
    other = make_user("CUSTOMER")
    assert change(client, admin, other.id, role="ORGANIZER").status_code == 200


@pytest.mark.parametrize("fields", [{"role": "ADMIN"}, {"role": "customer"}, {"disabled": "true"}, {"disabled": 1},
                                    {"disabled": None}, {"email": "x@example.com"}, {"id": 5}, {"passwordHash": "x"}])
def test_bad_changes_are_422_and_change_nothing(client, admin, customer, fields):
    body = assert_error(change(client, admin, customer.id, **fields), 422, "validation_error")
    assert set(fields) <= set(body["errors"])
    seen = change(client, admin, customer.id).get_json()
    assert (seen["role"], seen["disabled"], seen["email"]) == ("CUSTOMER", False, customer.email)


@pytest.mark.parametrize("path", [f"{USERS}/999999", f"{USERS}/99999999999", f"{USERS}/abc", f"{USERS}/-1"])
def test_unknown_users_are_404(client, admin, path):
    assert_error(client.patch(path, json={"disabled": True}, headers=admin.headers), 404, "not_found")


def test_a_change_without_a_body_changes_nothing_as_documented(client, admin, make_user):
    """The body is optional, as for any partial update: the document says so, and none is a no-op."""
    user = make_user("CUSTOMER")
    response = client.patch(f"{USERS}/{user.id}", headers=admin.headers)
    assert response.status_code == 200
    assert (response.get_json()["role"], response.get_json()["disabled"]) == ("CUSTOMER", False)
    operation = client.get("/api/openapi.json").get_json()["paths"]["/api/admin/users/{user_id}"]["patch"]
    assert operation["requestBody"].get("required", False) is False


def test_a_login_racing_a_disable_is_refused_or_revoked(app, client, backend, database_url, admin, make_user):
    """A login whose password check came before a disable that is being written: it
    waits for the disable, and is then the usual 401, never a login that survives the
    disable (to come back when the account is enabled again)."""
    user = make_user("CUSTOMER")
    answer = while_a_disable_is_written(app, backend, database_url, user, lambda client: client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}))
    assert_error(answer, 401, "unauthorized")
    change(client, admin, user.id, disabled=False)
    assert client.get("/api/auth/me", headers=user.headers).status_code == 401  # the old login stays revoked


def test_a_join_racing_a_disable_is_refused(app, client, backend, database_url, organizer, make_user, make_event,
                                            shop):
    """A join of a waiting list whose token check came before a disable that is being
    written: it waits for the disable and is refused, never an entry that the disable's
    clean-up missed (an offer would go to an account that cannot take it)."""
    user = make_user()
    event = make_event(totalTickets=1)
    ok(shop.book(make_user(), event["id"]), 201)  # sold out: a list to join
    answer = while_a_disable_is_written(app, backend, database_url, user, lambda client: client.post(
        f"/api/events/{event['id']}/waitlist", json={"ticketsCount": 1}, headers=user.headers))
    assert assert_error(answer, 401, "unauthorized")["message"] == "Account is disabled"  # the join's own check
    assert ok(client.get(f"/api/events/{event['id']}/waitlist", headers=organizer.headers)) == []
