"""Speed of the face pipeline on this machine: `carctl face bench` (and `make bench`, with the loop's lag)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

PHOTO = Path(__file__).resolve().parent.parent.parent / "tests" / "data" / "faces" / "obama" / "obama_3.jpg"


def frame_640x480() -> np.ndarray:
    import cv2

    from carctl.face.engine import load_image

    image = load_image(PHOTO)
    canvas = np.full((480, 640, 3), 100, dtype=np.uint8)
    small = cv2.resize(image, (300, int(image.shape[0] * 300 / image.shape[1])))
    canvas[60:60 + small.shape[0], 170:470] = small[:420]
    return canvas


def frame_to_event_ms(runs: int = 30) -> list[float]:
    from carctl.face.engine import FaceEngine, Matcher
    from carctl.face.gallery import Resident

    engine = FaceEngine()
    frame = frame_to_event = frame_640x480()
    template = engine.faces(frame)[0].encoding
    matcher = Matcher([Resident("r-1", 3, (3,), "C", "t", "t", (tuple(map(float, template)),))])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for face in engine.faces(frame_to_event):
            matcher.best(face.encoding)
            engine.landmarks(frame_to_event, face.box)  # blink liveness: the 68-point landmarks too
        times.append((time.perf_counter() - started) * 1000)
    return times


def gallery_search_ms(residents: int = 10_000, runs: int = 200) -> list[float]:
    from carctl.face.engine import Matcher
    from carctl.face.gallery import Resident

    rng = np.random.default_rng(1)
    people = [Resident(f"r-{i}", 1, (1,), "C", "t", "t",
                       tuple(tuple(map(float, rng.normal(0, 0.1, 128))) for _ in range(2))) for i in range(residents)]
    matcher = Matcher(people)
    probe = rng.normal(0, 0.1, 128).astype(np.float32)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        matcher.best(probe)
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary() -> dict[str, dict[str, float]]:
    event = frame_to_event_ms()
    search = gallery_search_ms()
    return {"frame_to_event_ms": {"median": round(statistics.median(event), 1),
                                  "p95": round(sorted(event)[int(0.95 * len(event))], 1)},
            "gallery_10000_search_ms": {"median": round(statistics.median(search), 3),
                                        "max": round(max(search), 3)}}
