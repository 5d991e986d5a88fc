"""The carctl command, run as a person runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.refusals import assert_refused

TRACE_KEYS = {"t_s", "position_m", "speed_m_s", "door", "door_open_fraction", "drive_run", "load_kg", "passengers",
              "mode", "faults"}


def carctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", *args], capture_output=True, text=True, timeout=300)


def test_sim_writes_report_and_trace(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    trace_path = tmp_path / "trace.jsonl"
    result = carctl("sim", "--duration", "600", "--seed", "4", "--json", str(report_path), "--trace",
                    str(trace_path), "--trace-every", "10")
    assert result.returncode == 0, result.stderr
    assert "waiting time" in result.stdout and "safety violations" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["seed"] == 4 and report["safety_violations"] == 0
    records = [json.loads(line) for line in trace_path.read_text().splitlines()]
    assert TRACE_KEYS <= set(records[0])
    assert records[1]["t_s"] == pytest.approx(0.2)
    assert {record["door"] for record in records} <= {"closed", "opening", "open", "closing"}
    assert records[-1]["t_s"] >= 599.0


BRAKE_SCENARIO = """
[building]
landings_m = [0.0, 2.9, 5.8, 8.7, 11.6, 14.5]
population = [0, 5, 5, 5, 5, 5]

[car]
brake_contacts = 2

