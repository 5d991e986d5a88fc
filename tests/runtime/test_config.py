"""The firmware's configuration file: refused with the key named, and `carctl run` exits 2 without a traceback."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carctl.runtime import config as firmware_config
from carctl.runtime.config import FirmwareConfigError, from_dict, load
from tests.refusals import assert_refused

ROOT = Path(__file__).resolve().parent.parent.parent
GOOD = {"drive": {"endpoint": "tcp://127.0.0.1:5020"}, "panel": {"port": "/dev/ttyAMA0"}}

# A `carctl run` started by a test keeps no state in the board's folder (/var/lib/carctl), shared by every run.
NO_BOARD_STATE = 'fault_log = ""\naudit_log = ""\nlatch_file = ""\nlearned_table = ""\n'


@pytest.mark.parametrize("path", ["configs/sim.toml", "configs/board.toml"])
def test_shipped_configs_load(path: str) -> None:
    config = load(ROOT / path)
    assert config.controller.building.landing_count == 6


@pytest.mark.parametrize(("data", "key"), [
    ({"panel": {"port": "/dev/x"}}, "drive"),
    ({"drive": {}, "panel": {"port": "/dev/x"}}, "drive.endpoint"),
    ({"drive": {"endpoint": "modbus://x"}, "panel": {"port": "/dev/x"}}, "drive.endpoint"),
    ({"drive": {"endpoint": "tcp://host:99999"}, "panel": {"port": "/dev/x"}}, "drive.endpoint"),
    ({"drive": {"endpoint": "rtu:"}, "panel": {"port": "/dev/x"}}, "drive.endpoint"),
    ({**GOOD, "drive": {"endpoint": "tcp://10.0.0.2:1", "baud": 12345}}, "drive.baud"),
    ({**GOOD, "drive": {"endpoint": "tcp://10.0.0.2:1", "timeout_s": 3.0}}, "drive.timeout_s"),
    ({**GOOD, "drive": {"endpoint": "tcp://10.0.0.2:1", "timout_s": 0.01}}, "drive.timout_s"),
    ({"drive": {"endpoint": "tcp://10.0.0.2:1"}}, "panel"),
    ({"drive": {"endpoint": "tcp://10.0.0.2:1"}, "panel": {}}, "panel.port"),
    ({**GOOD, "panel": {"port": "/dev/x", "response_timeout_s": 1.0}}, "panel.response_timeout_s"),
    ({**GOOD, "runtime": {"realtime_priority": 120}}, "runtime.realtime_priority"),
    ({**GOOD, "car": {"rated_speed_m_s": -1.0}}, "car.rated_speed_m_s"),
    ({**GOOD, "modbus": {}}, "modbus"),
])
def test_bad_configuration_names_the_key(data: dict, key: str) -> None:
    with pytest.raises(FirmwareConfigError) as error:
        from_dict(data)
    assert error.value.key == key


def carctl_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", "run", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_run_refuses_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[drive]\nendpoint = "serial:/dev/ttyUSB0"\n[panel]\nport = "/dev/ttyAMA0"\n')
    result = carctl_run("--config", str(config))
    assert result.returncode == 2
    assert "drive.endpoint" in result.stderr and "Traceback" not in result.stderr


def test_run_refuses_a_bad_drive_flag_and_a_missing_file(tmp_path: Path) -> None:
    result = carctl_run("--config", str(ROOT / "configs" / "sim.toml"), "--drive", "udp://x:1")
    assert result.returncode == 2 and "--drive" in result.stderr and "Traceback" not in result.stderr
    result = carctl_run("--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_run_with_no_hardware_keeps_running_and_says_why(tmp_path: Path) -> None:
    """A wrong port is not a crash: the loop runs, its inputs stay stale, the supervisor holds the car."""
    log = tmp_path / "log.jsonl"
    config = tmp_path / "nohw.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "{tmp_path / "no-such-tty"}"\n'
                      f'[runtime]\nrealtime_priority = 0\n{NO_BOARD_STATE}log = "{log}"\n')
    result = carctl_run("--config", str(config), "--run-seconds", "1.5")
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    assert "drive_stale" in text and "car_top_stale" in text
    assert '"disconnected"' in text


@pytest.mark.parametrize(("args", "named"), [
    (("--panel", ""), "--panel"),
    (("--drive", "garbage"), "--drive"),
    (("--drive", ""), "--drive"),
    (("--run-seconds", "inf"), "--run-seconds"),
    (("--run-seconds", "nan"), "--run-seconds"),
    (("--run-seconds", "1e308"), "--run-seconds"),
])
def test_run_refuses_bad_options_with_exit_2(args: tuple[str, ...], named: str) -> None:
    assert_refused(carctl_run("--config", str(ROOT / "configs" / "sim.toml"), *args), named)


def test_run_refuses_a_log_in_a_missing_folder_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "log.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[runtime]\nrealtime_priority = 0\n{NO_BOARD_STATE}'
                      f'log = "{tmp_path / "no-such-folder" / "log.jsonl"}"\n')
    assert_refused(carctl_run("--config", str(config), "--run-seconds", "1"), "runtime.log")


@pytest.mark.parametrize(("content", "named"), [
    ("[drive]\nendpoint = 'tcp://10.0.0.2:1'\ntimeout_s = 1e308\n[panel]\nport = '/dev/x'\n", "drive.timeout_s"),
    ("[drive]\nendpoint = 'tcp://10.0.0.2:1'\n[panel]\nport = '/dev/x'\n[runtime]\ncpu = 9223372036854775808\n",
     "runtime.cpu"),
    ("[drive]\nendpoint = 'tcp://10.0.0.2:1'\n[panel]\nport = '/dev/x'\n[face]\nmax_fps = nan\n", "face.max_fps"),
    ("drive = 3\n[panel]\nport = '/dev/x'\n", "drive"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML"),
])
def test_run_refuses_absurd_numbers_and_shapes_in_the_file(tmp_path: Path, content: str, named: str) -> None:
    config = tmp_path / "absurd.toml"
    config.write_text(content)
    assert_refused(carctl_run("--config", str(config)), named)


def test_deployment_doc_gives_every_key_with_its_range() -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    for cls, section in ((firmware_config.DriveSection, "drive"), (firmware_config.PanelSection, "panel"),
                         (firmware_config.RuntimeSection, "runtime"), (firmware_config.ProcessesSection, "processes"),
                         (firmware_config.FaceSection, "face"), (firmware_config.PlatformSection, "platform"),
                         (firmware_config.ServiceSection, "service")):
        for spec in dataclasses.fields(cls):
            rows = [line for line in doc.splitlines() if line.startswith("| ") and f"`{section}.{spec.name}`" in line]
            assert rows, f"{section}.{spec.name} is missing from docs/deployment.md"
            span = getattr(cls, "RANGES", {}).get(spec.name)
            if span is not None:
                assert f"| {span.interval} |" in rows[0], f"{section}.{spec.name}: range {span.interval} not shown"


def test_run_refuses_a_socket_directory_others_can_enter(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    os.chmod(tmp_path / "run", 0o755)
    config = tmp_path / "open.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[processes]\nplatform = true\n[platform]\ncommunity = "xihan"\ncar = "b7u2"\n'
                      f'[runtime]\nrealtime_priority = 0\n{NO_BOARD_STATE}socket_dir = "{tmp_path / "run"}"\n')
    assert_refused(carctl_run("--config", str(config), "--run-seconds", "1"), "runtime.socket_dir")


def test_run_refuses_a_fifo_or_a_device_as_its_configuration_at_once(tmp_path: Path) -> None:
    # A FIFO would block the reader until someone wrote to it; /dev/zero never ends.
    fifo = tmp_path / "board.toml"
    os.mkfifo(fifo)
    assert_refused(carctl_run("--config", str(fifo)), f"{fifo} is not a regular file (a FIFO)")
    assert_refused(carctl_run("--config", "/dev/zero"), "/dev/zero is not a regular file (a device)")


def test_a_configuration_too_large_is_refused_before_it_is_read(tmp_path: Path) -> None:
    large = tmp_path / "large.toml"
    large.write_bytes(b"#" * (firmware_config.MAX_FILE_BYTES + 1))
    with pytest.raises(FirmwareConfigError, match="larger than"):
        load(large)


@pytest.mark.parametrize("key", ["log", "socket_dir", "fault_log"])
def test_a_nul_in_a_path_is_refused_naming_the_key(tmp_path: Path, key: str) -> None:
    # open() would raise ValueError (embedded null byte) where the firmware expects OSError, and the fault log's
    # writer thread would die of it.
    config = tmp_path / "nul.toml"
    config.write_text('[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[runtime]\nrealtime_priority = 0\n{key} = "{tmp_path}/a\\u0000b"\n')
    assert_refused(carctl_run("--config", str(config), "--run-seconds", "1"), f"runtime.{key}: must not contain a NUL")


def test_run_refuses_a_log_that_is_a_fifo_before_starting(tmp_path: Path) -> None:
    fifo = tmp_path / "log.jsonl"
    os.mkfifo(fifo)
    config = tmp_path / "log.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[runtime]\nrealtime_priority = 0\n{NO_BOARD_STATE}log = "{fifo}"\n')
    result = carctl_run("--config", str(config), "--run-seconds", "1")
    assert_refused(result, "runtime.log")
    assert "a FIFO" in result.stderr


@pytest.mark.parametrize(("endpoint", "problem"), [
    ("tcp://a..b:502", "IP address"), ("tcp://nonexistent.invalid:502", "IP address"),
    ("rtu:socket://10.255.255.1:1", "serial device's path"), ("tcp://127.0.0.1:0", "port 1..65535"),
])
def test_the_drive_is_an_ip_address_or_a_device_path(endpoint: str, problem: str) -> None:
    """A name would be looked up, and a pyserial URL connected to, from the control loop at every reconnection
    (the red team measured 5 s of lag for one that did not resolve)."""
    assert_refused(carctl_run("--config", str(ROOT / "configs" / "sim.toml"), "--drive", endpoint), "--drive")
    assert problem in carctl_run("--config", str(ROOT / "configs" / "sim.toml"), "--drive", endpoint).stderr


@pytest.mark.parametrize("port", ["socket://10.255.255.1:1", "ttyAMA0", "/tmp", "README.md"])
def test_the_panel_bus_is_a_serial_device(port: str) -> None:
    assert_refused(carctl_run("--config", str(ROOT / "configs" / "sim.toml"), "--panel", port), "--panel")


def test_the_simulator_configuration_s_placeholder_port_is_refused_without_panel() -> None:
    """configs/sim.toml's panel.port cannot be a real device (a /dev/pts/N could be another program's terminal), and
    both the run and the check say to give --panel."""
    sim = str(ROOT / "configs" / "sim.toml")
    result = carctl_run("--config", sim, "--run-seconds", "1")
    assert_refused(result, "panel.port")
    assert "placeholder" in result.stderr and "--panel" in result.stderr
    check = carctl_run("--config", sim, "--check", "--drive", "tcp://127.0.0.1:9")
    assert check.returncode == 2
    verdict = [line for line in check.stdout.splitlines() if "/dev/null/sim-serve-panel" in line]
    assert verdict and "placeholder, not a port: give --panel" in verdict[0] and "free" not in verdict[0]


PLATFORM_ON = {**GOOD, "processes": {"platform": True}}


@pytest.mark.parametrize("missing", ["community", "car"])
def test_the_platform_link_needs_its_community_and_car_set(missing: str) -> None:
    """Left on their defaults, two cars would publish as carctl/community/car and take each other's commands."""
    platform = {key: value for key, value in {"community": "xihan", "car": "b7u2"}.items() if key != missing}
    with pytest.raises(FirmwareConfigError, match=f"must be set when processes.platform is on") as refused:
        from_dict({**PLATFORM_ON, "platform": platform})
    assert refused.value.key == f"platform.{missing}"
    # Without the link the defaults are never used, and a configuration without them loads as before.
    assert from_dict({**GOOD, "platform": platform}).platform.community == platform.get("community", "community")


