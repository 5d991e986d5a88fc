"""Liveness across frames: a still photo held up to the camera must not be accepted.

Two checks, chosen in the configuration:
- "blink": the eye aspect ratio (Soukupová & Čech 2016) on the 68-point landmarks (points 36-41 and 42-47) must
  fall below `closed_ear` and rise above `open_ear` again within the window: an open-closed-open blink.
- "movement": the face must move (its centre by `movement_fraction` of its width, or its size by that fraction)
  within the window, as a resident stepping into the car does; a photo held still does not.
Known weaknesses (docs/face.md): a replayed video blinks and moves; a photo waved about moves; glasses and head
turns disturb the eye ratio. The 68-point model's training data excludes commercial use (carctl/face/model_manifest.toml).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """(|p2-p6| + |p3-p5|) / (2 |p1-p4|) for the six points of one eye."""
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    horizontal = np.linalg.norm(eye[0] - eye[3])
    return float(vertical / (2.0 * horizontal)) if horizontal else 0.0


def ear_from_landmarks(landmarks: dict[str, list[tuple[int, int]]]) -> float:
    """Mean eye aspect ratio from face_recognition's 68-point landmark dict."""
    left = np.array(landmarks["left_eye"], dtype=float)
    right = np.array(landmarks["right_eye"], dtype=float)
    return (eye_aspect_ratio(left) + eye_aspect_ratio(right)) / 2.0


@dataclass(slots=True)
class LivenessCheck:
    mode: str = "blink"  # "blink", "movement" or "off"
    window: int = 30  # frames remembered for one face
    closed_ear: float = 0.20
    open_ear: float = 0.25
    movement_fraction: float = 0.08
    _ears: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    _boxes: deque[tuple[int, int, int, int]] = field(default_factory=lambda: deque(maxlen=30))

    def reset(self) -> None:
        self._ears.clear()
        self._boxes.clear()

    def observe(self, box: tuple[int, int, int, int], ear: float | None) -> bool:
        """Add one frame's view of the face; True once the face has shown it is alive."""
        if self.mode == "off":
            return True
        self._boxes.append(box)
        if ear is not None:
            self._ears.append(ear)
        if self.mode == "blink":
            return self._blinked()
        return self._moved()

    def _blinked(self) -> bool:
        seen_open = seen_closed = False
        for ear in self._ears:
            if ear >= self.open_ear and not seen_closed:
                seen_open = True
            elif ear <= self.closed_ear and seen_open:
                seen_closed = True
            elif ear >= self.open_ear and seen_closed:
                return True
        return False

    def _moved(self) -> bool:
        if len(self._boxes) < 2:
            return False
        first = self._boxes[0]
        width = max(1, first[1] - first[3])
        for top, right, bottom, left in list(self._boxes)[1:]:
            shift = max(abs((left + right) / 2 - (first[3] + first[1]) / 2),
                        abs((top + bottom) / 2 - (first[0] + first[2]) / 2))
            size = abs((right - left) - width)
            if shift >= self.movement_fraction * width or size >= self.movement_fraction * width:
                return True
        return False
