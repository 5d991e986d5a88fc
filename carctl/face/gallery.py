"""A community's gallery of enrolled residents: embeddings only, encrypted at rest, written atomically, and a
deleted resident gone from every copy the key on the car can still open.

File format (CARCTLG2; all integers big-endian):

    offset  0   8 bytes   magic b"CARCTLG2"
    offset  8   8 bytes   version: a counter that every write increases
    offset 16  12 bytes   AES-GCM nonce, random for every write
    offset 28   ...       AES-256-GCM ciphertext of the JSON records, with its 16-byte tag at the end
    associated data: the first 16 bytes (magic and version) and the community id

The older format CARCTLG1 (magic, nonce, ciphertext; associated data magic + community id) is still read, as
version 0, and is replaced by CARCTLG2 on the next write.

Rules of this module:
- One file per community, under a key kept in a separate file (keys.py: mode 0600, beside its next key and the
  version floor, away from the gallery directory). The community id and the version are authenticated with the
  data, so a gallery cannot be swapped between communities nor its version changed.
- No photo is ever written: a record holds the resident id, home landing, allowed landings, the consent reference
  and time, when it was enrolled, and the 128-d embeddings.
- A write is a whole new file, fsync'd and renamed over the old one, and then its version becomes the floor: a
  gallery older than the floor (a backup copied back) is refused as a rollback, never read.
- Deleting a resident rotates the key, in an order that a crash at any point leaves recoverable:
  (1) the new key to `<key>.next`; (2) the gallery under the new key; (3) the new floor; (4) random bytes over the
  old key, in place; (5) `<key>.next` renamed over the key. The owner's next open finishes or undoes a rotation it
  finds half done; a read-only opener (the face worker) tries the key and then `<key>.next` and never writes.
  So a copy of the gallery made before the deletion no longer decrypts with the key on the car. If the key cannot
  be replaced the resident is still removed, and the deletion says that older copies remain decryptable.
- An enrolment without a consent reference is refused. Any gallery file that is not exactly what this module
  writes — tampered, truncated, a wrong key, records of the wrong shape — is a GalleryError, never another
  exception; the car runs on without the feature.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carctl import safejson
from carctl.atomicfile import remove_stale_temporaries, write_atomic
from carctl.core.config import MAX_LANDING_INDEX
from carctl.protocol.loopback import RESIDENT_ID
from carctl.face import keys
from carctl.filein import NotARegularFile, read_bounded
from carctl.face.keys import KEY_BYTES, GalleryError, KeyFiles, create_key, load_key

__all__ = ["EMBEDDING_DIMENSIONS", "KEY_BYTES", "Gallery", "GalleryError", "Resident", "check_id", "create_key",
           "load_key"]

MAGIC = b"CARCTLG2"
MAGIC_V1 = b"CARCTLG1"
VERSION_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
EMBEDDING_DIMENSIONS = 128
# Far above a real gallery (10,000 residents with five templates each is about 40 MB) and below what would hurt.
MAX_GALLERY_BYTES = 128 << 20
# A landing in a record read back: what format 2 has always allowed, so that one old record does not make a whole
# gallery unreadable. A new enrolment is held to the landings a building can have (MAX_LANDING_INDEX, 99); the car
# itself refuses a recognition for a landing its building does not have (carctl/protocol/loopback.py).
MAX_LANDING = 255
_ID = RESIDENT_ID  # the same rule the loop applies to a recognition's resident
_RECORD_KEYS = ("resident", "home_landing", "allowed_landings", "consent_ref", "consent_time", "enrolled_at",
                "embeddings")


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
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise GalleryError(f"{kind} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


# -- the records, as JSON inside the encryption -------------------------------------------------------------------


def _pack(values: tuple[float, ...]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _unpack(text: object) -> tuple[float, ...]:
    """One 128-d embedding; ValueError unless it is exactly that, with finite values."""
    if not isinstance(text, str):
        raise ValueError("an embedding is not text")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("an embedding is not base64") from None
    if len(raw) != 4 * EMBEDDING_DIMENSIONS:
        raise ValueError(f"an embedding has {len(raw)} bytes, not {4 * EMBEDDING_DIMENSIONS}")
    values = struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", raw)
    if not all(math.isfinite(v) for v in values):
        raise ValueError("an embedding holds a value that is not a finite number")
    return values


def _landing(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_LANDING:
        raise ValueError(f"landing {value!r} is not a landing index 0..{MAX_LANDING}")
    return value


def _text(record: dict[str, Any], key: str) -> str:
    if not isinstance(record[key], str):
        raise ValueError(f"{key} is not text")
    return record[key]


def _resident_from(record: object) -> Resident:
    """One resident from its record; ValueError naming what is wrong."""
    if not isinstance(record, dict) or any(key not in record for key in _RECORD_KEYS):
        raise ValueError("a record lacks a field")
    if not isinstance(record["resident"], str) or not _ID.fullmatch(record["resident"]):
        raise ValueError("a resident id is not 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(record["allowed_landings"], list) or not isinstance(record["embeddings"], list) \
            or not record["embeddings"]:
        raise ValueError("allowed_landings or embeddings is not a list")
    return Resident(record["resident"], _landing(record["home_landing"]),
                    tuple(_landing(n) for n in record["allowed_landings"]), _text(record, "consent_ref"),
                    _text(record, "consent_time"), _text(record, "enrolled_at"),
                    tuple(_unpack(e) for e in record["embeddings"]))


def _residents_from(plain: bytes) -> dict[str, Resident]:
    """The residents in a decrypted gallery; ValueError (JsonRefused among them) naming what is wrong."""
    data = safejson.loads(plain, max_bytes=MAX_GALLERY_BYTES, max_depth=8, max_values=20_000_000)
    if not isinstance(data, dict) or not isinstance(data.get("residents"), list):
        raise ValueError("no list of residents")
    residents: dict[str, Resident] = {}
    for record in data["residents"]:
        resident = _resident_from(record)
        if resident.resident_id in residents:
            raise ValueError(f"resident {resident.resident_id} appears twice")
        residents[resident.resident_id] = resident
    return residents


def _records_of(residents: dict[str, Resident], community: str) -> bytes:
    records = [{"resident": r.resident_id, "home_landing": r.home_landing,
                "allowed_landings": list(r.allowed_landings), "consent_ref": r.consent_ref,
                "consent_time": r.consent_time, "enrolled_at": r.enrolled_at,
                "embeddings": [_pack(e) for e in r.embeddings]} for r in residents.values()]
    return json.dumps({"format": 2, "community": community, "residents": records}).encode()


# -- the file: header, encryption, version ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A gallery file split into its parts, not yet decrypted."""

    version: int
    nonce: bytes
    ciphertext: bytes
    associated_data: bytes


