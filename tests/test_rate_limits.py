"""Rate limits (OWASP API4/API6): failed logins per account and address, and per account
(throttling guessers without locking an account's owner out: OWASP Authentication Cheat
Sheet), logins per address, register per address, booking per user; 429 in the envelope
with Retry-After.

Each test sets its own limits by parametrizing `config_overrides`. Requests name their
client address with `environ_base`, so the set-up traffic (from 127.0.0.1) and the
attack (from 203.0.113.x) never share a per-address count.
"""

import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import support
from tests.support import in_days


def limits(**overrides):
    """Limits tight enough to reach in a test, generous where the test does not look."""
    config = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_LOGIN": "1000 per minute",
        "RATELIMIT_LOGIN_FAILURES": "1000 per minute",
        "RATELIMIT_LOGIN_ACCOUNT": "1000 per minute",
        "RATELIMIT_REGISTER": "1000 per minute",
        "RATELIMIT_BOOKING": "1000 per minute",
    }
    config.update(overrides)
    return pytest.mark.parametrize("config_overrides", [config], ids=["limits"])


def address(n):
    return {"REMOTE_ADDR": f"203.0.113.{n}"}


def assert_rate_limited(response):
    assert response.status_code == 429, response.get_json()
    body = response.get_json()
    assert body["status"] == 429
    assert body["code"] == "rate_limited"
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) >= {"status", "code", "message", "errors"}
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and 1 <= int(retry_after) <= 3600, retry_after
    assert response.headers.get("X-Request-ID") not in (None, "", "-")


def login(client, email, password, addr=1):
    return client.post("/api/auth/login", json={"email": email, "password": password}, environ_base=address(addr))


# -- failed logins per account and address, and per account -----------------------------


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute")
def test_an_address_that_keeps_failing_is_refused_for_that_account(client, make_user):
    victim = make_user("CUSTOMER")
    for attempt in range(3):
        assert login(client, victim.email, f"wrong-password-{attempt}", addr=1).status_code == 401
    # from that address, even the right password is refused for the window
    assert_rate_limited(login(client, victim.email, support.PASSWORD, addr=1))
    # the account key is the normalised email: case and spaces do not get around it
    assert_rate_limited(login(client, f"  {victim.email.upper()} ", support.PASSWORD, addr=1))
    # ... nor a fullwidth letter, which logs in to the same account
    assert_rate_limited(login(client, victim.email.replace("e", "\uff45"), support.PASSWORD, addr=1))
    # the owner, from their own address, logs in
    assert login(client, victim.email, support.PASSWORD, addr=2).status_code == 200


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute")
def test_wrong_current_passwords_count_as_failed_logins(client, make_user):
    """A stolen access token does not let its holder guess the password faster than a
    login would: a password change with a wrong current password is a failed login of
    the account from that address."""
    victim = make_user("CUSTOMER")

    def change(current, addr=1):
        return client.post("/api/auth/password", json={"currentPassword": current, "newPassword": "a-new-password-1"},
                           headers=victim.headers, environ_base=address(addr))

    for attempt in range(3):
        assert change(f"wrong-password-{attempt}").status_code == 403
    assert_rate_limited(change(support.PASSWORD))
    assert_rate_limited(login(client, victim.email, support.PASSWORD, addr=1))
    assert change(support.PASSWORD, addr=2).status_code == 204  # the owner, from their own address


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute", RATELIMIT_LOGIN_ACCOUNT="20 per minute")
def test_nobody_can_lock_an_owner_out_of_their_account(client, make_user):
    """The attack of issue 18: wrong passwords for someone's email, from many addresses,
    faster than the per-account limit. The owner's right password still logs in."""
    victim = make_user("CUSTOMER")
    statuses = [login(client, victim.email, f"wrong-{n}", addr=10 + n % 15).status_code for n in range(45)]
    assert statuses == [401] * 20 + [429] * 25  # the account's limit, whichever address asks
    assert login(client, victim.email, support.PASSWORD, addr=200).status_code == 200


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute", RATELIMIT_LOGIN_ACCOUNT="5 per minute")
def test_guessing_from_many_addresses_gets_one_try_per_address(client, make_user):
    victim, bystander = make_user("CUSTOMER"), make_user("CUSTOMER")
    # below the account's limit an address may fail again (up to its own limit)
    assert login(client, victim.email, "guess-0", addr=20).status_code == 401
    assert login(client, victim.email, "guess-1", addr=20).status_code == 401
    for n in range(3):
        assert login(client, victim.email, f"guess-{n + 2}", addr=21 + n).status_code == 401
    # five failures: the account is being guessed at; an address that failed is refused at once
    assert_rate_limited(login(client, victim.email, "guess-5", addr=21))
    # a new address gets one try, and is then refused in turn
    assert login(client, victim.email, "guess-6", addr=30).status_code == 401
    assert_rate_limited(login(client, victim.email, "guess-7", addr=30))
    # an address that has not failed, with the right password, logs in
    assert login(client, victim.email, support.PASSWORD, addr=31).status_code == 200
    # other accounts are not affected, even from the guessing addresses
    assert login(client, bystander.email, "wrong-password", addr=21).status_code == 401
    assert login(client, bystander.email, support.PASSWORD, addr=21).status_code == 200


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute", BCRYPT_ROUNDS=12)
def test_guesses_sent_at_once_are_held_to_the_limit(client, make_user):
    """A password check takes bcrypt's time (cost 12: a quarter of a second or so), so
    guesses sent together all start before the first is found wrong: each is counted as
    it starts."""
    victim = make_user("CUSTOMER")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda n: login(client, victim.email, f"wrong-{n}", addr=40), range(10)))
    assert sorted(answer.status_code for answer in answers) == [401] * 3 + [429] * 7
    assert_rate_limited(login(client, victim.email, support.PASSWORD, addr=40))
    assert login(client, victim.email, support.PASSWORD, addr=41).status_code == 200


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute")
def test_only_failed_logins_count_and_success_forgets_them(client, make_user):
    user = make_user("CUSTOMER")
    for _ in range(6):
        assert login(client, user.email, support.PASSWORD).status_code == 200
    assert login(client, user.email, "wrong-password-1").status_code == 401
    assert login(client, user.email, "wrong-password-2").status_code == 401
    assert login(client, user.email, support.PASSWORD).status_code == 200
    for attempt in range(3):
        assert login(client, user.email, f"wrong-password-{attempt + 3}").status_code == 401
    assert_rate_limited(login(client, user.email, support.PASSWORD))


