"""A local Mosquitto for the tests and the fleet simulator, configured as deploy/mosquitto/ configures the
community's broker: no anonymous access, a password per account, and the per-car ACL (carctl/platform/broker.py).

Started as root, Mosquitto would drop to the 'mosquitto' user, which cannot read private temporary files, so it is
told to stay root ('user root'); a deployed broker runs as its own user.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from carctl.platform.broker import acl

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None)


class BrokerUnavailable(RuntimeError):
    pass


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Broker:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    tls_port: int = 0  # a second listener, with TLS, when started with tls=True

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.directory / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5), "not_valid_after": now + datetime.timedelta(days=1)}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carctl test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(valid["not_valid_before"])
          .not_valid_after(valid["not_valid_after"])
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def start_broker(directory: Path, users: dict[str, str], community: str, cars: list[str], operator: str,
                 tls: bool = False) -> Broker:
    """A Mosquitto on a free loopback port with a password for each of ``users`` and the deployment's ACL for the
    community's cars; with tls, a second listener that speaks TLS with a certificate from a throwaway CA
    (directory/ca.pem)."""
    if MOSQUITTO is None or PASSWD is None:
        raise BrokerUnavailable("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_tcp_port()
    passwd = directory / "passwd"
    # Plain text first, then hashed in place in one call (-U), which is quick even for a whole community.
    passwd.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
    subprocess.run([PASSWD, "-U", str(passwd)], check=True, capture_output=True)
    (directory / "acl").write_text(acl(community, cars, operator))
    tls_port = free_tcp_port() if tls else 0
    tls_listener = ""
    if tls:
        ca, certificate, key = make_certificates(directory)
        tls_listener = f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {certificate}\nkeyfile {key}\n"
    (directory / "mosquitto.conf").write_text(
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {directory / 'acl'}\npersistence false\n"
        + ("user root\n" if os.geteuid() == 0 else "")
        + f"listener {port} 127.0.0.1\n" + tls_listener)
    running = Broker(port, directory, tls_port=tls_port)
    running.start()
    return running