def _split(blob: bytes, community: str, name: str) -> _Sealed:
    if len(blob) > MAX_GALLERY_BYTES:
        raise GalleryError(f"gallery {name} is larger than any gallery ({len(blob)} bytes)")
    if blob.startswith(MAGIC) and len(blob) >= len(MAGIC) + VERSION_BYTES + NONCE_BYTES + TAG_BYTES:
        header = len(MAGIC) + VERSION_BYTES
        return _Sealed(int.from_bytes(blob[len(MAGIC):header], "big"), blob[header:header + NONCE_BYTES],
                       blob[header + NONCE_BYTES:], blob[:header] + community.encode())
    if blob.startswith(MAGIC_V1) and len(blob) >= len(MAGIC_V1) + NONCE_BYTES + TAG_BYTES:
        return _Sealed(0, blob[len(MAGIC_V1):len(MAGIC_V1) + NONCE_BYTES], blob[len(MAGIC_V1) + NONCE_BYTES:],
                       MAGIC_V1 + community.encode())
    raise GalleryError(f"gallery {name} is not a carctl gallery (or is truncated)")


def _seal(plain: bytes, community: str, key: bytes, version: int) -> bytes:
    header = MAGIC + version.to_bytes(VERSION_BYTES, "big")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plain, header + community.encode())