@limits(RATELIMIT_LOGIN_FAILURES="3 per minute", RATELIMIT_LOGIN_ACCOUNT="3 per minute")
def test_unknown_emails_are_limited_like_known_ones(client):
    # Otherwise the limit itself would tell an attacker which emails have accounts.
    for attempt in range(3):
        assert login(client, "nobody@example.com", f"guess-{attempt}").status_code == 401
    assert_rate_limited(login(client, "nobody@example.com", "guess-4"))
    assert login(client, "nobody@example.com", "guess-5", addr=2).status_code == 401
    assert_rate_limited(login(client, "nobody@example.com", "guess-6", addr=2))


# -- login per client address -------------------------------------------------------------


@limits(RATELIMIT_LOGIN="5 per minute")
def test_login_per_address_limits_credential_stuffing(client, make_user):
    user = make_user("CUSTOMER")
    # five different accounts tried from one address (the per-account limit never triggers)
    for n in range(5):
        assert login(client, f"stuffed{n}@example.com", "password123", addr=50).status_code == 401
    assert_rate_limited(login(client, "stuffed9@example.com", "password123", addr=50))
    # successful logins from that address are refused too, for the window
    assert_rate_limited(login(client, user.email, support.PASSWORD, addr=50))
    # another address is not affected
    assert login(client, user.email, support.PASSWORD, addr=51).status_code == 200


# -- register per address -----------------------------------------------------------------


@limits(RATELIMIT_REGISTER="3 per minute")
def test_register_per_address(client):
    def register(addr):
        body = {"email": f"bot-{uuid.uuid4().hex[:10]}@example.com", "password": support.PASSWORD, "role": "CUSTOMER"}
        return client.post("/api/auth/register", json=body, environ_base=address(addr)), body["email"]

    for _ in range(3):
        assert register(60)[0].status_code == 201
    refused, email = register(60)
    assert_rate_limited(refused)
    assert login(client, email, support.PASSWORD, addr=99).status_code == 401  # no account was made
    assert register(61)[0].status_code == 201


# -- booking per user ---------------------------------------------------------------------


