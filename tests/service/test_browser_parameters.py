"""The Parameters page as a technician uses it (docs/service-tool.md): the real firmware (`carctl run`, its process
table starting the service tool) against the simulated shaft (`python -m sim serve`), the page in a real headless
Chromium. A maintenance account opens Parameters, moves the home landing, and the car parks there once it has stood
idle for car.park_delay_s (shortened to 5 s here from configs/sim.toml's 30 s default); a landing the building does
not have is refused with the loop's own sentence.

With CARCTL_SCREENSHOTS=1 the test saves docs/service-tool/parameters.png. Skipped, with the reason, where chromium
or chromedriver is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.runtime import overrides
from tests.service.test_browser import BROWSER_TEST, PASSWORD, browser, log_in, running_car_with_service, screenshot, \
    text_of, wait_for

pytestmark = BROWSER_TEST
PARK_DELAY_S = 5.0
LANDING_3_M = 8.7  # configs/sim.toml's building.landings_m

__all__ = ["browser"]  # the fixture, from test_browser


@pytest.fixture()
def car_with_parameters(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(the page's URL, the work folder): the bench car with the service tool on, a settings file of its own and a
    short parking delay."""
    def edit(text: str) -> str:
        text = text.replace("[car]\n", f"[car]\npark_delay_s = {PARK_DELAY_S}\n", 1)
        return text + f'\n[platform]\noverrides_path = "{tmp_path / "overrides.json"}"\n'

    with running_car_with_service(tmp_path, edit=edit) as (url, _, workdir):
        yield url, workdir


def position_m(driver: Any) -> float:
    """The car's position on the live page (NaN until its first update)."""
    try:
        return float(text_of(driver, "position").split()[0])
    except (ValueError, IndexError):
        return float("nan")


def test_a_technician_moves_the_home_landing_and_the_car_parks_there(
        car_with_parameters: tuple[str, Path], browser: Any) -> None:  # noqa: F811 - the fixture, imported
    from selenium.webdriver.common.by import By

    url, workdir = car_with_parameters
    log_in(browser, url, "tech", PASSWORD)
    wait_for(lambda: browser.current_url == url, 10, "the live page after the login")
    wait_for(lambda: text_of(browser, "phase") == "standing", 20, "the page shows the car standing")
    wait_for(lambda: position_m(browser) < 0.1, 5, "the bench car at landing 0, its home landing")

    browser.find_element(By.LINK_TEXT, "Parameters").click()
    wait_for(lambda: browser.current_url == url + "parameters", 10, "the Parameters page")
    assert "where an idle car parks" in text_of(browser, "key-car.home_landing")
    assert "[0, 86400] s" in text_of(browser, "key-car.park_delay_s")

    # A landing the building does not have: the loop's own sentence, and nothing written.
    field = browser.find_element(By.ID, "home_landing")
    field.clear()
    field.send_keys("9")
    browser.find_element(By.ID, "save-parameters").click()
    wait_for(lambda: "must be a landing index 0..5 (got 9)" in text_of(browser, "parameters-error"), 10,
             "the bad value's sentence on the page")
    assert not (workdir / "overrides.json").exists()

    field = browser.find_element(By.ID, "home_landing")
    field.clear()
    field.send_keys("3")
    browser.find_element(By.ID, "save-parameters").click()
    wait_for(lambda: browser.current_url == url + "parameters?saved=1", 10, "saved")
    assert "3" in text_of(browser, "key-car.home_landing")
    assert overrides.read(workdir / "overrides.json")["home_landing"] == 3
    screenshot(browser, "parameters")

    # The car, idle at landing 0, leaves for its new home after the parking delay and stands there.
    browser.get(url)
    wait_for(lambda: abs(position_m(browser) - LANDING_3_M) < 0.02 and text_of(browser, "phase") == "standing",
             PARK_DELAY_S + 30, "the car parked at landing 3")

    log = [json.loads(line) for line in (workdir / "firmware.log").read_text().splitlines() if line.startswith("{")]
    audit = [record for record in log if record.get("kind") == "audit" and record.get("action") == "/parameters"]
    outcomes = [record["outcome"] for record in audit]
    assert "ok" in outcomes and any(o.startswith("refused: car.home_landing: must be a landing index") for o in outcomes)
