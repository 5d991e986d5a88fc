"""The face worker: its own process, at lower priority than the control loop.

    python -m carctl.face.worker --config /etc/carctl/board.toml

It reads frames (a camera, an RTSP or file URL, or a folder of images), detects faces on a downscaled frame, encodes
them, matches them against the community's gallery, checks liveness across frames, and sends the controller one
recognition event per resident per ride as a datagram on its socket in the firmware's private socket
directory (carctl/runtime/sidechannel.py). It starts only when the
community has the feature on (processes.face); if the models or the gallery cannot be trusted it exits with a clear
message and the car runs on without it.

Rules of this module:
- Frames are processed and dropped at once; no image is ever written anywhere.
- The gallery file and its key file are watched: when the platform enrols or deletes a resident (a deletion also
  replaces the key) or wipes the gallery, the worker reloads it before the next frame, so a deleted resident is
  never recognised again. A gallery that cannot be read after a change stops recognition (an empty gallery) rather
  than keep stale templates, until the next change of either file.
- The worker only reads the gallery (Gallery.open_read_only): it never writes, nor finishes a key rotation.
- A resident must be matched in `agreement_frames` frames and pass the liveness check before an event is sent, and
  is not reported again within `repeat_after_s` (one ride).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carctl.face.engine import FaceEngine, ImageError, Matcher
from carctl.face.gallery import Gallery, GalleryError, Resident
from carctl.face.images import DEFAULT_MAX_PIXELS, MAX_SIDE_PX, load_image
from carctl.face.liveness import LivenessCheck, ear_from_landmarks
from carctl.face.models import ModelError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
EXIT_UNTRUSTED = 3


@dataclass(frozen=True, slots=True)
class RecognitionEvent:
    resident: str
    home_landing: int
    allowed_landings: tuple[int, ...]
    distance: float
    frame_ms: float

    def to_message(self) -> dict[str, Any]:
        """The datagram the loop reads (carctl/protocol/loopback.py)."""
        return {"type": "recognition", "resident": self.resident, "home_landing": self.home_landing,
                "allowed_landings": list(self.allowed_landings), "distance": round(self.distance, 4),
                "frame_ms": round(self.frame_ms, 1)}


def frames(source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[np.ndarray]:
    """RGB frames from a folder of images (each refused above ``max_pixels``), a camera index or device, or a file
    or stream URL. A frame from a camera, a stream or a video larger than ``max_pixels`` (or with a side longer than
    MAX_SIDE_PX) is dropped before it goes further, as a photo that size would be; such frames are counted, and said
    once when the first comes and once with their number when the source ends, not once a frame."""
    path = Path(source)
    if path.is_dir():
        for image in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                yield load_image(image, max_pixels)
            except ImageError as error:
                print(f"face worker: skipping {error}", file=sys.stderr)
        return
    import cv2

    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    dropped = 0
    try:
        while capture.isOpened():
            ok, frame = capture.read()
            if not ok:
                return
            height, width = frame.shape[:2]
            if width * height > max_pixels or width > MAX_SIDE_PX or height > MAX_SIDE_PX:
                dropped += 1
                if dropped == 1:
                    print(f"face worker: {source}: a frame of {width} x {height} pixels is larger than "
                          f"face.max_image_pixels ({max_pixels:,}) allows; dropping such frames", file=sys.stderr)
                continue
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
        if dropped:
            print(f"face worker: {source}: {dropped} frame(s) dropped as too large", file=sys.stderr)


@dataclass(slots=True)
class _Candidate:
    agreeing_frames: int = 0
    liveness: LivenessCheck = field(default_factory=LivenessCheck)


class Recogniser:
    """Frames in, recognition events out; no I/O, so it is tested frame by frame."""

    def __init__(self, engine: FaceEngine, residents: list[Resident], tolerance: float, liveness: str,
                 agreement_frames: int = 2, repeat_after_s: float = 60.0) -> None:
        self.engine = engine
        self.residents = {r.resident_id: r for r in residents}
        self.matcher = Matcher(residents)
        self.tolerance = tolerance
        self.liveness_mode = liveness
        self.agreement_frames = agreement_frames
        self.repeat_after_s = repeat_after_s
        self.candidates: dict[str, _Candidate] = {}
        self.reported_at: dict[str, float] = {}
        self.frames = 0

    def replace_residents(self, residents: list[Resident]) -> None:
        self.residents = {r.resident_id: r for r in residents}
        self.matcher = Matcher(residents)
        self.candidates.clear()
        for resident_id in [r for r in self.reported_at if r not in self.residents]:
            del self.reported_at[resident_id]

    def process(self, rgb: np.ndarray, now_s: float) -> list[RecognitionEvent]:
        started = time.perf_counter()
        self.frames += 1
        seen_now = set()
        events = []
        for face in self.engine.faces(rgb):
            resident_id, distance = self.matcher.best(face.encoding)
            if resident_id is None or distance > self.tolerance:
                continue
            seen_now.add(resident_id)
            candidate = self.candidates.setdefault(resident_id, _Candidate(liveness=LivenessCheck(
                mode=self.liveness_mode)))
            candidate.agreeing_frames += 1
            ear = None
            if self.liveness_mode == "blink":
                landmarks = self.engine.landmarks(rgb, face.box)
                ear = ear_from_landmarks(landmarks) if landmarks else None
            alive = candidate.liveness.observe(face.box, ear)
            recent = now_s - self.reported_at.get(resident_id, -1e9) < self.repeat_after_s
            if candidate.agreeing_frames >= self.agreement_frames and alive and not recent:
                resident = self.residents[resident_id]
                self.reported_at[resident_id] = now_s
                events.append(RecognitionEvent(resident_id, resident.home_landing, resident.allowed_landings,
                                               distance, (time.perf_counter() - started) * 1000))
        for resident_id in list(self.candidates):
            if resident_id not in seen_now:
                del self.candidates[resident_id]  # agreement and liveness must be shown in consecutive frames
        return events


def _read_gallery(settings: Any) -> list[Resident]:
    gallery = Gallery.open_read_only(Path(settings.gallery_dir), settings.community, Path(settings.key_file))
    return list(gallery.residents.values())


def _load(settings: Any) -> Recogniser:
    residents = _read_gallery(settings)
    engine = FaceEngine(settings.detect_width_px, settings.upsample)
    return Recogniser(engine, residents, settings.tolerance, settings.liveness, settings.agreement_frames,
                      settings.repeat_after_s)


Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> Stamp:
    """What changes when a file is replaced (a write is a rename, so the inode changes too); None if absent."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