[traffic]
pattern = "residential"
duration_s = 300
seed = 1
"""


def test_sim_says_when_a_latched_fault_left_passengers_waiting(tmp_path: Path) -> None:
    # Contacts configured on the car but not fitted on the simulated drive: the first run latches brake_not_lifted.
    scenario = tmp_path / "contacts.toml"
    scenario.write_text(BRAKE_SCENARIO)
    result = carctl("sim", "--scenario", str(scenario), "--quiet")
    assert result.returncode == 0, result.stderr  # a fault the car reacted to is not a safety violation
    assert "faults active at the end" in result.stdout and "brake_not_lifted" in result.stdout
    assert "passengers were not served" in result.stdout
    scenario.write_text(BRAKE_SCENARIO + "\n[physics]\nbrake_contacts = 2\n")
    result = carctl("sim", "--scenario", str(scenario), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stdout and "faults raised                          0" in result.stdout


def test_sim_plot_is_a_png(tmp_path: Path) -> None:
    plot = tmp_path / "run.png"
    result = carctl("sim", "--duration", "300", "--plot", str(plot), "--quiet")
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shipped_scenario_runs(tmp_path: Path) -> None:
    scenario = Path(__file__).parent.parent / "sim" / "scenarios" / "faults_and_obstructions.toml"
    report_path = tmp_path / "report.json"
    result = carctl("sim", "--scenario", str(scenario), "--json", str(report_path), "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    kinds = {fault["kind"] for fault in report["faults"]}
    assert {"drive_fault", "overload"} <= kinds
    assert report["passengers_served"] == report["passengers_generated"]


@pytest.mark.parametrize(("content", "key"), [
    ("[car]\nrated_speed_m_s = -1.0\n", "car.rated_speed_m_s"),
    ("[building]\nlandings_m = [0.0, 3.0, 2.5]\n", "building.landings_m"),
    ("[car]\njerk_m_s3 = 0\n", "car.jerk_m_s3"),
    ("[car]\ncapacity_persons = 0\n", "car.capacity_persons"),
    ("[[events]]\nt_s = 1.0\ntype = \"car_call\"\nlanding = 12\n", "events[0].landing"),
    ("[car\n", "not valid TOML"),
])
def test_bad_scenario_exits_2_naming_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    result = carctl("sim", "--scenario", str(path))
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_option_exits_2() -> None:
    result = carctl("sim", "--trace-every", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = carctl("sim", "--duration", "abc")
    assert result.returncode == 2 and "Traceback" not in result.stderr


# -- every bad input: exit 2, one line naming the key or option, no traceback ------------------------------------


@pytest.mark.parametrize(("content", "key"), [
    ("[car]\npark_delay_s = 1e308\n", "car.park_delay_s"),
    ("[car]\ncontrol_period_s = 1e-300\n", "car.control_period_s"),
    ("[traffic]\nrate_pct_per_5min = 1e300\n", "traffic.rate_pct_per_5min"),
    ("[car]\ndoor_retries = 9223372036854775808\n", "car.door_retries"),
    ('[[events]]\nt_s = 1.0\ntype = "car_call"\nlanding = 1\n[[events]]\nt_s = 1e308\ntype = "car_call"\n'
     "landing = 2\n", "events[1].t_s"),
    ("[car]\nrated_speed_m_s = nan\n", "car.rated_speed_m_s"),
    ("[physics]\ncar_mass_kg = inf\n", "physics.car_mass_kg"),
    ("[traffic]\nseed = -1\n", "traffic.seed"),
    ("[building]\nlandings_m = [0.0, 2.9, 1e308]\n", "building.landings_m"),
    ("[car]\nrated_speed_m_s = " + "9" * 5000 + "\n", "not valid TOML"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML"),
])
def test_absurd_scenario_values_exit_2_naming_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "absurd.toml"
    path.write_text(content)
    assert_refused(carctl("sim", "--scenario", str(path), "--quiet"), key)


@pytest.mark.parametrize(("option", "value"), [
    ("--duration", "inf"), ("--duration", "nan"), ("--duration", "1e308"), ("--duration", "-5"),
    ("--seed", "-1"), ("--seed", str(2**63)),
])
def test_absurd_options_exit_2_naming_the_option(option: str, value: str) -> None:
    assert_refused(carctl("sim", option, value, "--quiet"), option)


@pytest.mark.parametrize("option", ["--json", "--trace", "--plot"])
def test_an_output_into_a_missing_folder_is_refused_before_the_run(tmp_path: Path, option: str) -> None:
    # A day's run would take seconds: refused before it starts, so no progress line is ever printed.
    result = carctl("sim", "--duration", "86400", option, str(tmp_path / "no-such-folder" / "out.png"))
    assert_refused(result, option)
    assert "simulating" not in result.stderr and "does not exist" in result.stderr


def test_a_plot_that_is_not_a_png_is_refused_before_the_run(tmp_path: Path) -> None:
    assert_refused(carctl("sim", "--duration", "86400", "--plot", str(tmp_path / "plot.txt")), "--plot")


def write_log(path: Path, records: list[object]) -> Path:
    path.write_text(json.dumps({"version": 1, "records": records}))
    return path


GOOD_RECORD = {"t": 1712345678.5, "tick": 10, "event": "raised", "fault": "drive_fault", "code": 21, "level": 4,
               "mode": "normal", "phase": "running", "landing": 2, "position_m": 5.1, "speed_m_s": 0.9,
               "load_kg": 75.0, "door": "closed"}


@pytest.mark.parametrize(("bad", "key"), [
    ({"t": [1]}, "records[1].t"), ({"fault": 3}, "records[1].fault"), ({"code": "21"}, "records[1].code"),
    ({"level": True}, "records[1].level"), ({"mode": "\x1b[2J"}, "records[1].mode"), ({"t": 1e300}, "records[1].t"),
])
def test_faults_shows_the_good_records_and_refuses_the_bad_ones(tmp_path: Path, bad: dict, key: str) -> None:
    log = write_log(tmp_path / "faults.json", [GOOD_RECORD, {**GOOD_RECORD, **bad}, GOOD_RECORD])
    result = carctl("faults", "--log", str(log))
    assert_refused(result, key)
    assert "1 malformed record" in result.stderr
    assert result.stdout.count("drive_fault") == 2  # the two good records are shown


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000, "nested"),
    (b'{"version": 1, "records": 7}', "not a carctl fault log"),
    (b"NaN", "not a number JSON allows"),
])
def test_faults_refuses_a_file_that_is_not_a_log(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "faults.json"
    path.write_bytes(content)
    assert_refused(carctl("faults", "--log", str(path)), problem)


def test_faults_refuses_a_folder_or_a_device() -> None:
    assert_refused(carctl("faults", "--log", "/dev/zero"), "not a regular file")


# -- files named from outside: a FIFO or a device is refused at once, never waited on ------------------------------

@pytest.mark.parametrize("option", ["--json", "--trace", "--plot"])
def test_an_output_that_is_a_fifo_is_refused_before_the_run(tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    result = carctl("sim", "--duration", "86400", option, str(fifo))
    assert_refused(result, f"{option} {fifo} is not a regular file (a FIFO)")
    assert "simulating" not in result.stderr


def test_a_trace_to_a_device_is_refused_naming_it() -> None:
    assert_refused(carctl("sim", "--duration", "86400", "--trace", "/dev/full"), "--trace /dev/full")


def test_a_trace_that_fills_the_disk_names_the_option_and_the_file(tmp_path: Path) -> None:
    import resource

    trace = tmp_path / "trace.jsonl"

    def small_files() -> None:  # as a full disk: a write past 64 KiB fails (EFBIG instead of ENOSPC)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))

    result = subprocess.run([sys.executable, "-m", "carctl.cli", "sim", "--duration", "600", "--quiet", "--trace",
                             str(trace)], capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert_refused(result, f"--trace {trace}: File too large")


def test_a_scenario_that_is_a_fifo_or_a_device_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.toml"
    os.mkfifo(fifo)
    assert_refused(carctl("sim", "--scenario", str(fifo)), f"{fifo} is not a regular file (a FIFO)")
    assert_refused(carctl("sim", "--scenario", "/dev/zero"), "/dev/zero is not a regular file (a device)")


@pytest.mark.parametrize(("content", "key"), [
    ('[traffic]\npattern = "up\\u0000peak"\n', "traffic.pattern"),
    ('[[events]]\nt_s = 1.0\ntype = "car_call\\u0000"\nlanding = 1\n', "events[0].type"),
])
def test_a_nul_in_a_scenario_string_is_refused_naming_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "nul.toml"
    path.write_text(content)
    assert_refused(carctl("sim", "--scenario", str(path)), f"{key}: must not contain a NUL")


def test_a_file_name_the_terminal_cannot_encode_is_printed_escaped(tmp_path: Path) -> None:
    plot = os.path.join(os.fsencode(tmp_path), b"\xff.png")
    result = subprocess.run([sys.executable, "-m", "carctl.cli", "sim", "--duration", "300", "--quiet", "--plot",
                             plot], capture_output=True, timeout=300,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert result.returncode == 0, result.stderr
    assert b"plot written to " in result.stdout and b"\\udcff.png" in result.stdout
    assert os.path.exists(plot)


def test_faults_into_a_reader_that_stops_ends_quietly(tmp_path: Path) -> None:
    log = write_log(tmp_path / "faults.json", [GOOD_RECORD] * 2000)
    command = f"{sys.executable} -m carctl.cli faults --log {log} --last 2000 | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.stdout.count("drive_fault") == 1
    assert result.stderr == ""  # no BrokenPipeError, no traceback
    assert result.returncode == 141  # as any command stopped by its reader


def test_faults_reads_the_log_the_configuration_names(tmp_path: Path) -> None:
    log = write_log(tmp_path / "faults.json", [GOOD_RECORD])
    config = tmp_path / "board.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:5020"\n[panel]\nport = "/dev/ttyAMA0"\n'
                      f'[runtime]\nfault_log = "{log}"\n')
    result = carctl("faults", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("drive_fault") == 1
    config.write_text(config.read_text().replace(str(log), ""))
    assert_refused(carctl("faults", "--config", str(config)), "runtime.fault_log is empty")
    assert_refused(carctl("faults", "--config", str(tmp_path / "none.toml")), "none.toml")
    assert_refused(carctl("faults", "--config", str(config), "--log", str(log)), "not allowed with")


def test_faults_names_the_drive_s_own_code(tmp_path: Path) -> None:
    log = write_log(tmp_path / "faults.json", [{**GOOD_RECORD, "drive_code": 49}, {**GOOD_RECORD, "drive_code": 7}])
    result = carctl("faults", "--log", str(log))
    assert result.returncode == 0, result.stderr
    assert "drive code 49 (0x31, comm loss)" in result.stdout and "drive code 7 (0x07)" in result.stdout


def test_faults_help_shows_the_default_log() -> None:
    result = carctl("faults", "--help")
    assert result.returncode == 0 and "/var/lib/carctl/faults.json" in result.stdout


def test_the_readme_names_every_file_make_demo_writes() -> None:
    root = Path(__file__).parent.parent
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    written = {word for word in recipe.split() if word.startswith("out/")}
    readme = (root / "README.md").read_text(encoding="utf-8")
    demo = readme.split("make demo", 1)[1].split("make test", 1)[0]
    assert written == {"out/demo-report.json", "out/demo.png"}
    assert all(path in demo for path in written)


def test_an_output_that_cannot_be_written_is_one_line_not_a_traceback() -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "carctl.cli", "sim", "--duration", "60", "--quiet"],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert_refused(result, "the output cannot be written")
