"""The service tool over real HTTP (`carctl service --listen 127.0.0.1:0`, its own process): who gets in, what a
change needs, and the limits on what a client may send. No control loop runs here: the page says so. The tests of
one server run in order: the lockout test locks this client address out, so the tests that log in come before it."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from carctl.service import accounts

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
LOCKOUT_FAILURES = 3


@dataclass
class Browser:
    """A client that keeps its cookies, as a browser would (and no more)."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: str | bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        if body is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie, _, _ = value.partition(";")
                key, _, content = cookie.partition("=")
                if "Max-Age=0" in value:
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = content
        connection.close()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, text

    def set_cookie_headers(self, method: str, path: str, body: str | None = None) -> list[str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        connection.request(method, path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                             "Cookie": "; ".join(f"{k}={v}" for k, v in
                                                                                 self.cookies.items())})
        response = connection.getresponse()
        response.read()
        connection.close()
        return [value for name, value in response.getheaders() if name.lower() == "set-cookie"]

    def login_token(self) -> str:
        status, _, page = self.request("GET", "/login")
        assert status == 200
        match = re.search(r'name="login_token" value="([^"]+)"', page)
        assert match
        return match.group(1)

    def log_in(self, user: str, password: str) -> tuple[int, str]:
        token = self.login_token()
        status, _, page = self.request("POST", "/login", urllib.parse.urlencode(
            {"login_token": token, "user": user, "password": password}))
        return status, page

    def csrf_token(self) -> str:
        _, _, page = self.request("GET", "/")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, page[:500]
        return match.group(1)


@dataclass
class Service:
    process: subprocess.Popen[str]
    host: str
    port: int
    workdir: Path

    def browser(self) -> Browser:
        return Browser(self.host, self.port)

    def audit(self) -> list[dict[str, object]]:
        records = []
        for line in (self.workdir / "service.log").read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("kind") == "audit":
                records.append(record)
        return records


def write_config(workdir: Path, extra: str = "") -> Path:
    config = workdir / "board.toml"
    config.write_text(
        '[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
        f'[runtime]\nsocket_dir = "{workdir / "run"}"\nfault_log = "{workdir / "faults.json"}"\n'
        f'[service]\nusers_file = "{workdir / "users.json"}"\nlockout_failures = {LOCKOUT_FAILURES}\n'
        f'lockout_s = 60.0\n{extra}')
    return config


