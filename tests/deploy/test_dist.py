"""The offline bundle (make dist) built for this machine, installed by its install script with no network.

The bundle is built from PyPI for this machine's Python and type (the board's is aarch64; the steps are the same),
then installed into a temporary root with --no-system (no user, no systemd) and pip kept off the network, as on a
board without one. Needs PyPI for the build, as `make test` does.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.refusals import assert_refused

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def offline_env() -> dict[str, str]:
    # No pip configuration of this machine (its local indexes), and a proxy that refuses: any network use fails.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="")
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError as error:
        pytest.skip(f"PyPI cannot be reached to build the bundle: {error}")
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, str(ROOT / "tools" / "build_dist.py"), "--out", str(out), "--python",
                            PYTHON, "--arch", platform.machine()], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    archive = Path(build.stdout.strip())
    assert archive.parent == out and archive.name == "carctl-0.1.0-board.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out / "carctl-0.1.0-board"


def install(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bundle / "install.sh"), *args], capture_output=True, text=True, timeout=300,
                          env=offline_env())


@pytest.mark.slow
def test_the_bundle_holds_only_what_the_board_runs(bundle: Path) -> None:
    wheels = sorted(p.name.split("-")[0].lower() for p in (bundle / "wheels").glob("*.whl"))
    # cryptography (with cffi and pycparser): the platform link carries out the face commands on the gallery.
    # Starlette, uvicorn and Jinja2 with what they pull in: the service tool (docs/service-tool.md).
    assert wheels == ["anyio", "carctl", "cffi", "click", "cryptography", "h11", "idna", "jinja2", "markupsafe",
                      "paho_mqtt", "pycparser", "pymodbus", "pyserial", "starlette", "typing_extensions", "uvicorn"]
    for name in ("configs/board.toml", "deploy/carctl.service", "deploy/mosquitto/mosquitto.conf",
                 "requirements/constraints.txt"):
        assert (bundle / name).is_file(), name
    assert (bundle / "TARGETS").read_text() == f"cp{PYTHON.replace('.', '')}-{platform.machine()}\n"


@pytest.mark.slow
def test_installs_offline_and_again_without_touching_the_configuration(bundle: Path, tmp_path: Path) -> None:
    first = install(bundle, "--root", str(tmp_path), "--no-system", "--python", sys.executable)
    assert first.returncode == 0, first.stderr
    assert "neither enabled nor started" in first.stdout
    venv = tmp_path / "opt" / "carctl" / ".venv"
    run_help = subprocess.run([str(venv / "bin" / "carctl"), "run", "--help"], capture_output=True, text=True,
                              timeout=60)
    assert run_help.returncode == 0 and "--config" in run_help.stdout, run_help.stderr
    # Every part the board runs without the face feature loads: the loop, the platform link (which once needed
    # a package only the face extra brought, and restarted for ever) and the service tool with its templates.
    parts = subprocess.run([str(venv / "bin" / "python"), "-c", "import carctl.runtime.main, carctl.platform.agent, "
                            "carctl.service.server, carctl.service.app, pathlib; assert (pathlib.Path("
                            "carctl.service.app.HERE) / 'templates' / 'live.html').is_file()"],
                           capture_output=True, text=True, timeout=60)
    assert parts.returncode == 0, parts.stderr
    # The directories the firmware writes exist before the first start, so that `carctl run --check` can pass.
    for folder in ("var/lib/carctl", "var/log/carctl"):
        assert (tmp_path / folder).is_dir(), folder
    assert os.readlink(tmp_path / "usr" / "local" / "bin" / "carctl") == "/opt/carctl/.venv/bin/carctl"
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True,
                            env=offline_env(), check=True).stdout
    # No simulator plotting, test or face packages on the board.
    installed = {line.split("==")[0].split(" @ ")[0].strip().lower() for line in freeze.splitlines() if line.strip()}
    assert not installed & {"matplotlib", "pytest", "hypothesis", "numpy", "dlib-bin", "opencv-python-headless"}, freeze
    config = tmp_path / "etc" / "carctl" / "board.toml"
    assert config.read_text() == (bundle / "configs" / "board.toml").read_text()
    assert (tmp_path / "etc" / "systemd" / "system" / "carctl.service").is_file()

    config.write_text(config.read_text() + "# this building's settings\n")
    again = install(bundle, "--root", str(tmp_path), "--no-system", "--python", sys.executable)
    assert again.returncode == 0, again.stderr
    assert config.read_text().endswith("# this building's settings\n")
    assert "kept the existing" in again.stdout


@pytest.mark.slow
def test_refuses_a_bundle_for_another_python_or_machine(bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "bundle"
    shutil.copytree(bundle, other)
    (other / "TARGETS").write_text("cp313-aarch64\n")
    assert_refused(install(other, "--root", str(tmp_path), "--no-system", "--python", sys.executable), "no wheels for")


@pytest.mark.slow
def test_refuses_bad_options_and_unsupported_pythons(bundle: Path, tmp_path: Path) -> None:
    assert_refused(install(bundle, "--colour"), "unknown option '--colour'")
    assert_refused(install(bundle, "--no-system", "--python", str(tmp_path / "nothing")), "cannot run the Python")
    old = tmp_path / "python"
    old.write_text("#!/bin/sh\necho 3.10\n")
    old.chmod(0o755)
    assert_refused(install(bundle, "--no-system", "--python", str(old)), "carctl needs Python 3.11, 3.12 or 3.13")
    # --root is a folder (an image): without --no-system the user and the unit would be this machine's.
    assert_refused(install(bundle, "--root", str(tmp_path / "image")), "give --no-system too")
    # A configuration that is a link: its owner and mode would be set on whatever it points to.
    (tmp_path / "linked" / "etc" / "carctl").mkdir(parents=True)
    (tmp_path / "linked" / "etc" / "carctl" / "board.toml").symlink_to("/etc/passwd")
    assert_refused(install(bundle, "--root", str(tmp_path / "linked"), "--no-system", "--python", sys.executable),
                   "is a symbolic link")


@pytest.mark.parametrize(("args", "named"), [(["--python", "3.10"], "--python"), (["--arch", "armv7l"], "--arch")])
def test_build_refuses_a_python_or_machine_it_cannot_build_for(args: list[str], named: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "build_dist.py"), *args], capture_output=True,
                            text=True, timeout=60)
    assert_refused(result, named)