def test_the_cars_gallery_is_its_platform_communitys() -> None:
    """The residents the platform enrols go to face.community's gallery, the one the worker recognises from."""
    platform = {"community": "xihan", "car": "b7u2"}
    assert from_dict({**PLATFORM_ON, "platform": platform}).face.community == "xihan"  # left out: the platform's
    assert from_dict({**PLATFORM_ON, "platform": platform, "face": {"community": "xihan"}}).face.community == "xihan"
    with pytest.raises(FirmwareConfigError, match="platform.community is 'xihan'") as refused:
        from_dict({**PLATFORM_ON, "platform": platform, "face": {"community": "dongfang"}})
    assert refused.value.key == "face.community"
    # The face feature on its own (galleries enrolled with `carctl face enroll`) keeps its own community.
    assert from_dict({**GOOD, "processes": {"face": True}, "face": {"community": "dongfang"}}).face.community == \
        "dongfang"


def test_run_refuses_a_platform_link_left_on_the_default_names(tmp_path: Path) -> None:
    config = tmp_path / "car.toml"
    config.write_text('[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      '[processes]\nplatform = true\n[platform]\ncar = "b7u2"\n')
    assert_refused(carctl_run("--config", str(config), "--run-seconds", "1"), "platform.community")


def test_the_broker_account_defaults_to_the_naming_convention() -> None:
    base = {"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"},
            "processes": {"platform": True}, "platform": {"community": "xihan", "car": "b7u2"}}
    assert from_dict(base).platform.username == "xihan-b7u2"
    named = {**base, "platform": {**base["platform"], "username": "lab-car"}}
    assert from_dict(named).platform.username == "lab-car"


