"""The Commissioning page as a commissioning crew uses it (docs/service-tool.md): the real firmware (`carctl run`,
its process table starting the service tool) against the simulated shaft (`python -m sim serve`), the page in a real
headless Chromium. The brake test asked for in normal service is refused with the car's reason; in inspection (`sim
ctl key inspection on`) it is held and passes; with a brake that does not hold the test torque (`sim ctl inject
weak_brake`) it fails with the slip and brake_slipping latches, which the page's reset clears once the brake is
sound again; then the learning run starts from the bottom landing and the page follows the vanes it finds (the
whole run, some 100 s over the wire, is hil_tests/test_learning_wire.py's). Each request is in the car's
maintenance record with the account that asked.

With CARCTL_SCREENSHOTS=1 the test saves docs/service-tool/commissioning.png. Skipped, with the reason, where
chromium or chromedriver is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.test_browser import BROWSER_TEST, PASSWORD, browser, log_in, running_car_with_service, screenshot, \
    sim_ctl, text_of, wait_for

pytestmark = BROWSER_TEST

__all__ = ["browser"]  # the fixture, from test_browser


@pytest.fixture()
def car_to_commission(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(the page's URL, the simulator's control address, the work folder): the bench car with the service tool on
    and a maintenance record."""
    record = f'audit_log = "{tmp_path / "audit.log"}"'
    with running_car_with_service(tmp_path, edit=lambda text: text.replace('audit_log = ""', record, 1)) as running:
        yield running


def position_m(driver: Any) -> float:
    """The car's position on the page (NaN until its first update)."""
    try:
        return float(text_of(driver, "position").split()[0])
    except (ValueError, IndexError):
        return float("nan")


def press(driver: Any, button_id: str) -> str:
    """Press one of the page's buttons; the sentence the page answers with."""
    from selenium.webdriver.common.by import By

    before = driver.current_url
    driver.find_element(By.ID, button_id).click()
    wait_for(lambda: "answer=" in driver.current_url and driver.current_url != before, 10,
             f"the page's answer to {button_id}")
    return text_of(driver, "commission-answer")


# What a test machine under load may do to the car for a moment (a reading that ages past its limit: drive_stale,
# car_top_stale): a request refused, or a test abandoned, for a reason that is gone a moment later. The crew presses
# again; so does the test, a few times, and only for these.
PASSING_REASONS = ("a fault holds the car", "the car is moving", "the drive does not answer")


def until_accepted(driver: Any, button_id: str, tries: int = 5) -> str:
    for _ in range(tries):
        said = press(driver, button_id)
        if not any(reason in said for reason in PASSING_REASONS):
            return said
        time.sleep(1.0)
    return said


def brake_test_result(driver: Any, tries: int = 5) -> str:
    """Start a brake test from the page and wait for its result (pressed again if it was abandoned)."""
    for _ in range(tries):
        said = until_accepted(driver, "start-brake-test")
        assert said == "Accepted: the brake test started.", said
        result = wait_for(lambda: (lambda last: last if last.startswith(("passed", "FAILED", "abandoned", "the drive"))
                                   else "")(text_of(driver, "brake-test-last")), 20, "the brake test's result")
        if not result.startswith("abandoned"):
            return str(result)
        time.sleep(1.0)
    raise AssertionError(f"the brake test abandoned {tries} times")


