"""The service tool over HTTPS in a real browser (docs/service-tool.md): the firmware (`carctl run`, its process table
starting the service tool with service.tls_cert_file and service.tls_key_file) against the simulated shaft, and
headless Chromium that trusts exactly the service's key.

The certificates are made by openssl as a site would make them: a site CA, and a leaf for 127.0.0.1 signed by it.
Chromium is told to accept that leaf's public key and nothing else (`--ignore-certificate-errors-spki-list` with the
SHA-256 of its SubjectPublicKeyInfo, which Chromium honours only with its own `--user-data-dir`), not to ignore
certificate errors wholesale; a second Chromium without the pin shows its certificate error instead of the page.
Skipped, with the reason, where chromium, chromedriver or openssl is missing.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.service.test_browser import BROWSER_TEST, PASSWORD, log_in, running_car_with_service, start_chromium, \
    text_of, wait_for

OPENSSL = Path("/usr/bin/openssl")

pytestmark = [
    *BROWSER_TEST,
    pytest.mark.skipif(not OPENSSL.exists(), reason="needs openssl (/usr/bin/openssl) to make the certificates"),
]

# A listener on the live page's own stream (live.js's `stream`), counting fresh live states for 2 s.
COUNT_FOR_2_S = """
const done = arguments[0];
let count = 0;
stream.addEventListener("message", message => {
  const snapshot = JSON.parse(message.data);
  if (!snapshot.stale && snapshot.live) count += 1;
});
setTimeout(() => done(count), 2000);
"""


def openssl(*arguments: str) -> None:
    done = subprocess.run([str(OPENSSL), *arguments], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def site_ca_and_leaf(workdir: Path) -> tuple[Path, Path, Path]:
    """(the CA's certificate, the leaf's certificate, the leaf's key): a CA, and a leaf for 127.0.0.1 it signed."""
    ca_key, ca_cert = workdir / "ca.key", workdir / "ca.crt"
    key, request, cert = workdir / "service.key", workdir / "service.csr", workdir / "service.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=carctl test site CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(ca_key), "-out", str(ca_cert))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out",
            str(request))
    extensions = workdir / "leaf.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "2", "-extfile", str(extensions), "-out", str(cert))
    return ca_cert, cert, key


def spki_sha256(cert: Path) -> str:
    """The base64 SHA-256 of the certificate's SubjectPublicKeyInfo (DER): what Chromium's SPKI list holds."""
    public_pem = subprocess.run([str(OPENSSL), "x509", "-pubkey", "-noout", "-in", str(cert)], capture_output=True,
                                text=True, timeout=30, check=True).stdout
    body = "".join(line for line in public_pem.splitlines() if not line.startswith("-----"))
    return base64.b64encode(hashlib.sha256(base64.b64decode(body)).digest()).decode()


def test_over_https_the_browser_logs_in_without_the_banner_with_a_secure_cookie_and_the_page_streams(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    ca_cert, cert, key = site_ca_and_leaf(tmp_path)
    trusted = ssl.create_default_context(cafile=str(ca_cert))

    def answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=trusted) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    keys = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
    with running_car_with_service(tmp_path, keys, "https", answers) as (url, _, _):
        assert url.startswith("https://127.0.0.1:")
        # Without the pin, Chromium does not show the page: the pin below is what makes it trusted.
        stranger = start_chromium(f"--user-data-dir={tmp_path / 'chromium-stranger'}")
        try:
            stranger.get(url + "login")
            assert not stranger.find_elements(By.ID, "user"), "an untrusted certificate was accepted"
            assert "ERR_CERT_AUTHORITY_INVALID" in stranger.page_source, "Chromium's certificate error"
        finally:
            stranger.quit()

        browser = start_chromium(f"--user-data-dir={tmp_path / 'chromium'}",
                                 f"--ignore-certificate-errors-spki-list={spki_sha256(cert)}")
        try:
            browser.get(url + "login")
            assert browser.find_elements(By.ID, "user"), "the login page over https"
            assert not browser.find_elements(By.ID, "no-tls"), "no banner under TLS"
            assert browser.execute_script("return window.isSecureContext && location.protocol") == "https:"
            log_in(browser, url, "tech", PASSWORD)
            wait_for(lambda: browser.current_url == url, 10, "the live page after the login")
            assert not browser.find_elements(By.ID, "no-tls")
            session = next(cookie for cookie in browser.get_cookies() if cookie["name"] == "carctl_session")
            assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict", session
            wait_for(lambda: text_of(browser, "phase") == "standing", 20, "the page shows the car standing")
            updates = browser.execute_async_script(COUNT_FOR_2_S)
            assert updates >= 10, f"{updates} live updates in 2 s over TLS"
            assert not browser.find_element(By.ID, "stale").is_displayed()
        finally:
            browser.quit()