def start_service(workdir: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    with open(workdir / "service.log", "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "carctl.cli", "service", *args], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise AssertionError(f"carctl service did not start: {(workdir / 'service.log').read_text()}")
    return process, json.loads(line)["url"]


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("service")
    accounts.add_user(workdir / "users.json", "alice", "maintenance", PASSWORD)
    accounts.add_user(workdir / "users.json", "reader", "read", PASSWORD)
    (workdir / "faults.json").write_text(json.dumps({"version": 1, "records": [
        {"t": 1796200000.0, "tick": 10, "event": "raised", "fault": "overspeed", "code": 31, "level": 4,
         "mode": "normal", "phase": "running", "landing": 2, "position_m": 6.1, "speed_m_s": 1.12, "load_kg": 75.0,
         "door": "closed"},
        {"t": 1796200100.0, "tick": 99, "event": "raised", "fault": "overload", "code": 51, "level": 2,
         "mode": "normal", "phase": "standing", "landing": 0, "position_m": 0.0, "speed_m_s": 0.0, "load_kg": 800.0,
         "door": "open"}]}))
    process, url = start_service(workdir, "--config", str(write_config(workdir)), "--listen", "127.0.0.1:0")
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    try:
        yield Service(process, parsed.hostname, parsed.port, workdir)
    finally:
        stop(process)


def test_it_prints_its_url_warns_without_tls_and_every_page_needs_a_login(service: Service) -> None:
    browser = service.browser()
    status, headers, page = browser.request("GET", "/login")
    assert status == 200 and 'id="no-tls"' in page
    assert "default-src 'self'" in headers["content-security-policy"]
    for path in ("/", "/faults"):
        status, headers, _ = browser.request("GET", path)
        assert status == 303 and headers["location"] == "/login"
    assert browser.request("GET", "/live.json")[0] == 401
    assert browser.request("GET", "/live/stream")[0] == 401


def test_a_login_gives_an_httponly_strict_session_cookie_and_is_audited(service: Service) -> None:
    browser = service.browser()
    token = browser.login_token()
    cookies = browser.set_cookie_headers("POST", "/login", urllib.parse.urlencode(
        {"login_token": token, "user": "alice", "password": PASSWORD}))
    session = next(cookie for cookie in cookies if cookie.startswith("carctl_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session
    assert "Max-Age=1800" in session
    assert any(record["action"] == "login" and record["user"] == "alice" and record["outcome"] == "ok"
               for record in service.audit())


def test_the_live_page_says_when_no_loop_answers(service: Service) -> None:
    browser = service.browser()
    assert browser.log_in("reader", PASSWORD)[0] == 303
    status, _, page = browser.request("GET", "/")
    assert status == 200 and 'id="shaft"' in page and "reader (read)" in page
    status, _, body = browser.request("GET", "/live.json")
    assert status == 200 and json.loads(body)["stale"] is True


def test_a_change_without_the_csrf_token_is_refused(service: Service) -> None:
    browser = service.browser()
    assert browser.log_in("reader", PASSWORD)[0] == 303
    for body in ("", "csrf_token=wrong", "csrf_token=" + "x" * 100):
        status, _, text = browser.request("POST", "/logout", body)
        assert status == 403 and "token" in text
    assert browser.request("GET", "/live.json")[0] == 200, "the session is still there: nothing changed"
    status, _, _ = browser.request("POST", "/logout", urllib.parse.urlencode({"csrf_token": browser.csrf_token()}))
    assert status == 303
    assert browser.request("GET", "/live.json")[0] == 401


def test_one_login_holds_at_most_three_live_streams_and_leaves_the_rest_to_others(service: Service) -> None:
    first, second = service.browser(), service.browser()
    assert first.log_in("reader", PASSWORD)[0] == 303 and second.log_in("alice", PASSWORD)[0] == 303
    held: list[http.client.HTTPConnection] = []

    def open_stream(browser: Browser) -> tuple[int, str]:
        connection = http.client.HTTPConnection(service.host, service.port, timeout=10)
        connection.request("GET", "/live/stream", headers={"Cookie": "; ".join(
            f"{k}={v}" for k, v in browser.cookies.items())})
        response = connection.getresponse()
        if response.status == 200:
            held.append(connection)  # left open: the stream stays counted
            return 200, ""
        text = response.read().decode()
        connection.close()
        return response.status, text

    try:
        assert [open_stream(first)[0] for _ in range(3)] == [200, 200, 200]
        status, text = open_stream(first)
        assert status == 429 and "This login has 3 live pages open already" in text
        assert open_stream(second)[0] == 200, "another technician's login still gets its live page"
    finally:
        for connection in held:
            connection.close()


def test_a_wrong_password_is_refused_and_repeats_lock_the_account_out(service: Service) -> None:
    browser = service.browser()
    for _ in range(LOCKOUT_FAILURES):
        status, page = browser.log_in("alice", "not the password")
        assert status == 401 and "Wrong user name or password." in page
    status, page = browser.log_in("alice", PASSWORD)
    assert status == 429 and "Too many failed logins" in page, "locked out: even the right password is refused"
    other = Browser(service.host, service.port)
    assert other.log_in("reader", PASSWORD)[0] == 429, "and this client address is locked out too"
    outcomes = [record["outcome"] for record in service.audit() if record["user"] == "alice"]
    assert "refused: wrong password" in outcomes and "refused: locked out now" in outcomes
    assert "refused: locked out" in outcomes


def test_a_login_without_its_form_token_is_refused(service: Service) -> None:
    browser = service.browser()
    status, _, _ = browser.request("POST", "/login", urllib.parse.urlencode({"user": "alice", "password": PASSWORD}))
    assert status == 403 and "carctl_session" not in browser.cookies


def test_a_flood_of_refused_logins_does_not_flood_the_maintenance_record(tmp_path: Path) -> None:
    """Anyone who reaches the page can post a login without its form token, as fast as the server answers: each is
    in the journal, but only REFUSALS_PER_WINDOW of them go to the loop's maintenance record, whose file is rotated
    at its size (a flood would push the car's history off the card)."""
    from carctl.protocol.loopback import ServiceAudit, parse_service_request
    from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Inbox, prepare_socket_dir
    from carctl.service.audit import REFUSALS_PER_WINDOW

    flood = 3 * REFUSALS_PER_WINDOW
    stand_in_loop = Inbox(prepare_socket_dir(tmp_path / "run"), LOOP_FROM_SERVICE)
    process, url = start_service(tmp_path, "--config", str(write_config(tmp_path)), "--listen", "127.0.0.1:0")
    service = Service(process, "127.0.0.1", urllib.parse.urlsplit(url).port or 0, tmp_path)
    sent = []
    try:
        browser = service.browser()
        for _ in range(flood):
            status, _, _ = browser.request("POST", "/login", "user=flood&password=x")
            assert status == 403
            time.sleep(0.01)
            # Taken as they come, as the loop takes them (a Unix datagram socket queues only a few).
            sent += [message for message in map(parse_service_request, stand_in_loop.take())
                     if isinstance(message, ServiceAudit)]
    finally:
        stop(process)
        stand_in_loop.close()
    assert len(service.audit()) == flood, "the journal has every one"
    assert len(sent) == REFUSALS_PER_WINDOW, sent
    assert all(message.outcome == "refused: no valid form token" for message in sent)


def test_faults_page_shows_meanings_from_the_docs_and_filters(tmp_path: Path) -> None:
    workdir = tmp_path
    accounts.add_user(workdir / "users.json", "reader", "read", PASSWORD)
    (workdir / "faults.json").write_text(json.dumps({"version": 1, "records": [
        {"t": 1796200000.0, "tick": 10, "event": "raised", "fault": "overspeed", "code": 31, "level": 4,
         "mode": "normal", "phase": "running", "landing": 2, "position_m": 6.1, "speed_m_s": 1.12, "load_kg": 75.0,
         "door": "closed"},
        {"t": 1796200100.0, "tick": 99, "event": "raised", "fault": "overload", "code": 51, "level": 2,
         "mode": "normal", "phase": "standing", "landing": 0, "position_m": 0.0, "speed_m_s": 0.0, "load_kg": 800.0,
         "door": "open"}]}))
    process, url = start_service(workdir, "--config", str(write_config(workdir)), "--listen", "127.0.0.1:0")
    try:
        parsed = urllib.parse.urlsplit(url)
        browser = Browser(parsed.hostname or "", parsed.port or 0)
        assert browser.log_in("reader", PASSWORD)[0] == 303
        _, _, page = browser.request("GET", "/faults")
        assert "110 % of rated" in page and "overload" in page  # docs/faults.md's condition column
        _, _, page = browser.request("GET", "/faults?level=4")
        assert "overspeed" in page.split('id="fault-log"')[1] and "800.0 kg" not in page
        _, _, page = browser.request("GET", "/faults?fault=overload&since=2026-12-02T04:00")
        assert "800.0 kg" in page and "6.1 m" not in page
        status, _, page = browser.request("GET", "/faults?level=9")
        assert status == 400 and "level must be 1, 2, 3 or 4" in page
        status, _, page = browser.request("GET", "/faults?since=yesterday")
        assert status == 400 and "since must be a date" in page
    finally:
        stop(process)


def raw_request(service: Service, data: bytes) -> bytes:
    with socket.create_connection((service.host, service.port), timeout=10) as connection:
        connection.sendall(data)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_limits_on_what_a_client_may_send(service: Service) -> None:
    too_large = raw_request(service, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
                                     b"urlencoded\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" + b"a" * 100000)
    assert too_large.startswith(b"HTTP/1.1 413")
    too_long = raw_request(service, b"GET /login?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert too_long.startswith(b"HTTP/1.1 414")
    huge_header = raw_request(service, b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: "
                              + b"a" * 20000 + b"\r\n\r\n")
    assert huge_header.startswith(b"HTTP/1.1 431")
    many_headers = raw_request(service, b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               + b"".join(b"X-%d: 1\r\n" % n for n in range(200)) + b"\r\n")
    assert many_headers.startswith(b"HTTP/1.1 431")
    garbage = raw_request(service, b"\x00\xff\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400") or garbage == b""
    # And it still serves.
    assert service.browser().request("GET", "/login")[0] == 200
    assert service.process.poll() is None


def test_a_body_that_breaks_off_mid_request_gets_400_and_no_traceback(service: Service) -> None:
    """A chunked body that is not one, under a request the application has already begun to answer: the server
    answers 400 and closes; the application's own answer, made after, is dropped quietly, not a traceback in the
    journal."""
    log = service.workdir / "service.log"
    before = log.read_text().count("Traceback")
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    for path in (b"/login", b"/logout", b"/parameters"):
        for head in (b"", form):  # refused before the body is read, or while it is
            answer = raw_request(service, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + head +
                                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nuser=\r\nzz\r\n")
            assert answer.startswith(b"HTTP/1.1 400")
    assert service.browser().request("GET", "/login")[0] == 200
    time.sleep(0.2)
    assert log.read_text().count("Traceback") == before, log.read_text()[-3000:]


def test_a_connection_that_sends_no_whole_head_in_time_is_closed(service: Service) -> None:
    """A client that opens connections and sends nothing, or a head a byte at a time, cannot hold them (the server
    takes 32 at once): closed after the head's deadline (10 s), while a real request on another is answered."""
    from carctl.service.http_protocol import HEAD_DEADLINE_S

    silent = socket.create_connection((service.host, service.port), timeout=HEAD_DEADLINE_S + 5)
    partial = socket.create_connection((service.host, service.port), timeout=HEAD_DEADLINE_S + 5)
    try:
        started = time.monotonic()
        partial.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n")
        assert service.browser().request("GET", "/login")[0] == 200
        assert silent.recv(100) == b"" and partial.recv(100) == b""
        assert HEAD_DEADLINE_S - 1 <= time.monotonic() - started <= HEAD_DEADLINE_S + 3
    finally:
        silent.close()
        partial.close()


def test_one_client_cannot_take_every_connection(service: Service) -> None:
    """A client that opens as many connections as the server takes (and sends nothing, or sends slowly) is held to
    its share: its connections past MAX_CONNECTIONS_PER_CLIENT are closed at once, and a technician at another
    address is served meanwhile, not told 503."""
    from carctl.service.http_protocol import MAX_CONNECTIONS_PER_CLIENT
    from carctl.service.server import MAX_CONNECTIONS

    held = [socket.create_connection((service.host, service.port), timeout=5) for _ in range(MAX_CONNECTIONS + 8)]
    try:
        time.sleep(0.5)
        closed = 0
        for connection in held:
            connection.setblocking(False)
            try:
                closed += connection.recv(1) == b""
            except BlockingIOError:
                continue
            except ConnectionResetError:
                closed += 1
        assert closed == len(held) - MAX_CONNECTIONS_PER_CLIENT
        other = socket.create_connection((service.host, service.port), timeout=10, source_address=("127.0.0.2", 0))
        with other:
            other.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert other.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for connection in held:
            connection.close()


def test_an_address_in_use_is_refused_in_one_sentence(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "carctl.cli", "service", "--config", str(write_config(tmp_path)),
                               "--listen", f"127.0.0.1:{port}"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    finally:
        holder.close()
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"carctl service: error: --listen: cannot listen on 127.0.0.1:{port} (Address " \
                                  f"already in use)"


def test_it_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    process, _ = start_service(tmp_path, "--config", str(write_config(tmp_path)), "--listen", "127.0.0.1:0")
    started = time.monotonic()
    stop(process)
    # uvicorn shuts down gracefully, then ends by the signal it caught, as the signal would have (-SIGTERM).
    assert process.returncode in (0, -signal.SIGTERM) and time.monotonic() - started < 5
    assert "Traceback" not in (tmp_path / "service.log").read_text()


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl (every Debian has it)."""
    cert, key = workdir / "service.crt", workdir / "service.key"
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                           str(cert)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return cert, key


@pytest.mark.skipif(not Path("/usr/bin/openssl").exists(), reason="needs openssl to make a test certificate")
def test_under_tls_the_page_is_https_without_the_banner_and_the_cookie_is_secure(tmp_path: Path) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    accounts.add_user(tmp_path / "users.json", "alice", "maintenance", PASSWORD)
    config = write_config(tmp_path, f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n')
    process, url = start_service(tmp_path, "--config", str(config), "--listen", "127.0.0.1:0")
    try:
        assert url.startswith("https://127.0.0.1:")
        parsed = urllib.parse.urlsplit(url)
        context = ssl.create_default_context(cafile=str(cert))
        connection = http.client.HTTPSConnection("127.0.0.1", parsed.port, context=context, timeout=10)
        connection.request("GET", "/login")
        response = connection.getresponse()
        page = response.read().decode()
        login_cookie = response.getheader("set-cookie") or ""
        connection.close()
        assert response.status == 200 and 'id="no-tls"' not in page
        assert "Secure" in login_cookie and "HttpOnly" in login_cookie
        token = re.search(r'name="login_token" value="([^"]+)"', page)
        assert token
        connection = http.client.HTTPSConnection("127.0.0.1", parsed.port, context=context, timeout=10)
        connection.request("POST", "/login", body=urllib.parse.urlencode(
            {"login_token": token.group(1), "user": "alice", "password": PASSWORD}),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Cookie": login_cookie.split(";")[0]})
        response = connection.getresponse()
        response.read()
        cookies = [value for name, value in response.getheaders() if name.lower() == "set-cookie"]
        connection.close()
        assert response.status == 303
        session = next(cookie for cookie in cookies if cookie.startswith("carctl_session="))
        assert "Secure" in session and "HttpOnly" in session and "SameSite=strict" in session
        assert_an_unfinished_handshake_is_closed_at_the_heads_deadline("127.0.0.1", parsed.port)
    finally:
        stop(process)


def assert_an_unfinished_handshake_is_closed_at_the_heads_deadline(host: str, port: int) -> None:
    """A client that connects and never finishes its TLS handshake holds its socket no longer than one that never
    sends a head (asyncio's own default is 60 s)."""
    from carctl.service.http_protocol import HEAD_DEADLINE_S

    stalled = socket.create_connection((host, port), timeout=HEAD_DEADLINE_S + 20)
    try:
        started = time.monotonic()
        stalled.sendall(b"\x16\x03\x01\x00\xc8")  # a ClientHello's record header, and then nothing
        assert stalled.recv(100) == b""
        assert time.monotonic() - started <= HEAD_DEADLINE_S + 3
    finally:
        stalled.close()


def test_tls_files_that_cannot_be_used_are_refused_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate\n")
    (tmp_path / "bad.key").write_text("not a key\n")
    config = write_config(tmp_path, f'tls_cert_file = "{tmp_path / "bad.crt"}"\n'
                                    f'tls_key_file = "{tmp_path / "bad.key"}"\n')
    done = subprocess.run([sys.executable, "-m", "carctl.cli", "service", "--config", str(config), "--listen",
                           "127.0.0.1:0"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "service.tls_cert_file" in done.stderr
    half = write_config(tmp_path, f'tls_cert_file = "{tmp_path / "bad.crt"}"\n')
    done = subprocess.run([sys.executable, "-m", "carctl.cli", "service", "--config", str(half)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "service.tls_key_file" in done.stderr and "both" in done.stderr


@pytest.mark.skipif(not Path("/usr/bin/openssl").exists(), reason="needs openssl to make a test certificate")
def test_a_certificate_given_as_its_own_key_is_refused_saying_what_each_file_must_hold(tmp_path: Path) -> None:
    """An easy slip on site: the same file in both keys. OpenSSL alone says "[SSL] PEM lib (_ssl.c:NNNN)", which
    names neither the file nor what is missing."""
    cert, _ = self_signed(tmp_path)
    config = write_config(tmp_path, f'tls_cert_file = "{cert}"\ntls_key_file = "{cert}"\n')
    done = subprocess.run([sys.executable, "-m", "carctl.cli", "service", "--config", str(config), "--listen",
                           "127.0.0.1:0"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "PEM certificate" in done.stderr and "private key that matches it" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