def test_a_crew_tests_the_brake_in_inspection_resets_its_fault_and_starts_the_learning_run(
        car_to_commission: tuple[str, str, Path], browser: Any) -> None:  # noqa: F811 - the fixture, imported
    url, control, workdir = car_to_commission
    log_in(browser, url, "tech", PASSWORD)
    wait_for(lambda: browser.current_url == url, 10, "the live page after the login")
    browser.get(url + "commissioning")
    wait_for(lambda: text_of(browser, "phase") == "standing" and text_of(browser, "door").startswith("closed"), 40,
             "the car standing at its landing with its doors closed")
    assert text_of(browser, "mode") == "normal"

    # In normal service the car refuses, with its reason; nothing is asked of the drive.
    said = press(browser, "start-brake-test")
    assert said.startswith("Refused: the brake test cannot start now: the car is not in inspection"), said
    wait_for(lambda: text_of(browser, "brake-test-last").startswith("refused: the car is not in inspection"), 5,
             "the refusal in the brake test's last result")

    # In inspection the test is made: the drive holds its torque, the car does not move, the test passes.
    sim_ctl(control, "key", "inspection", "on")
    wait_for(lambda: text_of(browser, "mode") == "inspection", 10, "the page shows the car in inspection")
    result = brake_test_result(browser)
    assert result.startswith("passed: the car moved"), result
    assert text_of(browser, "brake-test-state") == "not running"

    # A brake that does not hold the test torque: the test fails with the slip and brake_slipping latches.
    sim_ctl(control, "inject", "weak_brake")
    result = brake_test_result(browser)
    assert result.startswith("FAILED: the brake slipped"), result
    wait_for(lambda: "brake_slipping" in text_of(browser, "latched-faults"), 5, "brake_slipping latched")
    # The brake repaired, the page's reset clears it, as the maintenance key would.
    sim_ctl(control, "clear", "weak_brake")
    said = until_accepted(browser, "reset-faults")
    assert said.startswith("Reset made: cleared brake_slipping"), said
    wait_for(lambda: text_of(browser, "latched-faults") == "none", 5, "nothing latched any more")

    # The learning run is the cabinet's: refused while the car-top inspection switch is on (a mechanic may be on the
    # roof); with it off and the cabinet's EEO switch on, from the bottom landing, it starts, and the page follows
    # the vanes it finds.
    wait_for(lambda: text_of(browser, "phase") in ("standing", "halted") and text_of(browser, "active-faults") ==
             "none", 10, "the car at rest with no fault after the reset")
    said = press(browser, "start-learning")
    assert said.startswith("Refused: the learning run cannot start now: the car-top inspection switch is on"), said
    sim_ctl(control, "key", "eeo", "on")  # (the car-top switch keeps the car until it is turned off)
    sim_ctl(control, "key", "inspection", "off")
    wait_for(lambda: text_of(browser, "mode") == "emergency_electrical" and text_of(browser, "active-faults") ==
             "none", 10, "the page shows the car in emergency electrical operation")
    for _ in range(4):  # (a run interrupted by a reading aged under load is started again, as a crew would)
        said = until_accepted(browser, "start-learning")
        assert said == "Accepted: the learning run started.", said
        going = wait_for(lambda: "interrupted" if text_of(browser, "learning-last").startswith("interrupted") else (
            text_of(browser, "mode") == "learning" and text_of(browser, "learning-found") == "1 of 6"
            and text_of(browser, "learning-state").startswith("running") and position_m(browser) > 0.05), 10,
            "the page shows the car going up in the learning run, from the bottom landing's vane")
        if going != "interrupted":
            break
        wait_for(lambda: text_of(browser, "mode") == "emergency_electrical"
                 and text_of(browser, "active-faults") == "none", 10,
                 "the car back in emergency electrical operation after the interruption")
    assert going is True, "the learning run interrupted every time"
    screenshot(browser, "commissioning")

    records = [json.loads(line) for line in (workdir / "audit.log").read_text().splitlines()]
    asked = [(r["action"], r["details"].get("outcome")) for r in records
             if r["via"] == "service_tool" and r["who"] == "tech"
             and r["action"] in ("learning_run", "brake_test", "fault_reset")]
    outcomes = [f"{action} {outcome}" for action, outcome in asked]
    assert outcomes[0] == "brake_test refused: not_in_inspection", outcomes
    assert outcomes.count("brake_test started") >= 2 and "fault_reset ok" in outcomes, outcomes
    assert ("learning_run", "refused: car_top_inspection") in asked and ("learning_run", "started") in asked
    # How each test ended is the car's own record (via the controller), as for the periodic test.
    ended = [r["details"]["outcome"] for r in records if r["via"] == "controller" and r["action"] == "brake_test"]
    assert "passed" in ended and "slipped" in ended and ended.index("passed") < ended.index("slipped"), ended
    changes = [r["details"]["path"] for r in records if r["action"] == "service_change"]
    assert "/commissioning/brake_test" in changes and "/commissioning/reset_faults" in changes