@limits(RATELIMIT_BOOKING="3 per minute")
def test_booking_per_user(client, make_user, make_event):
    events = [make_event(totalTickets=10) for _ in range(5)]
    bot, human = make_user("CUSTOMER"), make_user("CUSTOMER")

    def book(who, event, addr):
        return client.post(
            "/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=who.headers, environ_base=address(addr)
        )

    for n in range(3):
        assert book(bot, events[n], addr=70 + n).status_code == 201
    # the count follows the user, not the address
    refused = book(bot, events[3], addr=80)
    assert_rate_limited(refused)
    assert client.get(f"/api/events/{events[3]['id']}").get_json()["availableTickets"] == 10
    assert len(client.get("/api/bookings/my-bookings", headers=bot.headers).get_json()) == 3
    # another customer, from the same address, books
    assert book(human, events[3], addr=80).status_code == 201


@limits(RATELIMIT_BOOKING="2 per minute")
def test_refused_bookings_count_too(client, customer, make_event):
    # A bot hammering a sold-out event is throttled as much as one that succeeds.
    event = make_event(totalTickets=1)
    other = make_event(totalTickets=5)
    assert client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 5}, headers=customer.headers).status_code == 409
    assert client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 5}, headers=customer.headers).status_code == 409
    assert_rate_limited(client.post("/api/bookings", json={"eventId": other["id"], "ticketsCount": 1}, headers=customer.headers))


# -- switched off -------------------------------------------------------------------------


@limits(
    RATELIMIT_ENABLED=False,
    RATELIMIT_LOGIN="1 per minute",
    RATELIMIT_LOGIN_FAILURES="1 per minute",
    RATELIMIT_LOGIN_ACCOUNT="1 per minute",
    RATELIMIT_REGISTER="1 per minute",
    RATELIMIT_BOOKING="1 per minute",
)
def test_nothing_is_limited_when_disabled(client, make_user, make_event):
    user = make_user("CUSTOMER")
    for attempt in range(5):
        assert login(client, user.email, f"wrong-{attempt}", addr=90).status_code == 401
    assert login(client, user.email, support.PASSWORD, addr=90).status_code == 200
    for _ in range(4):
        body = {"email": f"x-{uuid.uuid4().hex[:10]}@example.com", "password": support.PASSWORD, "role": "CUSTOMER"}
        assert client.post("/api/auth/register", json=body, environ_base=address(91)).status_code == 201
    for _ in range(4):
        event = make_event(totalTickets=3)
        assert client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=user.headers).status_code == 201


# -- a shared count: Redis, across processes ----------------------------------------------


@pytest.fixture
def redis_db(redis_url):
    """Database 15 of the session's own Redis server, flushed before and after."""
    import redis

    url = f"{redis_url}/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("storage, shared", [("redis", True), ("memory", False)])
def test_two_servers_share_the_count_through_redis(new_database, redis_db, tmp_path, storage, shared):
    """Two gunicorn servers on one database: with Redis storage an account's failed
    logins from one address are counted together; with memory storage (the control)
    each counts its own."""
    url = new_database()
    env = {
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_STORAGE_URI": redis_db if storage == "redis" else "memory://",
        "RATELIMIT_LOGIN_FAILURES": "3 per minute",
        "RATELIMIT_LOGIN_ACCOUNT": "1000 per minute",
        "RATELIMIT_LOGIN": "1000 per minute",
        "RATELIMIT_REGISTER": "1000 per minute",
    }
    servers = [support.Server(url, workers=1, threads=4, env=env, log_path=tmp_path / f"server{n}.log") for n in range(2)]
    try:
        for server in servers:
            server.start()
        a, b = (httpx.Client(verify=support.SSL, base_url=server.url, timeout=30) for server in servers)
        email = f"shared-{uuid.uuid4().hex[:8]}@example.com"
        assert a.post("/api/auth/register", json={"email": email, "password": support.PASSWORD, "role": "CUSTOMER"}).status_code == 201

        def attempt(http, password):
            return http.post("/api/auth/login", json={"email": email, "password": password})

        assert attempt(a, "wrong-1").status_code == 401
        assert attempt(b, "wrong-2").status_code == 401
        assert attempt(a, "wrong-3").status_code == 401
        fourth = attempt(b, "wrong-4")  # the 4th failure overall, the 2nd on server b
        if shared:
            assert fourth.status_code == 429, fourth.text
            assert fourth.json()["code"] == "rate_limited"
            assert fourth.headers.get("Retry-After", "").isdigit()
            assert attempt(a, support.PASSWORD).status_code == 429
        else:
            assert fourth.status_code == 401, fourth.text
        # a different account is never affected
        other = f"other-{uuid.uuid4().hex[:8]}@example.com"
        assert b.post("/api/auth/register", json={"email": other, "password": support.PASSWORD, "role": "CUSTOMER"}).status_code == 201
        assert b.post("/api/auth/login", json={"email": other, "password": support.PASSWORD}).status_code == 200
        a.close()
        b.close()
    finally:
        for server in servers:
            server.stop()


