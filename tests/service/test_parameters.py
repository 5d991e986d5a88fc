"""The Parameters page: every key of the running configuration with its range and meaning (from the code's own
dataclasses and the documentation's key tables), and the maintenance settings changed through the platform's
validated path (runtime/overrides.py and a `reload` to the loop). The page over real HTTP (`carctl service`, its own
process) with a stand-in for the loop's socket; the loop's side with a real ControlLoop."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.core.config import BuildingConfig, CarConfig
from carctl.protocol import loopback
from carctl.protocol.loopback import Refused, ServiceReload, parse_service_request
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig, from_dict, load
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.sidechannel import LOOP_FROM_SERVICE, Inbox, Sender, prepare_socket_dir
from carctl.service import accounts, parameters
from tests.service.test_http import PASSWORD, Browser, start_service, stop, write_config

ROOT = Path(__file__).resolve().parents[2]


# -- the list ----------------------------------------------------------------------------------------------------

def all_sections() -> list[tuple[str, type]]:
    sections = [("building", BuildingConfig), ("car", CarConfig)]
    sections += [(f.name, type(getattr(FirmwareConfig(), f.name))) for f in dataclasses.fields(FirmwareConfig)
                 if f.name != "controller"]
    return sections


def test_the_list_has_every_key_of_every_section_with_its_range_and_meaning() -> None:
    config = load(ROOT / "configs" / "sim.toml")
    listed = {p.key: p for p in parameters.parameters(config, {}, parameters.load_docs())}
    expected = {f"{name}.{f.name}" for name, cls in all_sections() for f in dataclasses.fields(cls)}
    assert set(listed) == expected
    assert "car.park_delay_s" in listed and "drive.transaction" in listed and "service.lockout_s" in listed
    for name, cls in all_sections():
        for key, limit in getattr(cls, "RANGES", {}).items():
            parameter = listed[f"{name}.{key}"]
            assert parameter.range == limit.interval and parameter.unit == limit.unit, parameter
    undescribed = [key for key, p in listed.items() if p.meaning.startswith("not described")]
    assert undescribed == [], "every key's meaning is in docs/deployment.md or docs/scenarios.md"
    assert "where an idle car parks" in listed["car.home_landing"].meaning  # docs/scenarios.md's [car] table
    assert "SCHED_FIFO" in listed["runtime.realtime_priority"].meaning  # docs/deployment.md's table
    assert listed["platform.car"].meaning == listed["platform.community"].meaning  # one row, two keys
    assert listed["car.control_period_s"].value == "0.02"
    assert {key for key, p in listed.items() if p.editable} == set(parameters.EDITABLE)


def test_a_value_in_the_settings_file_is_shown_in_force_beside_the_configurations() -> None:
    config = load(ROOT / "configs" / "sim.toml")
    listed = {p.key: p for p in parameters.parameters(config, {"home_landing": 3}, parameters.load_docs())}
    assert listed["car.home_landing"].value == "3" and listed["car.home_landing"].configured == "0"
    impossible = {p.key: p for p in parameters.parameters(config, {"home_landing": 9}, parameters.load_docs())}
    assert impossible["car.home_landing"].value == "0", "settings the loop would refuse are not in force"


def test_the_form_is_parsed_and_validated_as_the_loop_validates_the_settings_file() -> None:
    controller = load(ROOT / "configs" / "sim.toml").controller
    assert parameters.changes_from_form({"home_landing": " 3 ", "permissions_enabled": "true",
                                         "free_landings": "0, 2 4"}) == (
        {"home_landing": 3, "permissions_enabled": True, "free_landings": [0, 2, 4]}, "")
    assert parameters.changes_from_form({"free_landings": ""}) == ({"free_landings": []}, "")
    for form, sentence in [({"home_landing": "three"}, "car.home_landing: must be a landing index"),
                           ({"home_landing": "-1"}, "car.home_landing: must be a landing index"),
                           ({"permissions_enabled": "yes"}, "car.permissions_enabled: must be true or false"),
                           ({"free_landings": "0;2"}, "car.free_landings: must be landing indices"),
                           ({}, "nothing to change")]:
        changes, problem = parameters.changes_from_form(form)
        assert changes == {} and problem.startswith(sentence), (form, problem)
    assert overrides.problem(controller, {"home_landing": 9}) == \
        "car.home_landing: must be a landing index 0..5 (got 9)"
    assert overrides.problem(controller, {"home_landing": 150}).startswith("car.home_landing:")
    assert overrides.problem(controller, {"free_landings": [0, 7]}) == "car.free_landings: landings must exist (0..5)"
    assert overrides.problem(controller, {"home_landing": True}) == \
        "car.home_landing: True is not a value this setting takes"
    assert overrides.problem(controller, {"rated_speed_m_s": 4.0}) == \
        "rated_speed_m_s: not a setting that may be changed on a running car"
    assert overrides.problem(controller, {"home_landing": 5, "free_landings": [0, 5]}) is None


# -- the reload message ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    {"type": "reload", "command": "x"}, {"type": "reload", "user": "alice"}, {"type": "reload", "settings": {}},
    {"type": "Reload"}, {"type": ["reload"]}, ["reload"], "reload",
])
def test_a_malformed_reload_is_refused(value: Any) -> None:
    assert isinstance(parse_service_request(value), Refused)


def test_the_reload_is_parsed_and_the_loop_applies_it_between_two_cycles_and_records_it(tmp_path: Path) -> None:
    assert parse_service_request(loopback.service_reload()) == ServiceReload()
    assert parse_service_request({**loopback.service_reload(), loopback.SENT_KEY: 1.0}) == ServiceReload()
    settings = tmp_path / "overrides.json"
    config = from_dict({"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
                        "processes": {"service": True},
                        "runtime": {"socket_dir": str(tmp_path / "run"), "fault_log": "", "latch_file": "",
                                    "learned_table": "", "audit_log": str(tmp_path / "audit.log")},
                        "platform": {"overrides_path": str(settings)}})
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.005), PanelBusMaster("/dev/null"),
                       StructuredLog(io.StringIO()))
    to_loop = Sender(Path(config.runtime.socket_dir), LOOP_FROM_SERVICE)
    assert loop.controller.config.car.home_landing == 0
    overrides.write(settings, {"home_landing": 4})
    to_loop.send(loopback.service_reload())
    to_loop.send({"type": "reload", "extra": 1})  # refused and counted
    to_loop.close()
    for _ in range(10):
        loop.cycle()
    assert loop.controller.config.car.home_landing == 4
    assert loop.service_feed is not None and loop.service_feed.inbox.refused["reload with unknown keys"] == 1
    loop.service_feed.close()
    assert loop.audit is not None
    loop.audit.close()
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    change = [r for r in records if r.get("action") == "parameter_change"]
    assert change and change[-1]["via"] == "service_tool", records
    # A restart applies the settings file with the service tool on, without the platform.
    again = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.005), PanelBusMaster("/dev/null"),
                        StructuredLog(io.StringIO()))
    assert again.controller.config.car.home_landing == 4
    again.service_feed.close()  # type: ignore[union-attr]
    again.audit.close()  # type: ignore[union-attr]


# -- over HTTP ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path, Inbox]]:
    workdir = tmp_path_factory.mktemp("parameters")
    accounts.add_user(workdir / "users.json", "alice", "maintenance", PASSWORD)
    accounts.add_user(workdir / "users.json", "reader", "read", PASSWORD)
    (workdir / "mqtt.password").write_text("do-not-show-this-password")
    extra = (f'[platform]\noverrides_path = "{workdir / "overrides.json"}"\n'
             f'password_file = "{workdir / "mqtt.password"}"\n')
    loop_socket = Inbox(prepare_socket_dir(workdir / "run"), LOOP_FROM_SERVICE)  # stands in for the loop
    process, url = start_service(workdir, "--config", str(write_config(workdir, extra)), "--listen", "127.0.0.1:0")
    parsed = urllib.parse.urlsplit(url)
    try:
        yield Browser(parsed.hostname or "", parsed.port or 0), workdir, loop_socket
    finally:
        stop(process)
        loop_socket.close()


def audit_of(workdir: Path) -> list[dict[str, Any]]:
    records = []
    for line in (workdir / "service.log").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "audit" and record.get("action") == "/parameters":
            records.append(record)
    return records


def reloads(loop_socket: Inbox) -> int:
    return sum(1 for value in loop_socket.take() if isinstance(parse_service_request(value), ServiceReload))


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_a_reader_sees_every_key_but_no_form_and_no_secret(served: tuple[Browser, Path, Inbox]) -> None:
    browser, workdir, _ = served
    browser = Browser(browser.host, browser.port)
    assert browser.request("GET", "/parameters")[0] == 303, "a login first"
    assert browser.log_in("reader", PASSWORD)[0] == 303
    status, _, page = browser.request("GET", "/parameters")
    assert status == 200 and 'id="key-car.park_delay_s"' in page and "[0, 86400] s" in page
    assert 'id="key-service.lockout_s"' in page and "where an idle car parks" in page
    assert str(workdir / "mqtt.password") in page and "do-not-show-this-password" not in page
    assert 'id="edit-parameters"' not in page and 'id="read-only"' in page


def test_a_read_only_user_is_refused_and_the_attempt_recorded(served: tuple[Browser, Path, Inbox]) -> None:
    browser, workdir, loop_socket = served
    browser = Browser(browser.host, browser.port)
    assert browser.log_in("reader", PASSWORD)[0] == 303
    token = csrf_of(browser.request("GET", "/")[2])
    status, _, text = browser.request("POST", "/parameters", urllib.parse.urlencode(
        {"csrf_token": token, "home_landing": "3"}))
    assert status == 403 and "read-only" in text
    assert not (workdir / "overrides.json").exists() and reloads(loop_socket) == 0
    assert any(r["user"] == "reader" and r["outcome"] == "refused: read-only account" for r in audit_of(workdir))


def test_a_change_without_the_csrf_token_is_refused(served: tuple[Browser, Path, Inbox]) -> None:
    browser, workdir, loop_socket = served
    browser = Browser(browser.host, browser.port)
    assert browser.log_in("alice", PASSWORD)[0] == 303
    for body in ("home_landing=3", "csrf_token=forged&home_landing=3"):
        status, _, _ = browser.request("POST", "/parameters", body)
        assert status == 403
    assert not (workdir / "overrides.json").exists() and reloads(loop_socket) == 0
    assert any(r["user"] == "alice" and r["outcome"] == "refused: no valid CSRF token" for r in audit_of(workdir))


def test_a_session_of_an_account_changed_since_its_login_makes_no_change(served: tuple[Browser, Path, Inbox]) -> None:
    """`add-user` again for a logged-in account (a maintenance account made read-only, or a password changed because
    it was seen): its sessions make no more changes; they end at their next try."""
    browser, workdir, loop_socket = served
    demoted, exposed = Browser(browser.host, browser.port), Browser(browser.host, browser.port)
    accounts.add_user(workdir / "users.json", "bob", "maintenance", PASSWORD)
    accounts.add_user(workdir / "users.json", "carol", "maintenance", PASSWORD)
    assert demoted.log_in("bob", PASSWORD)[0] == 303 and exposed.log_in("carol", PASSWORD)[0] == 303
    tokens = [csrf_of(demoted.request("GET", "/parameters")[2]), csrf_of(exposed.request("GET", "/parameters")[2])]
    accounts.add_user(workdir / "users.json", "bob", "read", PASSWORD)
    accounts.add_user(workdir / "users.json", "carol", "maintenance", PASSWORD + " changed")
    for session, token in zip((demoted, exposed), tokens):
        status, _, text = session.request("POST", "/parameters", urllib.parse.urlencode(
            {"csrf_token": token, "home_landing": "2", "permissions_enabled": "false", "free_landings": "0"}))
        assert status == 403 and "log in again" in text
        assert session.request("GET", "/live.json")[0] == 401, "the session has ended"
    assert not (workdir / "overrides.json").exists() and reloads(loop_socket) == 0
    outcomes = {r["user"]: r["outcome"] for r in audit_of(workdir) if r["user"] in ("bob", "carol")}
    assert outcomes == {"bob": "refused: account changed since the login", "carol":
                        "refused: account changed since the login"}


def test_a_maintenance_user_changes_the_home_landing_and_a_bad_value_gets_its_sentence(
        served: tuple[Browser, Path, Inbox]) -> None:
    browser, workdir, loop_socket = served
    browser = Browser(browser.host, browser.port)
    assert browser.log_in("alice", PASSWORD)[0] == 303
    status, _, page = browser.request("GET", "/parameters")
    assert status == 200 and 'id="edit-parameters"' in page
    token = csrf_of(page)
    status, _, page = browser.request("POST", "/parameters", urllib.parse.urlencode(
        {"csrf_token": token, "home_landing": "9", "permissions_enabled": "false", "free_landings": "0"}))
    assert status == 400 and "car.home_landing: must be a landing index 0..5 (got 9)" in page
    assert not (workdir / "overrides.json").exists() and reloads(loop_socket) == 0
    status, headers, _ = browser.request("POST", "/parameters", urllib.parse.urlencode(
        {"csrf_token": token, "home_landing": "3", "permissions_enabled": "false", "free_landings": "0, 2"}))
    assert status == 303 and headers["location"] == "/parameters?saved=1"
    assert overrides.read(workdir / "overrides.json") == {"home_landing": 3, "permissions_enabled": False,
                                                           "free_landings": [0, 2]}
    assert reloads(loop_socket) == 1
    _, _, page = browser.request("GET", "/parameters?saved=1")
    assert 'id="parameters-saved"' in page and 'value="3"' in page and "(configuration file: 0)" in page
    outcomes = [r["outcome"] for r in audit_of(workdir) if r["user"] == "alice"]
    assert "refused: car.home_landing: must be a landing index 0..5 (got 9)" in outcomes and "ok" in outcomes

