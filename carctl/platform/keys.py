"""Command keys: reading one safely, and deriving a car's own key from its community's.

Rules of this module:
- A key file holds at least 32 random bytes (`head -c 32 /dev/urandom`), used as they are. It is refused, naming the
  file, when it is shorter, missing or unreadable, or readable or writable by group or others (as ssh refuses a
  private key): a key others can read signs commands for whoever reads it.
- A car's key is HKDF-SHA256 (RFC 5869) of the community key, with the salt `carctl car command key v1` and the
  info `<community>/<car>`. A car provisioned with its own key can verify commands for itself only: a key copied
  off one car's SD card cannot sign for any other car (docs/platform.md).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from carctl.atomicfile import write_new_private
from carctl.filein import FileRefused, private_file_size, read_bounded

MIN_KEY_BYTES = 32
MAX_KEY_BYTES = 1024
CAR_KEY_SALT = b"carctl car command key v1"


class KeyFileError(Exception):
    """A key file that must not be used; the message names the file and says why."""


def load_key(path: Path) -> bytes:
    try:
        size = private_file_size(path)  # a link, not a regular file, open to others: refused before a byte is read
        if size > MAX_KEY_BYTES:
            raise KeyFileError(f"key file {path} is larger than {MAX_KEY_BYTES} bytes: not a key")
        key = read_bounded(path, MAX_KEY_BYTES, follow_symlinks=False)
    except FileRefused as refused:
        raise KeyFileError(f"key file {path} {refused.reason}") from None
    except OSError as error:
        raise KeyFileError(f"key file {path}: {error.strerror or error}") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {path} holds {len(key)} bytes; a command key needs at least {MIN_KEY_BYTES} "
                           f"random bytes")
    return key


def hkdf_sha256(key_material: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 HKDF with SHA-256: extract, then expand to ``length`` bytes."""
    pseudo_random_key = hmac.new(salt, key_material, hashlib.sha256).digest()
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.new(pseudo_random_key, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


def car_key(community_key: bytes, community: str, car: str) -> bytes:
    """The key that signs commands for one car only."""
    return hkdf_sha256(community_key, CAR_KEY_SALT, f"{community}/{car}".encode())


def write_key(path: Path, key: bytes) -> None:
    """A new key file, mode 0600 from its creation; refuses to overwrite one."""
    write_new_private(Path(path), key)


MAX_CA_FILE_BYTES = 1024 * 1024


def ca_file_problem(path: Path | str) -> str | None:
    """Why ``path`` cannot be the broker's CA certificate, or None. Read bounded and parsed before paho gets its
    name: paho would open a FIFO blocking and take a PEM file with no certificate in it for an empty trust store."""
    import ssl

    try:
        text = read_bounded(path, MAX_CA_FILE_BYTES).decode("ascii")
    except OSError as error:
        return f"{path}: {getattr(error, 'reason', None) or error.strerror or error}"
    except UnicodeDecodeError:
        return f"{path} is not a PEM certificate (it is not text)"
    if not text.strip():
        return f"{path} is empty: it holds no usable PEM certificate"
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        return f"{path} holds no usable PEM certificate ({error.__class__.__name__}: {str(error)[:120]})"
    return None