SESSION_REDIS = "redis://session-redis/15"  # stands for redis_db, resolved by config_overrides below
SILENT_STORE = "redis://silent-store/0"  # stands for silent_store, resolved the same way


@pytest.fixture
def config_overrides(request):
    """The parametrized overrides (indirect), with SESSION_REDIS replaced by the URL of the
    session's own Redis server."""
    overrides = dict(request.param)
    if overrides.get("RATELIMIT_STORAGE_URI") == SESSION_REDIS:
        overrides["RATELIMIT_STORAGE_URI"] = request.getfixturevalue("redis_db")
    if overrides.get("RATELIMIT_STORAGE_URI") == SILENT_STORE:
        overrides["RATELIMIT_STORAGE_URI"] = request.getfixturevalue("silent_store")
    return overrides


@pytest.mark.parametrize(
    "config_overrides", limits(RATELIMIT_STORAGE_URI=SESSION_REDIS, RATELIMIT_BOOKING="2 per minute").args[1],
    indirect=True, ids=["limits"],
)
def test_booking_limit_with_redis_storage_in_process(redis_db, client, customer, make_event):
    event = make_event(totalTickets=10)
    second = make_event(totalTickets=10, date=in_days(31))
    third = make_event(totalTickets=10, date=in_days(32))
    assert client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=customer.headers).status_code == 201
    assert client.post("/api/bookings", json={"eventId": second["id"], "ticketsCount": 1}, headers=customer.headers).status_code == 201
    assert_rate_limited(client.post("/api/bookings", json={"eventId": third["id"], "ticketsCount": 1}, headers=customer.headers))
    import redis

    with redis.Redis.from_url(redis_db) as store:
        assert store.dbsize() > 0, "the limit's count is not in Redis"


@pytest.mark.parametrize(
    "config_overrides",
    limits(RATELIMIT_STORAGE_URI=SESSION_REDIS, RATELIMIT_LOGIN_FAILURES="3 per minute",
           RATELIMIT_LOGIN_ACCOUNT="2 per minute").args[1],
    indirect=True, ids=["limits"],
)
def test_login_throttle_with_redis_storage_in_process(redis_db, client, make_user):
    victim = make_user("CUSTOMER")
    assert login(client, victim.email, "guess-1", addr=1).status_code == 401
    assert login(client, victim.email, "guess-2", addr=2).status_code == 401
    assert_rate_limited(login(client, victim.email, "guess-3", addr=1))  # being guessed at: no second try
    assert login(client, victim.email, support.PASSWORD, addr=3).status_code == 200
    import redis

    with redis.Redis.from_url(redis_db) as store:
        assert any(b"login-failures" in key for key in store.keys()), "the login counts are not in Redis"


