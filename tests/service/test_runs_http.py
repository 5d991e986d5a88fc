"""The Run recorder page over real HTTP: `carctl service` in its own process, and a stand-in for the loop's side in
this one (the real ServiceFeed and RunRecorder, fed by hand with rides): every role sees the runs newest first and
a run's curves as SVG; a bad run number is a 400 with a sentence; a run the car no longer keeps, or no loop, is
said so on the page."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from carctl.core.signals import Commands, Inputs
from carctl.core.state import ControllerState
from carctl.protocol.run_records import MAX_RUNS
from carctl.runtime.service_feed import ServiceFeed
from carctl.runtime.sidechannel import prepare_socket_dir
from carctl.service import accounts
from carctl.service.feed import STALE_AFTER_S
from tests.runtime.test_run_recorder import PERIOD_S, Car
from tests.service.test_http import PASSWORD, Browser, start_service, stop, write_config


class LoopStandIn:
    """The loop's side of the side channel, cycling in a thread at the control period, with a recorder that holds
    the rides made before it started."""

    def __init__(self, directory: Path, car: Car) -> None:
        self.feed = ServiceFeed(directory, PERIOD_S, recorder=car.recorder)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(PERIOD_S):
            self.feed.after_cycle(ControllerState(), Inputs(tick=1), Commands(), (), 0.1, lambda: {"tick": 1})

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.thread.join(timeout=5)
        self.feed.close()


@pytest.fixture()
def browser_and_loop(tmp_path: Path) -> Iterator[tuple[Browser, LoopStandIn]]:
    accounts.add_user(tmp_path / "users.json", "reader", "read", PASSWORD)
    car = Car()
    for number in range(MAX_RUNS + 5):  # five more than the ring keeps: runs 0-4 are gone
        car.ride(to_landing=1 + number % 5, level_off_mm=number % 7 - 3)
    loop = LoopStandIn(prepare_socket_dir(tmp_path / "run"), car)
    process, url = start_service(tmp_path, "--config", str(write_config(tmp_path)), "--listen", "127.0.0.1:0")
    parsed = urllib.parse.urlsplit(url)
    try:
        yield Browser(parsed.hostname or "", parsed.port or 0), loop
    finally:
        stop(process)
        loop.stop()


def test_every_role_sees_the_runs_newest_first_and_a_runs_curves(browser_and_loop: tuple[Browser, LoopStandIn]
                                                                  ) -> None:
    browser, loop = browser_and_loop
    status, headers, _ = browser.request("GET", "/runs")
    assert status == 303 and headers["location"] == "/login"
    assert browser.log_in("reader", PASSWORD)[0] == 303
    # The service has just started: the page is asked for once it has heard from the loop, as a technician's would
    # be (before that, it says the loop does not answer: the last lines of this test).
    deadline = time.monotonic() + 10
    while json.loads(browser.request("GET", "/live.json")[2])["stale"]:
        assert time.monotonic() < deadline, "the service never heard from the stand-in loop"
        time.sleep(0.05)
    status, _, page = browser.request("GET", "/runs")
    assert status == 200, page[:500]
    assert '<a href="/runs">Runs</a>' in page, "in the navigation"
    listed = [int(number) for number in re.findall(r'id="run-(\d+)"', page)]
    assert listed == list(range(MAX_RUNS + 4, 4, -1)), "the ring's 50, newest first"
    shown = re.search(r'<section class="run-shown" id="run-shown">(.*?)</section>', page, re.S)
    assert shown is not None and "Run 54" in shown.group(1)
    for plot in ("plot-position", "plot-speed", "plot-door"):
        svg = re.search(rf'<svg id="{plot}"[^>]*>(.*?)</svg>', page, re.S)
        assert svg is not None, plot
        points = re.search(r'<polyline class="curve [a-z]+" points="([^"]+)"', svg.group(1))
        assert points is not None and len(points.group(1).split()) >= 81, f"{plot}: every sample drawn"
    assert "landing 5" in page, "the landings the run passed, on the position plot"

    status, _, page = browser.request("GET", "/runs?run=7")
    assert status == 200 and "Run 7: 2 → 3" in page and "levelling -3 mm" in page
    assert "doors opened" in page

    status, _, page = browser.request("GET", "/runs?run=2")
    assert status == 200 and "Run 2 is no longer kept" in page

    for bad in ("abc", "-1", "1e3", "99999999999", "%EF%BC%91"):  # the last: a full-width digit one
        status, _, page = browser.request("GET", f"/runs?run={bad}")
        assert status == 400 and "run must be a run&#39;s number" in page, bad
        assert 'id="plot-position"' in page, "the newest run is shown anyway"

    loop.stop()  # the loop goes quiet: the page says so instead of showing old runs as if fresh
    time.sleep(STALE_AFTER_S + 0.2)
    status, _, page = browser.request("GET", "/runs")
    assert status == 200 and "No answer from the control loop" in page
