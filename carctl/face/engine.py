"""Detect, encode and match faces with face_recognition (dlib): the only place the face libraries are imported.

Rules of this module:
- Detection is HOG on a downscaled frame (320 px wide by default, upsample 1: about 27 ms on one core for a
  640x480 frame, and faces down to ~28 px of the small frame), then the boxes are scaled back and the 128-d
  encoding is taken on the full-resolution frame.
- Matching is one vectorised distance computation against every template of the gallery; a resident's distance is
  that of their closest template.
- Images from outside are decoded by images.py (limits from the header, truncated images refused), never by
  face_recognition.load_image_file. face_recognition switches Pillow's LOAD_TRUNCATED_IMAGES on for the whole
  process when imported; it is imported here only, and switched off again at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from carctl.face.gallery import Resident
from carctl.face.images import DEFAULT_MAX_PIXELS, ImageError, decode_image, load_image

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_TOLERANCE", "FaceEngine", "FaceFound", "ImageError", "Matcher",
           "decode_image", "load_image", "single_face_encoding"]

# A wrong person is worse than a missed one: see docs/face.md for the measurements behind this default.
DEFAULT_TOLERANCE = 0.5


@dataclass(frozen=True, slots=True)
class FaceFound:
    box: tuple[int, int, int, int]  # top, right, bottom, left in the full frame
    encoding: np.ndarray


def _face_recognition() -> ModuleType:
    """The face_recognition module, with the process-wide switch it flips on import put back: Pillow must refuse a
    truncated image rather than fill the missing part with grey."""
    import face_recognition
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition


def single_face_encoding(engine: FaceEngine, rgb: np.ndarray, name: str) -> tuple[float, ...]:
    """The one face of an enrolment photo; ImageError when it has none or several."""
    faces = engine.faces(rgb)
    if not faces:
        raise ImageError(f"{name}: no face found; use a clear, frontal photo of the resident alone")
    if len(faces) > 1:
        raise ImageError(f"{name}: {len(faces)} faces found; enrol from photos of the resident alone")
    return tuple(float(v) for v in faces[0].encoding)


class FaceEngine:
    def __init__(self, detect_width_px: int = 320, upsample: int = 1) -> None:
        from carctl.face import models

        models.verify()
        self._fr = _face_recognition()
        self.detect_width_px = detect_width_px
        self.upsample = upsample
        self._landmarks_verified = False

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        height, width = rgb.shape[:2]
        scale = min(1.0, self.detect_width_px / width)
        small = rgb
        if scale < 1.0:
            import cv2

            # At least one pixel each way: a very long, thin image would otherwise scale to nothing.
            small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        boxes = self._fr.face_locations(small, number_of_times_to_upsample=self.upsample, model="hog")
        return [(round(top / scale), round(right / scale), round(bottom / scale), round(left / scale))
                for top, right, bottom, left in boxes]

    def landmarks(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, list[tuple[int, int]]] | None:
        """The 68-point landmarks of one face (for blink liveness); the model is checked on first use."""
        if not self._landmarks_verified:
            from carctl.face import models

            models.verify(names=("shape_predictor_68_face_landmarks.dat",))
            self._landmarks_verified = True
        found = self._fr.face_landmarks(rgb, face_locations=[box], model="large")
        return found[0] if found else None

    def faces(self, rgb: np.ndarray) -> list[FaceFound]:
        boxes = self.detect(rgb)
        encodings = self._fr.face_encodings(rgb, known_face_locations=boxes, model="small")
        return [FaceFound(box, encoding) for box, encoding in zip(boxes, encodings)]


class Matcher:
    """Every template of a gallery in one matrix, searched with one matrix-vector product."""

    def __init__(self, residents: list[Resident]) -> None:
        rows = [(resident.resident_id, embedding) for resident in residents for embedding in resident.embeddings]
        self.owners = np.array([owner for owner, _ in rows], dtype=object)
        self.templates = np.array([embedding for _, embedding in rows], dtype=np.float32).reshape(-1, 128)
        self.squared_norms = np.einsum("ij,ij->i", self.templates, self.templates)

    def best(self, encoding: np.ndarray) -> tuple[str | None, float]:
        """The nearest resident and the distance to their closest template ((None, inf) for an empty gallery)."""
        if not len(self.templates):
            return None, float("inf")
        probe = np.asarray(encoding, dtype=np.float32)
        squared = self.squared_norms - 2.0 * (self.templates @ probe) + float(probe @ probe)
        index = int(np.argmin(squared))
        return str(self.owners[index]), float(np.sqrt(max(0.0, float(squared[index]))))