@limits(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{support.free_port()}/0", RATELIMIT_LOGIN_FAILURES="3 per minute")
def test_an_unreachable_store_falls_back_to_counting_in_memory(client, make_user):
    """Nothing listens on that port: logins are answered, and still limited."""
    user = make_user("CUSTOMER")
    for attempt in range(3):
        assert login(client, user.email, f"wrong-{attempt}").status_code == 401
    assert_rate_limited(login(client, user.email, support.PASSWORD))


@limits(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{support.free_port()}/0", RATELIMIT_BOOKING="2 per minute")
def test_an_unreachable_store_still_limits_bookings_and_holds(client, customer, make_user, make_event):
    """Nothing listens on that port: the sales limit counts in memory, per customer."""
    events = [make_event(totalTickets=10, date=in_days(30 + n)) for n in range(4)]

    def book(event, actor):
        return client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=actor.headers)

    assert book(events[0], customer).status_code == 201
    hold = {"eventId": events[1]["id"], "items": [{"ticketTypeId": events[1]["ticketTypes"][0]["id"], "count": 1}]}
    assert client.post("/api/holds", json=hold, headers=customer.headers).status_code == 201
    assert_rate_limited(book(events[2], customer))
    assert book(events[3], make_user("CUSTOMER")).status_code == 201


@pytest.fixture
def silent_store():
    """A store that takes connections and never answers (a Redis server that hangs:
    stopped, or cut off behind a firewall that drops its packets): its URL."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        yield f"redis://127.0.0.1:{listening.getsockname()[1]}/0"


@pytest.mark.parametrize(
    "config_overrides", limits(RATELIMIT_STORAGE_URI=SILENT_STORE, RATELIMIT_LOGIN_FAILURES="3 per minute").args[1],
    indirect=True, ids=["limits"],
)
def test_a_store_that_never_answers_does_not_hold_requests_up(client, make_user):
    """Logins are answered within moments, and still limited: the store is given half a
    second, then tried again only every few seconds."""
    user = make_user("CUSTOMER")
    answers = []

    def attempts():
        answers.extend(login(client, user.email, f"wrong-{attempt}").status_code for attempt in range(3))
        answers.append(login(client, user.email, support.PASSWORD))

    started = time.monotonic()
    trying = threading.Thread(target=attempts, daemon=True)
    trying.start()
    trying.join(20)
    assert not trying.is_alive(), f"logins still waiting on the store after 20 s ({len(answers)} answered)"
    assert time.monotonic() - started < 5
    assert answers[:3] == [401, 401, 401]
    assert_rate_limited(answers[3])


@limits(RATELIMIT_BOOKING="3 per minute; 100 per hour", RATELIMIT_HEADERS_ENABLED=True)
def test_booking_answers_say_where_the_customer_stands_when_headers_are_on(client, customer, make_event):
    events = [make_event(totalTickets=10, date=in_days(30 + n)) for n in range(2)]
    answers = [client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=customer.headers)
               for event in events]
    assert [answer.status_code for answer in answers] == [201, 201]
    assert [(a.headers["X-RateLimit-Limit"], a.headers["X-RateLimit-Remaining"]) for a in answers] == [("3", "2"), ("3", "1")]
    assert all(int(a.headers["X-RateLimit-Reset"]) > 0 for a in answers)
    # and the document says so, for this operation's answers
    created = client.get("/api/openapi.json").get_json()["paths"]["/api/bookings"]["post"]["responses"]["201"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= created["headers"].keys()


# -- a view's limit per address ----------------------------------------------------------


@pytest.mark.own_app
@limits(RATELIMIT_REGISTER="2 per minute")
def test_a_view_given_a_per_address_limit_is_limited_per_address(app):
    """`by_address` limits any view it decorates, per client address."""
    from eventbook.ratelimits import by_address

    @by_address("RATELIMIT_REGISTER")
    def limited():
        return {"ok": True}

    app.add_url_rule("/api/test/limited", "test_limited", limited)
    client = app.test_client()
    assert [client.get("/api/test/limited", environ_base=address(7)).status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(client.get("/api/test/limited", environ_base=address(7)))
    assert client.get("/api/test/limited", environ_base=address(8)).status_code == 200


@limits(RATELIMIT_LOGIN="3 per minute", RATELIMIT_REGISTER="1000 per minute", RATELIMIT_HEADERS_ENABLED=True)
def test_a_per_address_limit_is_checked_before_the_body_and_says_where_the_client_stands(client):
    """A bot's malformed logins count too, and each answer carries X-RateLimit-*."""
    answers = [client.post("/api/auth/login", json={"email": "not an email"}, environ_base=address(9)) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [422, 422, 422]
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == ["2", "1", "0"]
    assert {answer.headers["X-RateLimit-Limit"] for answer in answers} == {"3"}
    limited = client.post("/api/auth/login", json={"email": "not an email"}, environ_base=address(9))
    assert_rate_limited(limited)
    assert (limited.headers["X-RateLimit-Limit"], limited.headers["X-RateLimit-Remaining"]) == ("3", "0")
    # registration has its own count for that address
    body = {"email": f"own-{uuid.uuid4().hex[:10]}@example.com", "password": support.PASSWORD, "role": "CUSTOMER"}
    assert client.post("/api/auth/register", json=body, environ_base=address(9)).status_code == 201
