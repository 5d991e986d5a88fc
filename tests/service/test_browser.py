"""The service tool as a technician uses it: the real firmware (`carctl run`, its process table starting the service
tool) against the simulated shaft (`python -m sim serve`), and the page in a real headless Chromium (Debian's
chromium and chromium-driver, driven by selenium). Log in; press a car call with `sim ctl` and watch the car move on
the page; inject a fault and see it appear, on the live page and in the fault log; a change without its CSRF token
refused; a wrong password refused, and locked out after repeats.

With CARCTL_SCREENSHOTS=1 the test saves its screenshots into docs/service-tool/ (docs/service-tool.md shows them);
without it nothing in the tree changes. Skipped, with the reason, where chromium or chromedriver is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.service import accounts
from hil_tests.wire import bench_config_text, start_firmware, start_simulator

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "docs" / "service-tool"
PASSWORD = "correct horse battery"
LOCKOUT_FAILURES = 3
# A phone held in a machine room: the page must be usable at this size.
PHONE = (412, 915)

# Every browser test: slow, and skipped with the reason where the browser is not installed.
BROWSER_TEST = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver; "
                              ".ci/run installs them)"),
]
pytestmark = BROWSER_TEST


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def firmware_config(workdir: Path, port: int) -> Path:
    """configs/sim.toml (the bench car) with the service tool on, a fault log, and the side channels' directory."""
    text = bench_config_text()
    text = text.replace("[runtime]\n", f'[runtime]\nsocket_dir = "{workdir / "run"}"\n', 1)
    text = text.replace('fault_log = ""', f'fault_log = "{workdir / "faults.json"}"', 1)
    text = text.replace("modem = false\n", "modem = false\nservice = true\n", 1)
    text += (f'\n[service]\nlisten = "127.0.0.1:{port}"\nusers_file = "{workdir / "users.json"}"\n'
             f"lockout_failures = {LOCKOUT_FAILURES}\nlockout_s = 60.0\n")
    path = workdir / "firmware.toml"
    path.write_text(text)
    return path


