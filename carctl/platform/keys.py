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
import os
import stat
from pathlib import Path

from carctl.atomicfile import write_new_private

MIN_KEY_BYTES = 32
MAX_KEY_BYTES = 1024
CAR_KEY_SALT = b"carctl car command key v1"


class KeyFileError(Exception):
    """A key file that must not be used; the message names the file and says why."""


def load_key(path: Path) -> bytes:
    try:
        # Non-blocking, so that a FIFO in the key's place is refused below instead of waiting for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if os.path.islink(path):
            raise KeyFileError(f"key file {path} is a symbolic link; a key must be a file of its own") from None
        raise KeyFileError(f"key file {path}: {error.strerror}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if stat.S_IMODE(mode) & 0o077:
            raise KeyFileError(f"key file {path} is open to group or others (mode {stat.S_IMODE(mode):o}); "
                               f"chmod 600 it")
        key = os.read(descriptor, MAX_KEY_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {path} holds {len(key)} bytes; a command key needs at least "
                           f"{MIN_KEY_BYTES} random bytes")
    if len(key) > MAX_KEY_BYTES:
        raise KeyFileError(f"key file {path} is larger than {MAX_KEY_BYTES} bytes: not a key")
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