@dataclass(slots=True)
class GalleryWatch:
    """Notices when the gallery file changes or disappears, and when its key file changes: a deletion writes the
    gallery and then replaces the key, and a read made between the two may have failed, so the key's change must
    bring another read."""

    path: Path
    key_file: Path | None = None
    seen: Stamp = None
    seen_key: Stamp = None

    def __post_init__(self) -> None:
        self.seen = _stamp(self.path)
        self.seen_key = _stamp(self.key_file) if self.key_file is not None else None

    def watch_key_file(self, key_file: Path) -> None:
        """Watch the key file too, from now on (a watch made without it learns it here; nothing counts as a
        change)."""
        if self.key_file != key_file:
            self.key_file = key_file
            self.seen_key = _stamp(key_file)

    def changed(self) -> bool:
        stamp = _stamp(self.path)
        key_stamp = _stamp(self.key_file) if self.key_file is not None else None
        if stamp == self.seen and key_stamp == self.seen_key:
            return False
        self.seen, self.seen_key = stamp, key_stamp
        return True


def reload_if_changed(watch: GalleryWatch, recogniser: Recogniser, settings: Any) -> None:
    watch.watch_key_file(Path(settings.key_file))
    if not watch.changed():
        return
    try:
        residents = _read_gallery(settings) if watch.seen is not None else []
    except GalleryError as error:
        print(f"face worker: gallery changed but cannot be read ({error}); recognising nobody", file=sys.stderr)
        residents = []
    recogniser.replace_residents(residents)
    print(f"face worker: gallery reloaded, {len(residents)} residents", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carctl.face.worker")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    from carctl.runtime import config as firmware_config
    from carctl.runtime.realtime import set_lower_priority
    from carctl.runtime.sidechannel import LOOP_FROM_FACE, Sender, SocketDirError, prepare_socket_dir

    set_lower_priority(10)
    try:
        config = firmware_config.load(args.config)
        settings = config.face
        # Watched from before the first read, so a change made while the models load is not missed.
        watch = GalleryWatch(Path(settings.gallery_dir) / f"{settings.community}.gallery",
                             key_file=Path(settings.key_file))
        recogniser = _load(settings)
        # The loop hears recognitions only on its socket in the private directory (docs/security.md).
        socket_dir = prepare_socket_dir(Path(config.runtime.socket_dir), create=False)
    except (firmware_config.FirmwareConfigError, GalleryError, ModelError, SocketDirError) as error:
        print(f"face worker: not starting: {error}", file=sys.stderr)
        return EXIT_UNTRUSTED
    sender = Sender(socket_dir, LOOP_FROM_FACE)
    period_s = 1.0 / settings.max_fps
    try:
        for frame in frames(settings.source, settings.max_image_pixels):
            started = time.monotonic()
            reload_if_changed(watch, recogniser, settings)
            for event in recogniser.process(frame, started):
                sender.send(event.to_message())
            del frame  # dropped at once; nothing is kept
            rest = period_s - (time.monotonic() - started)
            if rest > 0:
                time.sleep(rest)
    finally:
        sender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
