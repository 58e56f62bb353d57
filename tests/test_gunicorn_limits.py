"""A live gunicorn, configured as deployed (gunicorn.conf.py), fed bytes a client library
will not send: what reaches the app gets its JSON envelope, what only gunicorn refuses is
documented in docs/operations.md, and nothing of it leaves a traceback. Also what the
master says at start, and rate limits counted across workers."""

import gzip
import json
import socket
import subprocess
import sys
import uuid
import zlib

import httpx
import pytest

from tests import support

pytestmark = pytest.mark.slow

LIMITS = {"RATELIMIT_ENABLED": "true", "RATELIMIT_LOGIN": "1000 per minute", "RATELIMIT_REGISTER": "1000 per minute",
          "RATELIMIT_LOGIN_ACCOUNT": "10 per minute"}
OPERATIONS = (support.ROOT / "docs" / "operations.md").read_text()


def start(url, tmp_path, workers=2, **env):
    log_path = tmp_path / f"gunicorn-{uuid.uuid4().hex[:6]}.log"
    server = support.Server(url, workers=workers, threads=4, env={**LIMITS, **env}, log_path=log_path)
    server.log_path = log_path
    return server.start()


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    """Two workers counting rate limits in memory (the default storage)."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    url = support.create_database(backend, tmp)
    server = start(url, tmp, RATELIMIT_STORAGE_URI="memory://")
    yield server
    server.stop()
    support.drop_database(url)


def log_messages(server):
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    return [(line["level"], line["message"]) for line in lines]


def assert_log_clean(server):
    text = server.log_path.read_text()
    assert "Traceback" not in text and '"level": "ERROR"' not in text, text[-3000:]


def raw(server, data):
    """Send `data` on a new connection; (status, content type, body) of the first answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        return answer(sock)


