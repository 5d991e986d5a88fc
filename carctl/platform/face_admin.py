"""The platform's face commands carried out on the car: enrol a resident from delivered photos, delete one, wipe the
community's gallery. The face worker notices a changed gallery file and reloads it (carctl/face/worker.py).

Rules of this module:
- Photos arrive base64-encoded inside the signed command. They are decoded in memory (carctl/face/images.py: at
  most `max_image_pixels`, read from the header before decoding; truncated images and decompression bombs refused),
  turned into 128-d templates, and dropped: no photo is ever written to disk or sent on. Every photo must show
  exactly one face; one bad photo refuses the whole enrolment and nothing is written.
- The gallery is the same encrypted, atomically written file the CLI uses (carctl/face/gallery.py), opened by its
  owner: a deletion replaces the key, so copies of the gallery made before it no longer decrypt. Its key is created
  (mode 0600) on the first enrolment if the car has none yet.
- Wiping deletes the gallery file and then its key, any next key and the version floor (the keys overwritten
  first), so no copy of the file made before can be decrypted afterwards.
- What goes back to the platform is never biometric: the resident id, the landings, how many templates were made.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from pathlib import Path
from typing import Any

from carctl.atomicfile import remove_stale_temporaries
from carctl.face import keys
from carctl.face.gallery import Gallery, GalleryError, Resident, check_id


class FaceCommandError(Exception):
    """A face command that cannot be carried out; the reason is the refusal sent back."""


class FaceAdmin:
    def __init__(self, gallery_dir: Path, key_file: Path, community: str, landing_count: int, *,
                 max_image_pixels: int = 16_000_000) -> None:
        self.gallery_dir = gallery_dir
        self.key_file = key_file
        self.community = community
        self.landing_count = landing_count
        self.max_image_pixels = max_image_pixels  # face.max_image_pixels
        self._engine: Any = None  # loaded on the first enrolment: dlib's models take a moment and ~100 MB

    def _gallery(self, create: bool) -> Gallery:
        return Gallery.open(self.gallery_dir, self.community, self.key_file, create=create)

    def check_usable(self) -> int:
        """Before switching the feature on: the key and gallery open (a fresh car gets an empty gallery's key).
        Returns how many residents are enrolled."""
        try:
            return len(self._gallery(create=True).residents)
        except (GalleryError, OSError) as error:
            raise FaceCommandError(f"the gallery cannot be used: {error}") from None

    def enroll(self, params: dict[str, Any]) -> dict[str, Any]:
        from carctl.face.engine import FaceEngine, ImageError, decode_image, single_face_encoding
        from carctl.face.models import ModelError

        try:
            resident_id = check_id("resident", params["resident"])
        except GalleryError as error:
            raise FaceCommandError(str(error)) from None
        home = params["home_landing"]
        allowed = tuple(sorted(set(params.get("allowed_landings", []))))
        for landing in (home, *allowed):
            if landing >= self.landing_count:
                raise FaceCommandError(f"landing {landing} does not exist (0..{self.landing_count - 1})")
        try:
            if self._engine is None:
                self._engine = FaceEngine(upsample=1)
            embeddings = []
            for index, text in enumerate(params["photos"]):
                name = f"photo {index + 1}"
                try:
                    data = base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    raise FaceCommandError(f"{name}: not base64") from None
                image = decode_image(data, name, self.max_image_pixels)
                del data
                embeddings.append(single_face_encoding(self._engine, image, name))
                del image
        except (ImageError, ModelError) as error:
            raise FaceCommandError(str(error)) from None
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            gallery = self._gallery(create=True)
            replaced = resident_id in gallery.residents
            gallery.enroll(Resident(resident_id, home, allowed, params["consent"], now, now, tuple(embeddings)))
        except (GalleryError, OSError) as error:
            raise FaceCommandError(str(error)) from None
        return {"resident": resident_id, "home_landing": home, "templates": len(embeddings), "replaced": replaced}

    def delete(self, resident_id: str) -> dict[str, Any]:
        try:
            deleted = self._gallery(create=False).delete(resident_id)
        except (GalleryError, OSError) as error:
            raise FaceCommandError(str(error)) from None
        if not deleted:
            raise FaceCommandError(f"resident {resident_id!r} is not enrolled in {self.community}")
        return {"resident": resident_id}

    def wipe(self) -> dict[str, Any]:
        """Delete the community's gallery and its key files; returns how many residents it held (if it could be
        read)."""
        held: int | None = None
        try:
            held = len(self._gallery(create=False).residents)
        except (GalleryError, OSError):
            pass  # an unreadable gallery is wiped all the same
        gallery = self.gallery_dir / f"{self.community}.gallery"
        try:
            gallery.unlink(missing_ok=True)
            remove_stale_temporaries(gallery)
            keys.remove_all(keys.KeyFiles(self.key_file))
        except OSError as error:
            raise FaceCommandError(f"the gallery could not be wiped: {error.strerror or error}") from None
        return {"wiped": True, "residents_removed": held}
