"""The Commissioning page over HTTP, against the real service process and a stand-in for the loop that answers its
requests as the loop does (the core's answer is tests/core/test_commissioning.py's; the loop's side is
tests/runtime/test_commissioning.py's): every role reads the page; only a maintenance account's POST with its CSRF
token sends a request, and the core's reason reaches the page as a sentence; every attempt is recorded."""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.protocol import loopback
from carctl.protocol.loopback import ServiceCommission, parse_service_request
from carctl.runtime.service_feed import watcher_socket
from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Inbox, Sender, prepare_socket_dir
from carctl.service import accounts
from tests.service.test_http import PASSWORD, Browser, start_service, stop, write_config


class StandInLoop:
    """Takes the service's requests on the loop's socket and answers each commissioning request as the core would in
    normal service: the runs refused (not in inspection), a reset made."""

    def __init__(self, directory: Path, service_pid: int) -> None:
        self.inbox = Inbox(directory, LOOP_FROM_SERVICE)
        self.to_service = Sender(directory, watcher_socket(service_pid))
        self.requests: list[ServiceCommission] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.wait(0.02):
            for value in self.inbox.take():
                request = parse_service_request(value)
                if not isinstance(request, ServiceCommission):
                    continue
                self.requests.append(request)
                if request.action.value == "reset_faults":
                    answer = loopback.commission_answer(request.request_id, "reset_faults", True, "",
                                                        ("overspeed",), ("shaft_limit",))
                else:
                    answer = loopback.commission_answer(request.request_id, request.action.value, False,
                                                        "not_in_inspection")
                self.to_service.send(answer)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.to_service.close()
        self.inbox.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path, StandInLoop]]:
    workdir = tmp_path_factory.mktemp("commissioning")
    accounts.add_user(workdir / "users.json", "alice", "maintenance", PASSWORD)
    accounts.add_user(workdir / "users.json", "reader", "read", PASSWORD)
    directory = prepare_socket_dir(workdir / "run")
    process, url = start_service(workdir, "--config", str(write_config(workdir)), "--listen", "127.0.0.1:0")
    loop = StandInLoop(directory, process.pid)
    parsed = urllib.parse.urlsplit(url)
    try:
        yield Browser(parsed.hostname or "", parsed.port or 0), workdir, loop
    finally:
        loop.close()
        stop(process)


def audit_of(workdir: Path) -> list[dict[str, Any]]:
    import json

    records = []
    for line in (workdir / "service.log").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "audit" and str(record.get("action", "")).startswith("/commissioning"):
            records.append(record)
    return records


def logged_in(served: tuple[Browser, Path, StandInLoop], user: str) -> tuple[Browser, str]:
    browser = Browser(served[0].host, served[0].port)
    assert browser.log_in(user, PASSWORD)[0] == 303
    status, _, page = browser.request("GET", "/commissioning")
    assert status == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return browser, match.group(1)


def test_the_page_needs_a_login_and_a_reader_sees_the_state_but_no_button(
        served: tuple[Browser, Path, StandInLoop]) -> None:
    anonymous = Browser(served[0].host, served[0].port)
    assert anonymous.request("GET", "/commissioning")[0] == 303
    assert anonymous.request("POST", "/commissioning/brake_test", "csrf_token=x")[0] == 403
    browser, _ = logged_in(served, "reader")
    page = browser.request("GET", "/commissioning")[2]
    assert 'id="learning-found"' in page and 'id="brake-test-state"' in page and 'id="latched-faults"' in page
    assert 'id="start-brake-test"' not in page and 'id="read-only"' in page
    assert 'href="/commissioning"' in page  # in the navigation


def test_a_reader_is_refused_with_403_and_nothing_is_sent(served: tuple[Browser, Path, StandInLoop]) -> None:
    _, workdir, loop = served
    browser, token = logged_in(served, "reader")
    before = len(loop.requests)
    for action in ("learn", "brake_test", "reset_faults"):
        status, _, text = browser.request("POST", f"/commissioning/{action}", f"csrf_token={token}")
        assert status == 403 and "read-only" in text
    assert len(loop.requests) == before
    assert sum(1 for r in audit_of(workdir) if r["outcome"] == "refused: read-only account") >= 3


def test_without_the_csrf_token_a_maintenance_account_is_refused_too(
        served: tuple[Browser, Path, StandInLoop]) -> None:
    _, workdir, loop = served
    browser, _ = logged_in(served, "alice")
    before = len(loop.requests)
    for body in ("", "csrf_token=forged"):
        assert browser.request("POST", "/commissioning/learn", body)[0] == 403
    assert browser.request("POST", "/commissioning/learn", "csrf_token=x",
                           headers={"Content-Type": "text/plain"})[0] == 403
    assert len(loop.requests) == before
    assert any(r["outcome"] == "refused: no valid CSRF token" and r["user"] == "alice" for r in audit_of(workdir))


def test_a_maintenance_account_asks_and_the_cars_reason_reaches_the_page(
        served: tuple[Browser, Path, StandInLoop]) -> None:
    _, workdir, loop = served
    browser, token = logged_in(served, "alice")
    status, headers, _ = browser.request("POST", "/commissioning/brake_test", f"csrf_token={token}")
    assert status == 303 and headers["location"].startswith("/commissioning?answer=")
    assert loop.requests[-1].user == "alice" and loop.requests[-1].action.value == "brake_test"
    page = browser.request("GET", headers["location"])[2]
    assert 'id="commission-answer"' in page
    assert "Refused: the brake test cannot start now: the car is not in inspection" in page
    status, headers, _ = browser.request("POST", "/commissioning/reset_faults", f"csrf_token={token}")
    page = browser.request("GET", headers["location"])[2]
    assert "Reset made: cleared overspeed." in page and "Still latched" in page and "shaft_limit" in page
    outcomes = [r["outcome"] for r in audit_of(workdir) if r["user"] == "alice"]
    assert any(outcome.startswith("refused: the brake test cannot start now") for outcome in outcomes)
    assert "ok" in outcomes
    assert browser.request("POST", "/commissioning/run_up", f"csrf_token={token}")[0] == 404


def test_an_answer_id_that_is_not_one_shows_nothing(served: tuple[Browser, Path, StandInLoop]) -> None:
    browser, _ = logged_in(served, "alice")
    page = browser.request("GET", "/commissioning?answer=%3Cscript%3E")[2]
    assert 'id="commission-answer"' not in page and "<script>" not in page.split("</header>")[1].split(
        '<script src=')[0]


def test_the_page_states_each_requests_mode_as_the_core_judges_it(served: tuple[Browser, Path, StandInLoop]) -> None:
    """The page's own summary of the rules is what a technician reads before pressing: the learning run is taken
    only in emergency electrical operation, with the car-top inspection switch off (core/learning.py refuses it with
    `car_top_inspection` otherwise), the brake test only in inspection (core/braketest.py, `not_in_inspection`).
    Telling a technician to put the car in inspection for a learning run sends him to the one mode that refuses it."""
    import html

    browser, _ = logged_in(served, "reader")
    page = browser.request("GET", "/commissioning")[2]
    match = re.search(r'<p id="rules">(.*?)</p>', page, re.S)
    assert match, "the page has no summary of the rules"
    rules = " ".join(html.unescape(match.group(1)).split())
    learning, _, brake = rules.partition("The brake test")
    assert "learning run starts only in emergency electrical operation" in learning
    assert "inspection switch off" in learning and "bottom landing" in learning
    assert "only in inspection" in brake and "nobody in or on the car" in brake