def answer(sock):
    """(status, content type, body) of the next answer on `sock`."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def request(method, target, *headers, body=b"", close=True):
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", *headers, *(["Connection: close"] if close else [])]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def assert_envelope(answer, status, code):
    got_status, content_type, body = answer
    assert (got_status, content_type) == (status, "application/json"), answer
    assert json.loads(body)["code"] == code, body
    return json.loads(body)


# -- what the app judges -----------------------------------------------------------------


def test_oversized_headers_and_urls_reach_the_app(server):
    assert_envelope(raw(server, request("GET", "/api/auth/me", "Authorization: Bearer " + "a" * 10_000)),
                    431, "header_too_large")
    assert_envelope(raw(server, request("GET", "/api/events", "X-Trace: " + "t" * 30_000)), 431, "header_too_large")
    assert_envelope(raw(server, request("GET", "/api/events?q=" + "x" * 5000)), 414, "uri_too_long")
    assert_log_clean(server)


@pytest.mark.parametrize("path", ["/api/bookings", "/api/auth/login"])
def test_a_malformed_chunked_body_is_400_before_the_token_check(server, path):
    headers = ("Content-Type: application/json", "Transfer-Encoding: chunked")
    assert_envelope(raw(server, request("POST", path, *headers, body=b"zz\r\n{}\r\n0\r\n\r\n")), 400, "bad_request")
    assert_log_clean(server)


@pytest.mark.parametrize("body", ['{"email": ' + "[" * 1000 + "]" * 1000 + "}", "[" * 50_000,
                                  '{"email": "a@b.c", "password": ' + "7" * 5000 + "}", ""],
                         ids=["deep", "deeper", "long integer", "empty"])
def test_undecodable_bodies_are_400_with_rate_limits_on(server, body):
    for path in ("/api/auth/login", "/api/auth/register"):
        response = httpx.post(server.url + path, verify=support.SSL, content=body, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["code"]) == (400, "bad_request"), response.text
    assert_log_clean(server)


def chunked(body, size=10_000):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[n:n + size]), body[n:n + size]) for n in range(0, len(body), size)) \
        + b"0\r\n\r\n"


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate, chunked", "compress, chunked", "identity, chunked"])
def test_a_transfer_coding_stacked_on_chunked_is_400(server, coding):
    """gunicorn undoes only the chunking and passes the rest on: the app refuses the
    body rather than read it as what it is not (here a plain login, labelled gzip)."""
    body = chunked(b'{"email": "a@b.c", "password": "secret-password"}')
    headers = ("Content-Type: application/json", f"Transfer-Encoding: {coding}")
    assert_envelope(raw(server, request("POST", "/api/auth/login", *headers, body=body)), 400, "bad_request")
    assert_log_clean(server)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_415_and_registers_nothing(server, coding):
    """A Content-Encoding is not undone by gunicorn or the app: the body is refused as
    such (415), whether it is compressed or was sent plain under that label."""
    email = f"compressed-{coding}-{uuid.uuid4().hex[:6]}@example.com"
    body = json.dumps({"email": email, "password": "secret-password", "role": "CUSTOMER"}).encode()
    sent = {"gzip": gzip.compress, "deflate": zlib.compress, "br": lambda plain: plain}[coding](body)
    headers = ("Content-Type: application/json", f"Content-Encoding: {coding}", f"Content-Length: {len(sent)}")
    refused = assert_envelope(raw(server, request("POST", "/api/auth/register", *headers, body=sent)),
                              415, "unsupported_media_type")
    assert "Content-Encoding" in refused["message"]
    login = httpx.post(f"{server.url}/api/auth/login", verify=support.SSL, json={"email": email, "password": "secret-password"})
    assert login.status_code == 401  # no account was made
    assert_log_clean(server)


@pytest.mark.parametrize("path", ["//api/events", "///api/events", "//api/health"])
def test_a_path_that_starts_with_a_doubled_slash_is_a_404(server, path):
    """Sent as it is (a client library would tidy it): Werkzeug reads it as the path
    with one slash."""
    assert_envelope(raw(server, request("GET", path)), 404, "not_found")
    assert_log_clean(server)


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
@pytest.mark.parametrize("size", [70_000, 900_000])
def test_a_body_refused_as_too_large_leaves_the_connection_usable(server, framing, size):
    """The 413 says keep-alive, so the next request on that connection is answered: the
    app reads the refused body first (gunicorn alone would read 64 KiB of it and close)."""
    body = b'{"email": "' + b"x" * size + b'"}'
    headers = ["Content-Type: application/json"]
    if framing == "chunked":
        headers, body = [*headers, "Transfer-Encoding: chunked"], chunked(body)
    else:
        headers.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request("POST", "/api/auth/register", *headers, body=body, close=False))
        assert_envelope(answer(sock), 413, "payload_too_large")
        sock.sendall(request("GET", "/api/health", close=False))
        assert answer(sock)[0] == 200
    assert_log_clean(server)


# -- what only gunicorn refuses (docs/operations.md) ---------------------------------------


GUNICORN_ONLY = {
    "request line over 8190 bytes": (request("GET", "/api/events?q=" + "x" * 9000), 414),
    "header over 32768 bytes": (request("GET", "/api/events", "X-Trace: " + "t" * 40_000), 431),
    "more than 100 headers": (request("GET", "/api/events", *(f"X-H{n}: 1" for n in range(101))), 431),
    "NUL in a header": (request("GET", "/api/events", "X-Trace: a\x00b"), 400),
    "bare LF": (b"GET /api/events HTTP/1.1\nHost: localhost\n\n", 400),
    "Content-Length and Transfer-Encoding": (
        request("POST", "/api/auth/login", "Content-Length: 2", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "a transfer coding gunicorn does not decode (gzip, deflate, compress, identity), alone": (
        request("POST", "/api/auth/login", "Transfer-Encoding: gzip", body=b"\x1f\x8b"), 400),
    "an unknown transfer coding": (request("POST", "/api/auth/login", "Transfer-Encoding: foo", body=b"{}"), 501),
}


@pytest.mark.parametrize("case", GUNICORN_ONLY)
def test_what_only_gunicorn_refuses_is_documented(server, case):
    data, status = GUNICORN_ONLY[case]
    got_status, content_type, _ = raw(server, data)
    assert (got_status, content_type) == (status, "text/html")
    assert f"| {case} | {status} |" in OPERATIONS, f"docs/operations.md does not list {case!r} as {status}"
    assert httpx.get(f"{server.url}/api/health", verify=support.SSL).status_code == 200
    assert_log_clean(server)


# -- start lines and rate limits across workers --------------------------------------------


def test_the_master_names_its_address_and_warns_once_about_memory_rate_limits(server):
    messages = log_messages(server)
    assert any(m.startswith(f"Listening at: http://127.0.0.1:{server.port} (") for _, m in messages), messages
    warnings = [m for level, m in messages if "each of the 2 workers counts on its own" in m]
    assert len(warnings) == 1 and "RATELIMIT_STORAGE_URI" in warnings[0], messages


def test_a_second_server_on_the_port_stops_instead_of_sharing_it(server):
    """With SO_REUSEPORT (the default) a second server on a port in use would start and
    take a share of the first one's connections; it stops with one line instead."""
    result = subprocess.run([sys.executable, "-m", "gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"],
                            cwd=support.ROOT, env=server.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"eventbook: 127.0.0.1:{server.port} is in use: another server listens there" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert httpx.get(f"{server.url}/api/health", verify=support.SSL).status_code == 200


def failed_logins(server, attempts=20):
    """Statuses of `attempts` failed logins to one account, each on a new connection (so
    the kernel spreads them over the workers)."""
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    return [httpx.post(f"{server.url}/api/auth/login", verify=support.SSL,
                       json={"email": email, "password": "wrong-password"}).status_code
            for _ in range(attempts)]


def test_memory_rate_limits_count_per_worker(server):
    """The control: what the warning says. One address may fail 5 times a minute on one
    account (RATELIMIT_LOGIN_FAILURES); each of the 2 workers lets 5 through (20
    attempts all on one worker: about 1 in 500,000)."""
    statuses = failed_logins(server)
    assert statuses.count(401) > 5, statuses


def test_a_shared_store_makes_the_limit_exact_and_silences_the_warning(new_database, redis_url, tmp_path):
    server = start(new_database(), tmp_path, RATELIMIT_STORAGE_URI=f"{redis_url}/14")
    try:
        statuses = failed_logins(server)
    finally:
        server.stop()
    assert statuses == [401] * 5 + [429] * 15, statuses
    assert not [m for _, m in log_messages(server) if "RATELIMIT_STORAGE_URI" in m]


def test_one_worker_with_memory_rate_limits_is_not_warned_about(new_database, tmp_path):
    server = start(new_database(), tmp_path, workers=1, RATELIMIT_STORAGE_URI="memory://")
    server.stop()
    messages = log_messages(server)
    assert any(m.startswith("Listening at: http://127.0.0.1:") for _, m in messages)
    assert not [m for _, m in messages if "RATELIMIT_STORAGE_URI" in m], messages


@pytest.mark.parametrize("hops, https", [("0", False), ("1", True)], ids=["no-proxy", "one-proxy"])
def test_only_proxy_fix_x_for_trusts_a_forwarded_scheme(new_database, tmp_path, hops, https):
    """gunicorn on its own believes X-Forwarded-Proto from 127.0.0.1 (its
    forwarded_allow_ips): with PROXY_FIX_X_FOR=0 a local client claiming HTTPS got Secure
    cookies and HSTS. Only the app's setting trusts a proxy."""
    server = start(new_database(), tmp_path, workers=1, PROXY_FIX_X_FOR=hops)
    try:
        customer = support.Api(server.url).user("CUSTOMER")
        response = httpx.post(f"{server.url}/api/auth/login", verify=support.SSL, json={"email": customer["email"],
                                                                    "password": support.PASSWORD},
                              headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
        assert response.status_code == 200, response.text
        cookies = response.headers.get_list("set-cookie")
        assert cookies and all(("; Secure" in cookie) == https for cookie in cookies), cookies
        assert ("Strict-Transport-Security" in response.headers) == https
    finally:
        server.stop()
    assert_log_clean(server)


def test_workers_recycled_every_few_requests_refuse_no_connection(new_database, tmp_path):
    """GUNICORN_MAX_REQUESTS turns SO_REUSEPORT off by default: a recycled worker's own
    socket reset the connections queued on it (40 of 60 refused at 5 requests a worker;
    these 30 fail too with GUNICORN_REUSE_PORT=true)."""
    server = start(new_database(), tmp_path, GUNICORN_MAX_REQUESTS="5")
    try:
        statuses = []
        for _ in range(30):  # a new connection each time, as a client without keep-alive
            try:  # a loaded machine may take long to boot a worker: refused is what fails, not slow
                statuses.append(httpx.get(f"{server.url}/api/health", verify=support.SSL, timeout=30).status_code)
            except httpx.TransportError as exc:
                statuses.append(type(exc).__name__)
    finally:
        server.stop()
    assert statuses == [200] * 30, statuses
