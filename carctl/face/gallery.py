"""A community's gallery of enrolled residents: embeddings only, encrypted at rest, written atomically.

Rules of this module:
- One file per community, AES-256-GCM under a key kept in a separate file created with mode 0600. The community id
  is authenticated with the data, so a gallery cannot be swapped between communities. No photo is ever written:
  a record holds the resident id, home landing, allowed landings, the consent reference and time, when it was
  enrolled, and the 128-d embeddings.
- A write is a whole new file, fsync'd and renamed over the old one: a crash mid-write leaves the old gallery
  intact, and a deleted resident leaves no tombstone and no trace in the new file.
- An enrolment without a consent reference is refused. A tampered file or a wrong key is a GalleryError; the car
  runs on without the feature.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carctl.atomicfile import write_atomic

MAGIC = b"CARCTLG1"
NONCE_BYTES = 12
KEY_BYTES = 32
EMBEDDING_DIMENSIONS = 128
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class GalleryError(Exception):
    """The gallery cannot be used: unreadable, tampered, wrong key, or a refused change."""


@dataclass(frozen=True, slots=True)
class Resident:
    resident_id: str
    home_landing: int
    allowed_landings: tuple[int, ...]
    consent_ref: str
    consent_time: str
    enrolled_at: str
    embeddings: tuple[tuple[float, ...], ...] = field(repr=False)

    def public(self) -> dict[str, Any]:
        """Everything but the embeddings (for `carctl face list` and the platform)."""
        return {"resident": self.resident_id, "home_landing": self.home_landing,
                "allowed_landings": list(self.allowed_landings), "consent_ref": self.consent_ref,
                "consent_time": self.consent_time, "enrolled_at": self.enrolled_at,
                "templates": len(self.embeddings)}


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise GalleryError(f"{kind} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


def create_key(path: Path) -> None:
    """A new random key, readable by the owner only. Refuses to overwrite an existing key."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GalleryError(f"key file {path} already exists; not overwriting it") from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_bytes(KEY_BYTES))
        out.flush()
        os.fsync(out.fileno())


def load_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except OSError as error:
        raise GalleryError(f"key file {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GalleryError(f"key file {path} is readable by others (mode {stat.S_IMODE(mode):o}); it must be 0600")
    if len(key) != KEY_BYTES:
        raise GalleryError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
    return key


def _pack(values: tuple[float, ...]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _unpack(text: str) -> tuple[float, ...]:
    raw = base64.b64decode(text)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


class Gallery:
    """The enrolled residents of one community, held in memory and written through on every change."""

    def __init__(self, directory: Path, community: str, key: bytes) -> None:
        self.directory = directory
        self.community = check_id("community", community)
        self.path = directory / f"{community}.gallery"
        self._aead = AESGCM(key)
        self.residents: dict[str, Resident] = {}
        if self.path.exists():
            self.residents = self._read()

    def _associated_data(self) -> bytes:
        return MAGIC + self.community.encode()

    def _read(self) -> dict[str, Resident]:
        try:
            blob = self.path.read_bytes()
        except OSError as error:
            raise GalleryError(f"gallery {self.path}: {error.strerror}") from None
        if len(blob) < len(MAGIC) + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
            raise GalleryError(f"gallery {self.path} is not a carctl gallery (or is truncated)")
        nonce = blob[len(MAGIC):len(MAGIC) + NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES:], self._associated_data())
        except InvalidTag:
            raise GalleryError(f"gallery {self.path} cannot be decrypted: wrong key, another community's file, "
                               f"or it has been tampered with") from None
        try:
            data = json.loads(plain)
            residents = {}
            for record in data["residents"]:
                resident = Resident(record["resident"], int(record["home_landing"]),
                                    tuple(int(n) for n in record["allowed_landings"]), record["consent_ref"],
                                    record["consent_time"], record["enrolled_at"],
                                    tuple(_unpack(e) for e in record["embeddings"]))
                residents[resident.resident_id] = resident
        except (ValueError, KeyError, TypeError) as error:
            raise GalleryError(f"gallery {self.path} decrypts but its records are malformed ({error})") from None
        return residents

    def _write(self) -> None:
        records = [{"resident": r.resident_id, "home_landing": r.home_landing,
                    "allowed_landings": list(r.allowed_landings), "consent_ref": r.consent_ref,
                    "consent_time": r.consent_time, "enrolled_at": r.enrolled_at,
                    "embeddings": [_pack(e) for e in r.embeddings]} for r in self.residents.values()]
        plain = json.dumps({"version": 1, "community": self.community, "residents": records}).encode()
        nonce = secrets.token_bytes(NONCE_BYTES)
        blob = MAGIC + nonce + self._aead.encrypt(nonce, plain, self._associated_data())
        write_atomic(self.path, blob, mode=0o600)

    # -- changes -------------------------------------------------------------------------------------------------

    def enroll(self, resident: Resident) -> None:
        check_id("resident", resident.resident_id)
        if not resident.consent_ref.strip():
            raise GalleryError("enrolment refused: no consent reference (PIPL art. 29 needs separate consent)")
        if not resident.embeddings:
            raise GalleryError("enrolment refused: no face template")
        for embedding in resident.embeddings:
            if len(embedding) != EMBEDDING_DIMENSIONS:
                raise GalleryError(f"enrolment refused: a template has {len(embedding)} values, not 128")
        if resident.home_landing not in resident.allowed_landings:
            resident = Resident(resident.resident_id, resident.home_landing,
                                tuple(sorted({*resident.allowed_landings, resident.home_landing})),
                                resident.consent_ref, resident.consent_time, resident.enrolled_at,
                                resident.embeddings)
        previous = dict(self.residents)
        self.residents[resident.resident_id] = resident
        try:
            self._write()
        except OSError as error:
            self.residents = previous
            raise GalleryError(f"gallery {self.path} not written: {error.strerror}") from None

    def delete(self, resident_id: str) -> bool:
        """Remove every trace of a resident at once; False if not enrolled."""
        if resident_id not in self.residents:
            return False
        previous = dict(self.residents)
        del self.residents[resident_id]
        try:
            self._write()
        except OSError as error:
            self.residents = previous
            raise GalleryError(f"gallery {self.path} not written: {error.strerror}") from None
        return True
