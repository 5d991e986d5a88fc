"""The operator's console against a Mosquitto that speaks TLS, as the deployed one does on 8883: with the broker's CA
it reaches the car; with a wrong CA, a host name the certificate was not issued for, a CA file that is not one, or a
port that does not speak TLS, it stops at once with exit code 2 and one sentence (a broker that does not answer at
all: exit code 1), never a traceback or a hang."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carctl.platform.console import ConsoleInputError, _broker_address
from tests.platform.conftest import MOSQUITTO, PASSWD, Broker, make_certificates, start_broker
from tests.platform.test_console import KEY, ROOT, USERS, car
from tests.refusals import assert_refused


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None or PASSWD is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    running = start_broker(tmp_path / "broker", tls=True)  # a throwaway CA: tmp_path/broker/ca.pem
    yield running
    running.stop()


def console(tmp_path: Path, broker: str, *args: str, timeout_s: float = 3.0) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pw").write_text(USERS["platform"])
    (tmp_path / "key").write_bytes(KEY)
    os.chmod(tmp_path / "key", 0o600)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "carctl.cli", "platform", "--broker", broker, "--password-file",
                             str(tmp_path / "pw"), "--key-file", str(tmp_path / "key"), "--timeout", str(timeout_s),
                             *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert time.monotonic() - started < timeout_s + 10  # never a hang
    return result


def test_the_console_reaches_a_car_through_a_tls_broker(tls_broker: Broker, tmp_path: Path) -> None:
    ca = str(tmp_path / "broker" / "ca.pem")
    applied: list[dict[str, Any]] = []
    link = car(tls_broker.port, "b7u2", tmp_path, applied)  # the car on the broker's loopback listener
    try:
        answer = console(tmp_path, f"127.0.0.1:{tls_broker.tls_port}", "--tls-ca", ca, "config-get", "--community",
                         "xihan", "--car", "b7u2")
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["accepted"] and [c["type"] for c in applied] == ["config.get"]
        watched = console(tmp_path, f"127.0.0.1:{tls_broker.tls_port}", "--tls-ca", ca, "watch", "--community",
                          "xihan", "--seconds", "1")
        assert watched.returncode == 0, watched.stderr
        assert watched.stdout.startswith('carctl/xihan/b7u2/state {"landing": 0}')  # retained, read over TLS
    finally:
        link.stop()


def test_a_broker_that_does_not_verify_is_refused_in_one_sentence(tls_broker: Broker, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca, _, _ = make_certificates(other)  # a CA that did not sign the broker's certificate
    ca = tmp_path / "broker" / "ca.pem"
    wrong = console(tmp_path, f"127.0.0.1:{tls_broker.tls_port}", "--tls-ca", str(wrong_ca), "watch", "--community",
                    "xihan", "--seconds", "1")
    assert_refused(wrong, f"was not verified against --tls-ca {wrong_ca}")
    # The certificate is for 127.0.0.1 only: the same broker by another name is not the broker it vouches for.
    renamed = console(tmp_path, f"localhost:{tls_broker.tls_port}", "--tls-ca", str(ca), "watch", "--community",
                      "xihan", "--seconds", "1")
    assert_refused(renamed, "--broker names the host")
    assert "localhost" in renamed.stderr
    plain = console(tmp_path, f"127.0.0.1:{tls_broker.port}", "--tls-ca", str(ca), "watch", "--community", "xihan",
                    "--seconds", "1")  # the broker's plain listener: no TLS handshake there
    assert_refused(plain, "TLS")


def test_a_ca_file_that_is_not_one_is_named(tmp_path: Path) -> None:
    """Refused before any broker is sought (port 9 has none)."""
    (tmp_path / "garbage.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                                           b"-----END CERTIFICATE-----\n")
    (tmp_path / "empty.pem").write_bytes(b"")
    (tmp_path / "binary.pem").write_bytes(bytes(range(256)))
    os.mkfifo(tmp_path / "fifo.pem")
    for name, reason in (("garbage.pem", "no usable PEM certificate"), ("empty.pem", "no usable PEM certificate"),
                         ("binary.pem", "not a PEM certificate"), ("missing.pem", "No such file"),
                         ("fifo.pem", "not a regular file")):
        result = console(tmp_path, "127.0.0.1:9", "--tls-ca", str(tmp_path / name), "watch", "--community", "xihan")
        assert_refused(result, f"--tls-ca {tmp_path / name}")
        assert reason in result.stderr, result.stderr


def test_a_broker_that_never_answers_the_handshake_is_no_answer_not_a_hang(tmp_path: Path) -> None:
    ca, _, _ = make_certificates(tmp_path)
    with socket.socket() as silent:  # accepts the connection (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        result = console(tmp_path, f"127.0.0.1:{silent.getsockname()[1]}", "--tls-ca", str(ca), "watch",
                         "--community", "xihan", timeout_s=1.0)
    assert result.returncode == 1 and "did not answer within 1.0 s" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_port_follows_the_transport(tmp_path: Path) -> None:
    assert _broker_address("broker.xihan.example", tls=True) == ("broker.xihan.example", 8883)
    assert _broker_address("127.0.0.1", tls=False) == ("127.0.0.1", 1883)
    assert _broker_address("[::1]", tls=True) == ("::1", 8883)
    assert _broker_address("[::1]:1884", tls=False) == ("::1", 1884)
    for bad in ("::1:1883", "host:", "host:0", "[::1]x", "a..b"):
        with pytest.raises(ConsoleInputError, match="--broker"):
            _broker_address(bad, tls=True)
    # Plain MQTT to the deployed TLS port would only time out; a remote broker without TLS would hear the password.
    assert_refused(console(tmp_path, "127.0.0.1:8883", "watch", "--community", "xihan"), "--tls-ca")
    assert_refused(console(tmp_path, "broker.xihan.example", "watch", "--community", "xihan"), "--tls-ca")
    result = subprocess.run([sys.executable, "-m", "carctl.cli", "platform", "watch", "--community", "xihan"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert_refused(result, "--broker HOST is needed")
