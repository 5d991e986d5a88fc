"""A real Mosquitto broker per test, with passwords and the ACL the deployment uses."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from carctl.platform.broker import acl

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None)
USERS = {"platform": "op-secret", "xihan-b7u2": "car2-secret", "xihan-b7u3": "car3-secret"}


@dataclass
class Broker:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([str(MOSQUITTO), "-c", str(self.directory / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def start_broker(directory: Path) -> Broker:
    """A Mosquitto on a free loopback port with the deployment's password and ACL rules."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    passwd = directory / "passwd"
    passwd.touch()
    for user, password in USERS.items():
        subprocess.run([str(PASSWD), "-b", str(passwd), user, password], check=True, capture_output=True)
    (directory / "acl").write_text(acl("xihan", ["b7u2", "b7u3"], "platform"))
    (directory / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nacl_file {directory / 'acl'}\n"
        f"persistence false\n"
        # Started as root, mosquitto would drop to the 'mosquitto' user, which cannot read the test's private files.
        + ("user root\n" if os.geteuid() == 0 else ""))
    running = Broker(port, directory)
    running.start()
    return running


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    running = start_broker(tmp_path)
    yield running
    running.stop()