def _decrypt(sealed: _Sealed, key: bytes) -> bytes | None:
    """The plaintext, or None if ``key`` is not the key of this file (or the file was tampered with)."""
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, sealed.associated_data)
    except InvalidTag:
        return None


def _opens_with(blob: bytes, community: str, key: bytes) -> bool:
    try:
        return _decrypt(_split(blob, community, "-"), key) is not None
    except GalleryError:
        return False


def _read_blob(path: Path) -> bytes | None:
    """The gallery file's bytes, or None when there is no gallery yet; GalleryError for a FIFO, a device or a file
    larger than any gallery, which is never read (nor waited on)."""
    try:
        return read_bounded(path, MAX_GALLERY_BYTES)
    except FileNotFoundError:
        return None
    except NotARegularFile as refusal:
        raise GalleryError(f"gallery {refusal}") from None
    except OSError as error:
        raise GalleryError(f"gallery {path}: {error.strerror}") from None


class _Undecryptable(GalleryError):
    """No key at hand opens the gallery (the read-only opener looks at the key files once more)."""


def _load_if_valid(path: Path) -> bytes | None:
    try:
        return load_key(path)
    except GalleryError:
        return None


def _finish_or_undo_rotation(files: KeyFiles, path: Path, community: str) -> None:
    """A rotation cut short by a crash, put right by the owner before it reads: if the gallery was already written
    under `<key>.next`, steps 3-5 are finished; if it is still under the old key, `<key>.next` is destroyed. When
    the gallery opens with neither, nothing is touched (the read that follows reports it)."""
    if not files.next.exists():
        return
    next_key = _load_if_valid(files.next)
    blob = _read_blob(path)
    if next_key is not None and blob is not None and _opens_with(blob, community, next_key):
        version = _split(blob, community, str(path)).version
        if version > keys.read_floor(files, community):
            keys.record_floor(files, community, version)
        if files.key.exists():
            keys.overwrite_in_place(files.key)
        keys.promote_next(files)
        return
    old_key = _load_if_valid(files.key)
    if next_key is None or blob is None or (old_key is not None and _opens_with(blob, community, old_key)):
        keys.destroy(files.next)  # step 1 never finished, or step 2 never happened: the old key stays


