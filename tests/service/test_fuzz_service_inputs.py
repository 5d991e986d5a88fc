"""Fuzzing what the service tool parses from outside: the loop's messages on its socket, the watch requests on the
loop's, the users file, the stored hashes, the fault log's filters and the login form. Whatever they are fed, they
answer with their own refusal, never another exception. `make test` runs a few hundred examples each; `make fuzz`
many more (conftest.py)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.requests import Request

from carctl import safejson
from carctl.protocol.loopback import CommissionAnswer, EventsReport, HealthReport, LiveReport, Refused, \
    ServiceAudit, ServiceCommission, ServiceReload, WatchRequest, parse_service_message, parse_service_request, \
    parse_watch
from carctl.service import accounts
from carctl.service.app import _fault_filters, read_form
from tests.test_fuzz_inputs import VALUES

pytestmark = pytest.mark.fuzz

MESSAGES = st.one_of(VALUES, st.fixed_dictionaries({"type": st.sampled_from(["live", "health", "events", "watch"])},
                                                   optional={"live": VALUES, "health": VALUES, "events": VALUES,
                                                             "sent_s": VALUES}))


# Commissioning: the service tool's request (to the loop) and the loop's answer (to the service tool).
COMMISSION = st.fixed_dictionaries(
    {"type": st.just("commission")},
    optional={"action": st.one_of(st.sampled_from(["learn", "brake_test", "reset_faults"]), VALUES),
              "id": st.one_of(st.just("0123456789abcdef0123456789abcdef"), VALUES),
              "user": VALUES, "outcome": st.one_of(st.sampled_from(["accepted", "refused"]), VALUES),
              "reason": VALUES, "cleared": VALUES, "latched": VALUES, "sent_s": VALUES})


@given(st.one_of(MESSAGES, COMMISSION))
def test_the_loops_messages_are_taken_or_refused(value: Any) -> None:
    assert isinstance(parse_service_message(value), (LiveReport, HealthReport, EventsReport, CommissionAnswer,
                                                     Refused))
    assert isinstance(parse_watch(value), (WatchRequest, Refused))


@given(st.one_of(MESSAGES, COMMISSION))
def test_the_service_tools_requests_are_taken_or_refused(value: Any) -> None:
    assert isinstance(parse_service_request(value), (WatchRequest, ServiceAudit, ServiceReload, ServiceCommission,
                                                     Refused))


@given(st.one_of(VALUES, st.fixed_dictionaries({"version": st.one_of(st.just(1), VALUES),
                                                "users": st.dictionaries(st.text(max_size=40), VALUES,
                                                                         max_size=4)})))
@settings(deadline=None)
def test_any_users_file_is_read_or_refused(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "users.json"
        try:
            path.write_bytes(safejson.dumps(document))
        except (TypeError, ValueError):
            return  # not JSON at all: the file tests cover raw bytes
        try:
            loaded = accounts.load(path)
        except accounts.AccountError:
            return
        assert all(account.role in accounts.ROLES for account in loaded.users.values())


@given(st.text(max_size=120) | st.sampled_from(["scrypt$16384$8$1$c2FsdHNhbHQ=$QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
                                                "scrypt$2$1$1$c2FsdHNhbHQ=$QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"]))
@settings(deadline=None)
def test_any_stored_hash_is_checked_or_matches_nothing(stored: str) -> None:
    assert accounts.password_matches("correct horse battery", stored) in (True, False)


@given(st.dictionaries(st.sampled_from(["level", "fault", "since", "until", "other"]), st.text(max_size=40),
                       max_size=5))
def test_any_fault_log_filter_is_taken_or_refused_in_a_sentence(query: dict[str, str]) -> None:
    filters, problem = _fault_filters(QueryParams(query))
    assert isinstance(problem, str)
    assert filters["level"] in (None, 1, 2, 3, 4)


@given(st.binary(max_size=300), st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "",
                                                 "application/x-www-form-urlencoded; charset=utf-8"]))
def test_any_form_body_is_a_form_or_none(body: bytes, content_type: str) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": "POST", "path": "/login", "headers": [
        (b"content-type", content_type.encode())], "query_string": b""}, receive)
    form = asyncio.run(read_form(request))
    assert form is None or (isinstance(form, dict) and len(form) <= 8)