def sim_ctl(control: str, *words: str) -> None:
    done = subprocess.run([sys.executable, "-m", "sim", "ctl", "--control", control, *words], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr


def wait_for(condition: Callable[[], Any], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture()
def car_with_service(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(the page's URL, the simulator's control address, the work folder) with the firmware and the shaft running."""
    with running_car_with_service(tmp_path) as running:
        yield running


@contextlib.contextmanager
def running_car_with_service(tmp_path: Path, service_keys: str = "", scheme: str = "http",
                             answers: Callable[[str], bool] = answers,
                             edit: Callable[[str], str] = lambda text: text) -> Iterator[tuple[str, str, Path]]:
    """car_with_service's firmware and shaft, with ``service_keys`` (TOML lines) added to the [service] table, then
    the configuration's text changed by ``edit``."""
    accounts.add_user(tmp_path / "users.json", "tech", "maintenance", PASSWORD)
    port = free_port()
    simulator, endpoints = start_simulator(tmp_path)
    config = firmware_config(tmp_path, port)
    config.write_text(edit(config.read_text() + service_keys))  # [service] is the file's last table
    firmware = start_firmware(tmp_path, f"tcp://{endpoints['modbus_tcp']}", endpoints["panel"], config)
    url = f"{scheme}://127.0.0.1:{port}/"
    try:
        wait_for(lambda: answers(url + "login"), 20, "the process table started the service tool")
        yield url, endpoints["control"], tmp_path
    finally:
        for process in (firmware, simulator):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()


def start_chromium(*extra: str) -> Any:
    """Headless Chromium at a phone's size through chromedriver, with ``extra`` command-line arguments."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={PHONE[0]},{PHONE[1]}", "--disable-extensions", "--no-first-run", *extra):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture()
def browser() -> Iterator[Any]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str) -> None:
    if os.environ.get("CARCTL_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def service_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def log_in(driver: Any, url: str, user: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "login")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()


def test_a_technician_watches_the_car_sees_a_fault_and_is_locked_out_after_wrong_passwords(
        car_with_service: tuple[str, str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    url, control, workdir = car_with_service
    browser.get(url + "login")
    assert browser.find_element(By.ID, "no-tls").is_displayed(), "without TLS the page says so"
    screenshot(browser, "login")

    log_in(browser, url, "tech", PASSWORD)
    wait_for(lambda: browser.current_url == url, 10, "the live page after the login")
    wait_for(lambda: text_of(browser, "phase") == "standing", 20, "the page shows the car standing")
    assert not browser.find_element(By.ID, "stale").is_displayed()
    # At least 5 updates a second reach the page (the loop sends 10).
    updates = browser.execute_async_script(
        "const done = arguments[0]; let count = 0; const stream = new EventSource('/live/stream');"
        "stream.onmessage = () => { count += 1; };"
        "setTimeout(() => { stream.close(); done(count); }, 2000);")
    assert updates >= 10, f"{updates} updates in 2 s"

    # A car call pressed at the car's panel (the simulator's buttons): the page shows the lamp, then the car moving.
    sim_ctl(control, "car-call", "4")
    wait_for(lambda: "lit" in (browser.find_element(By.ID, "car-call-4").get_attribute("class") or ""), 5,
             "the car-call lamp of landing 4 lit on the page")
    wait_for(lambda: text_of(browser, "direction") == "up", 15, "the page shows the car going up")
    start = browser.find_element(By.ID, "car").get_attribute("transform")
    wait_for(lambda: float(text_of(browser, "position").split()[0]) > 2.0, 15, "the page shows the car above 2 m")
    assert browser.find_element(By.ID, "car").get_attribute("transform") != start, "the drawing moved"
    screenshot(browser, "live")
    wait_for(lambda: text_of(browser, "door").startswith("open"), 30, "the doors open at landing 4")

    # A fault injected in the shaft appears on the page, with its meaning in the fault log.
    sim_ctl(control, "inject", "overload")
    wait_for(lambda: "overload" in text_of(browser, "faults"), 10, "the overload fault on the live page")
    browser.get(url + "faults")
    wait_for(lambda: "overload" in text_of(browser, "fault-log"), 10, "the overload in the fault log")
    assert "rated" in text_of(browser, "fault-log"), "its meaning, from docs/faults.md"
    screenshot(browser, "faults")
    sim_ctl(control, "clear", "overload")

    # A change without the session's CSRF token is refused: a POST from a script on the page, without the token.
    status = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('/logout', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},"
        " body: 'csrf_token=forged'}).then(r => done(r.status));")
    assert status == 403
    browser.get(url)
    assert browser.current_url == url, "still logged in: the forged logout changed nothing"

    # Log out properly, then a wrong password: refused, and locked out after repeats.
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_for(lambda: browser.current_url == url + "login", 10, "logged out")
    for _ in range(LOCKOUT_FAILURES):
        log_in(browser, url, "tech", "not the password")
        assert "Wrong user name or password." in text_of(browser, "login-error")
    log_in(browser, url, "tech", PASSWORD)
    assert "Too many failed logins" in text_of(browser, "login-error")
    assert browser.current_url == url + "login"

    audit = [json.loads(line) for line in (workdir / "firmware.log").read_text().splitlines()
             if '"kind": "audit"' in line]
    # The service process's memory after all that (docs/service-tool.md gives the figure): well within a board's.
    started = [json.loads(line) for line in (workdir / "firmware.log").read_text().splitlines()
               if '"name": "service"' in line and '"state": "started"' in line]
    rss_kib = service_rss_kib(started[-1]["pid"])
    print(f"service tool RSS: {rss_kib / 1024:.1f} MiB")
    assert rss_kib < 120 * 1024
    logins = [record["outcome"] for record in audit if record["action"] == "login"]
    assert logins.count("ok") == 1 and "refused: locked out" in logins
    assert any(record["outcome"] == "refused: no valid CSRF token" for record in audit)


def test_a_service_run_by_hand_beside_carctl_run_sees_the_car(car_with_service: tuple[str, str, Path]) -> None:
    """`carctl service --config FILE --listen 127.0.0.1:0` beside the running firmware (and the service its process
    table started): one JSON line with its url, and the loop's live state on it."""
    from tests.service.test_http import Browser, start_service, stop

    _, control, workdir = car_with_service
    process, url = start_service(workdir, "--config", str(workdir / "firmware.toml"), "--listen", "127.0.0.1:0")
    try:
        parsed = urllib.parse.urlsplit(url)
        assert url.startswith("http://127.0.0.1:") and parsed.port not in (None, 0)
        browser = Browser(parsed.hostname or "", parsed.port or 0)
        assert browser.log_in("tech", PASSWORD)[0] == 303

        def live() -> dict[str, Any] | None:
            snapshot = json.loads(browser.request("GET", "/live.json")[2])
            return None if snapshot["stale"] else snapshot["live"]

        first = wait_for(live, 10, "the loop's live state on the second service")
        sim_ctl(control, "car-call", "3")
        wait_for(lambda: (live() or {}).get("car_calls") == [3] or (live() or {}).get("position_m", 0) > 1.0, 10,
                 "the car call seen by the second service")
        assert first["mode"] == "normal"
    finally:
        stop(process)