def test_the_alarm_modem_needs_a_port_of_its_own_and_numbers_that_are_numbers() -> None:
    base = {"drive": {"endpoint": "rtu:/dev/ttyUSB0"}, "panel": {"port": "/dev/ttyAMA0"}, "processes": {"modem": True}}
    for alarm, key, why in (({"numbers": ["110"], "modem_port": "/dev/ttyAMA0"}, "alarm.modem_port", "panel.port"),
                            ({"numbers": ["110"], "modem_port": "/dev/ttyUSB0"}, "alarm.modem_port", "drive.endpoint"),
                            ({"numbers": ["110"], "modem_port": "/dev/tty\nUSB1"}, "alarm.modem_port", "control"),
                            ({"numbers": ["**21*999#"]}, "alarm.numbers", "digits"),
                            ({"numbers": []}, "alarm.numbers", "at least one"),
                            ({"numbers": ["110"], "test_every_h": 100.0}, "alarm.test_every_h", "")):
        with pytest.raises(FirmwareConfigError) as refused:
            from_dict({**base, "alarm": alarm})
        assert refused.value.key == key and why in refused.value.message, alarm
    assert from_dict({**base, "alarm": {"numbers": ["110", "+8653280001111"]}}).alarm.numbers[1] == "+8653280001111"