class Gallery:
    """The enrolled residents of one community, held in memory and written through on every change.

    `Gallery.open()` is for the owner of the files (the CLI's changes, the platform link's face commands): it clears
    up after crashes and rotates the key on a deletion. `Gallery.open_read_only()` is for the face worker. The
    constructor takes a key held in memory, with no key file: it reads and enrols, but a deletion cannot rotate
    the key and says so."""

    def __init__(self, directory: Path, community: str, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise GalleryError(f"a gallery key must be {KEY_BYTES} bytes, not {len(key)}")
        self._start(directory, community, key_files=None, floor=0, read_only=False)
        self._read((key,))

    def _start(self, directory: Path, community: str, key_files: KeyFiles | None, floor: int,
               read_only: bool) -> None:
        self.directory = directory
        self.community = check_id("community", community)
        self.path = directory / f"{community}.gallery"
        self.key_files = key_files
        self.floor = floor
        self.read_only = read_only
        self.version = 0  # of the file read (0 when there is none, or it is a CARCTLG1 file)
        self.residents: dict[str, Resident] = {}
        self._key = b""

    @classmethod
    def open(cls, directory: Path, community: str, key_file: Path, create: bool = False) -> Gallery:
        """The owner's gallery: stale temporaries removed, a half-done rotation finished or undone, the key
        created if ``create`` and there is none, the version checked against the floor (and the floor raised to a
        newer gallery: a crash between writing the gallery and its floor)."""
        files = KeyFiles(key_file)
        path = directory / f"{check_id('community', community)}.gallery"
        try:
            remove_stale_temporaries(path)
            _finish_or_undo_rotation(files, path, community)
            if create and not files.key.exists():
                files.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                keys.create_key(files.key)
        except OSError as error:
            raise GalleryError(f"gallery key {key_file}: {error.strerror or error}") from None
        gallery = cls.__new__(cls)
        gallery._start(directory, community, files, keys.read_floor(files, community), read_only=False)
        gallery._read((load_key(files.key),))
        if gallery.version > gallery.floor:
            try:
                gallery._record_floor(gallery.version)
            except GalleryError:
                pass  # tried again with the next change, which reports it
        return gallery

    @classmethod
    def open_read_only(cls, directory: Path, community: str, key_file: Path) -> Gallery:
        """The gallery as the face worker sees it: it never writes. The floor and the keys are read before the
        gallery, so a write made meanwhile (which raises the floor only after the gallery) is never mistaken for a
        rollback; a rotation that completes between reading the keys and the gallery is read again once."""
        files = KeyFiles(key_file)
        try:
            return cls._read_only_once(directory, community, files)
        except _Undecryptable:
            return cls._read_only_once(directory, community, files)

    @classmethod
    def _read_only_once(cls, directory: Path, community: str, files: KeyFiles) -> Gallery:
        floor = keys.read_floor(files, community)
        candidates = tuple(k for k in (load_key(files.key), _load_if_valid(files.next)) if k is not None)
        gallery = cls.__new__(cls)
        gallery._start(directory, community, files, floor, read_only=True)
        gallery._read(candidates)
        return gallery

    # -- reading ---------------------------------------------------------------------------------------------------

    def _read(self, candidates: Sequence[bytes]) -> None:
        blob = _read_blob(self.path)
        if blob is None:
            self._key = candidates[0] if candidates else b""
            return  # no gallery yet (or it was deleted): nobody is enrolled; that resurrects no one
        sealed = _split(blob, self.community, str(self.path))
        for key in candidates:
            if len(key) != KEY_BYTES:
                raise GalleryError(f"a gallery key must be {KEY_BYTES} bytes, not {len(key)}")
            plain = _decrypt(sealed, key)
            if plain is not None:
                break
        else:
            hint = (f" (its header says version {sealed.version}, older than the version {self.floor} this car has "
                    f"accepted: a copy made before a deletion)" if sealed.version < self.floor else "")
            raise _Undecryptable(f"gallery {self.path} cannot be decrypted: wrong key, another community's file, "
                                 f"or it has been tampered with{hint}")
        if sealed.version < self.floor:
            raise GalleryError(f"gallery {self.path} is an older copy (version {sealed.version}; this car has "
                               f"accepted version {self.floor}): refused as a rollback")
        try:
            self.residents = _residents_from(plain)
        except ValueError as error:
            raise GalleryError(f"gallery {self.path} decrypts but its records are malformed ({error})") from None
        self.version = sealed.version
        self._key = key

    # -- writing ---------------------------------------------------------------------------------------------------

    def _next_version(self) -> int:
        return max(self.version, self.floor) + 1

    def _write_file(self, key: bytes) -> None:
        """The gallery, under ``key``, at the next version; OSError if it could not be written."""
        version = self._next_version()
        write_atomic(self.path, _seal(_records_of(self.residents, self.community), self.community, key, version),
                     mode=0o600)
        self.version = version
        self._key = key

    def _record_floor(self, version: int) -> None:
        assert self.key_files is not None
        try:
            keys.record_floor(self.key_files, self.community, version)
        except OSError as error:
            raise GalleryError(f"gallery {self.path} is written, but its version could not be recorded in "
                               f"{self.key_files.floor} ({error.strerror}), so an older copy would not be refused "
                               f"until the next change") from None
        self.floor = version

    def _writable(self) -> None:
        if self.read_only:
            raise GalleryError(f"gallery {self.path} was opened read-only")

    def _write_or_restore(self, previous: dict[str, Resident], key: bytes) -> None:
        try:
            self._write_file(key)
        except OSError as error:
            self.residents = previous
            raise GalleryError(f"gallery {self.path} not written: {error.strerror}") from None

    # -- changes ---------------------------------------------------------------------------------------------------

    def enroll(self, resident: Resident) -> None:
        self._writable()
        check_id("resident", resident.resident_id)
        if not resident.consent_ref.strip():
            raise GalleryError("enrolment refused: no consent reference (PIPL art. 29 needs separate consent)")
        if not resident.embeddings:
            raise GalleryError("enrolment refused: no face template")
        for embedding in resident.embeddings:
            if len(embedding) != EMBEDDING_DIMENSIONS or not all(math.isfinite(v) for v in embedding):
                raise GalleryError(f"enrolment refused: a template is not {EMBEDDING_DIMENSIONS} finite numbers")
        for landing in (resident.home_landing, *resident.allowed_landings):
            if isinstance(landing, bool) or not isinstance(landing, int) or not 0 <= landing <= MAX_LANDING_INDEX:
                raise GalleryError(f"enrolment refused: landing {landing!r} is not a landing index "
                                   f"0..{MAX_LANDING_INDEX} (the car refuses a landing its building does not have)")
        if resident.home_landing not in resident.allowed_landings:
            resident = replace(resident, allowed_landings=tuple(sorted({*resident.allowed_landings,
                                                                        resident.home_landing})))
        previous = dict(self.residents)
        self.residents[resident.resident_id] = resident
        self._write_or_restore(previous, self._key)
        if self.key_files is not None:
            self._record_floor(self.version)

    def delete(self, resident_id: str) -> bool:
        """Remove a resident from the gallery at once, and rotate the key so that no copy of the gallery made before
        opens with the key on the car (what a deletion cannot reach: docs/privacy.md); False if not enrolled.
        GalleryError if the key could not be rotated (the resident is removed all the same) or the gallery could not
        be written (nothing changed)."""
        self._writable()
        if resident_id not in self.residents:
            return False
        previous = dict(self.residents)
        del self.residents[resident_id]
        if self.key_files is None:
            self._write_or_restore(previous, self._key)
            raise GalleryError(self._not_rotated(resident_id, "the gallery was opened with a key and no key file"))
        files = self.key_files
        try:
            new_key = keys.create_next_key(files)  # (1)
        except OSError as error:
            self._write_or_restore(previous, self._key)
            floor_error = ""
            try:
                self._record_floor(self.version)
            except GalleryError:
                floor_error = "; nor could its version be recorded, so such a copy would not be refused as older"
            raise GalleryError(self._not_rotated(resident_id, error.strerror or str(error)) + floor_error) from None
        try:
            self._write_file(new_key)  # (2)
        except OSError as error:
            self.residents = previous
            try:
                keys.destroy(files.next)
            except OSError:
                pass  # the owner's next open destroys it: the gallery still opens with the old key only
            raise GalleryError(f"gallery {self.path} not written: {error.strerror}") from None
        try:
            self._record_floor(self.version)  # (3)
            keys.overwrite_in_place(files.key)  # (4)
            keys.promote_next(files)  # (5)
        except (OSError, GalleryError) as error:
            raise GalleryError(f"resident {resident_id} was removed from gallery {self.path} under a new key, but "
                               f"replacing the old key did not finish ({error}); it is finished the next time the "
                               f"gallery is opened for a change") from None
        return True

    def _not_rotated(self, resident_id: str, reason: str) -> str:
        key = self.key_files.key if self.key_files is not None else "in memory"
        return (f"resident {resident_id} was removed from gallery {self.path}, but its key ({key}) could not be "
                f"replaced ({reason}): copies of the gallery made before the deletion can still be decrypted with "
                f"the key on this car")
