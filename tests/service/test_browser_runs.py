"""The Run recorder page as a technician uses it (docs/service-tool.md): the real firmware (`carctl run`, its process
table starting the service tool) against the simulated shaft (`python -m sim serve`), the page in a real headless
Chromium at a phone's size. A car call pressed with `sim ctl`, the run, and the page shows it newest first with its
position, speed and door curves.

With CARCTL_SCREENSHOTS=1 the test saves docs/service-tool/runs.png. Skipped, with the reason, where chromium or
chromedriver is missing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.service.test_browser import BROWSER_TEST, PASSWORD, browser, car_with_service, log_in, screenshot, sim_ctl, \
    text_of, wait_for

pytestmark = BROWSER_TEST

__all__ = ["browser", "car_with_service"]  # the fixtures, from test_browser


def test_a_run_to_landing_3_is_on_the_run_recorder_page_with_its_curves(
        car_with_service: tuple[str, str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    url, control, _ = car_with_service
    log_in(browser, url, "tech", PASSWORD)
    wait_for(lambda: browser.current_url == url, 10, "the live page after the login")
    wait_for(lambda: text_of(browser, "phase") == "standing", 20, "the car standing")
    browser.get(url + "runs")
    before = re.findall(r'id="run-(\d+)"', browser.page_source)

    browser.get(url)
    sim_ctl(control, "car-call", "3")
    wait_for(lambda: text_of(browser, "direction") == "up", 15, "the car going up")
    wait_for(lambda: text_of(browser, "door").startswith("open") and
             float(text_of(browser, "position").split()[0]) > 8.6, 40, "the doors opening at landing 3")

    # The run ends when the doors are open: then it is on the page, newest first. (On a loaded machine the drive's
    # status can go stale on the way: the car halts, and that run is listed as halted by drive_stale, ending at
    # landing 3 if the car stood there, else followed by the recovery run to it.)
    browser.find_element(By.LINK_TEXT, "Runs").click()

    def run_to_3_listed() -> Any:
        for row in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr"):
            if "→ 3" in row.text:
                return row.find_element(By.CSS_SELECTOR, "a")
        browser.refresh()
        return None

    wait_for(run_to_3_listed, 10, "the run to landing 3 listed").click()
    listed = [int(number) for number in re.findall(r'id="run-(\d+)"', browser.page_source)]
    assert listed == sorted(listed, reverse=True) and len(listed) > len(before), "newest first"
    summary = text_of(browser, "run-summary")
    assert "levelling" in summary and ("doors opened" in summary or "drive_stale" in summary), summary
    assert "→ 3" in browser.find_element(By.CSS_SELECTOR, "#run-shown h2").text
    for plot in ("plot-position", "plot-speed", "plot-door"):
        element = browser.find_element(By.ID, plot)
        assert element.is_displayed() and element.size["width"] > 300, f"{plot} across a phone's width"
        points = element.find_element(By.CSS_SELECTOR, "polyline").get_attribute("points") or ""
        assert len(points.split()) > 50, f"{plot}: the run's samples drawn"
    page_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert page_width <= browser.execute_script("return window.innerWidth"), "no sideways scrolling on a phone"
    screenshot(browser, "runs")
